"""Statements of reasons (DSA Art. 17 and 24(5)) from recorded decisions, in the
Transparency Database's schema: one statement per decision, validated (schema.py)
before it is written; an invalid one is reported with its fields and never written.

The statement says in plain words that the content matched an entry of a named list
(its name and category, the algorithm and the distance), never a hash value, a path, a
file name or anything about the user: statements are published without personal data.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from hashmatch import signals
from hashmatch.accountability.decisions import (
    ACCOUNT_ACTIONS,
    MONETARY_ACTIONS,
    PROVISION_ACTIONS,
    VISIBILITY_ACTIONS,
    Decision,
)
from hashmatch.accountability.dsa_config import CategoryRule, DsaConfig
from hashmatch.accountability.schema import problems
from hashmatch.base.files import atomic_write

_AUTOMATED = {"fully": "AUTOMATED_DECISION_FULLY", "partially": "AUTOMATED_DECISION_PARTIALLY",
              "not": "AUTOMATED_DECISION_NOT_AUTOMATED"}
_CONTENT = {"image": "CONTENT_TYPE_IMAGE", "video": "CONTENT_TYPE_VIDEO", "other": "CONTENT_TYPE_OTHER"}
# Where a decision records several actions of a kind the schema takes one value of, the
# most severe is stated (the order of these lists: least to most).
_SEVERITY = {"decision_monetary": list(MONETARY_ACTIONS), "decision_provision": list(PROVISION_ACTIONS),
             "decision_account": list(ACCOUNT_ACTIONS)}
_KINDS = {"decision_monetary": MONETARY_ACTIONS, "decision_provision": PROVISION_ACTIONS,
          "decision_account": ACCOUNT_ACTIONS}
MAX_LISTED_MATCHES = 10  # matches named in decision_facts; the rest are counted


@dataclass
class Rejected:
    puid: str
    errors: dict[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        return {"puid": self.puid, "errors": self.errors}


def primary_match(decision: Decision, config: DsaConfig) -> tuple[dict[str, Any] | None, CategoryRule | None]:
    """The match a statement is about: the closest one whose list category has a rule
    (ties: the first). (None, None) if no matched list's category is configured."""
    ruled = [m for m in decision.matches if config.rule(m.get("category")) is not None]
    if not ruled:
        return None, None
    best = min(ruled, key=lambda m: m.get("distance", 0))
    return best, config.rule(best.get("category"))


def build_statement(decision: Decision, config: DsaConfig) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """(statement, {}) for a decision, or (None, {field: [why]}) when it cannot be one."""
    match, rule = primary_match(decision, config)
    if match is None or rule is None:
        categories = sorted({str(m.get("category")) for m in decision.matches})
        return None, {"category": [f"no dsa.toml rule for the list category {', '.join(categories)} "
                                   f"(add a [categories.NAME] table)"]}
    statement: dict[str, Any] = {}
    visibility = [VISIBILITY_ACTIONS[a] for a in decision.actions if a in VISIBILITY_ACTIONS]
    if visibility:
        statement["decision_visibility"] = visibility
    for name, kind in _KINDS.items():
        chosen = [a for a in _SEVERITY[name] if a in decision.actions]
        if chosen:
            statement[name] = kind[chosen[-1]]
    statement.update({
        "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
        "illegal_content_legal_ground": rule.legal_ground,
        "illegal_content_explanation": rule.explanation,
        "content_type": [_CONTENT[decision.content_type]],
        "category": rule.category,
    })
    if decision.content_type == "other":
        statement["content_type_other"] = "A file"
    if rule.keywords:
        statement["category_specification"] = list(rule.keywords)
    others = sorted({r.category for m in decision.matches if (r := config.rule(m.get("category"))) is not None}
                    - {rule.category})
    if others:
        statement["category_addition"] = others
    statement.update({
        "territorial_scope": list(config.territorial_scope),
        "content_date": decision.content_date or decision.decided_date,
        "application_date": decision.decided_date,
        "decision_facts": decision_facts(decision, match),
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": _AUTOMATED[decision.automated],
        "puid": decision.puid,
    })
    if config.content_language:
        statement["content_language"] = config.content_language
    if config.reference_url:
        statement["decision_ground_reference_url"] = config.reference_url
    found = problems(statement)
    return (None, found) if found else (statement, {})


def decision_facts(decision: Decision, primary: dict[str, Any]) -> str:
    """The facts in plain words: detected on the provider's own initiative by hash
    matching, which list (name and category) at which algorithm and distance."""
    ordered = [primary] + [m for m in decision.matches if m is not primary]
    described = [_describe(m) for m in ordered[:MAX_LISTED_MATCHES]]
    more = len(ordered) - len(described)
    facts = ("The content was detected on the provider's own initiative by automated hash matching against "
             "lists of known illegal content. It matched " + "; ".join(described)
             + (f"; and {more} further list entr{'y' if more == 1 else 'ies'}" if more > 0 else "") + ".")
    how = {"fully": " The decision was taken by automated means.",
           "partially": " The decision was taken by automated means with human involvement.",
           "not": " The decision was taken by a person after reviewing the match."}[decision.automated]
    if decision.review == "confirmed":
        how += " A person reviewed the match and confirmed it."
    return facts + how


def _describe(match: dict[str, Any]) -> str:
    name = match.get("list_name", "a list")
    category = f" (category {match['category']})" if match.get("category") else ""
    algorithm = str(match.get("algorithm", ""))
    kind = signals.find(algorithm)
    if kind is not None and kind.exact:
        how = f"identical by its {algorithm.upper()} digest"
    else:
        distance, threshold = match.get("distance"), match.get("threshold")
        how = (f"by the perceptual hash {algorithm.upper()} at distance {distance}"
               + (f" (the list's threshold is {threshold}; 0 means identical)" if threshold is not None else ""))
    return f"an entry of the list \"{name}\"{category}, {how}"


@dataclass
class StatementCounts:
    written: int = 0
    invalid: int = 0
    rejected: list[Rejected] = field(default_factory=list)  # the first MAX_KEPT_REJECTS, for the report


MAX_KEPT_REJECTS = 1000


def statements_of(decisions: Iterable[Decision], config: DsaConfig,
                  counts: StatementCounts) -> Iterator[dict[str, Any]]:
    """The valid statements of `decisions`; invalid ones are counted (and the first kept)."""
    for decision in decisions:
        statement, found = build_statement(decision, config)
        if statement is None:
            counts.invalid += 1
            if len(counts.rejected) < MAX_KEPT_REJECTS:
                counts.rejected.append(Rejected(decision.puid, found))
            continue
        counts.written += 1
        yield statement


def write_statements(decisions: Iterable[Decision], config: DsaConfig, path: str | os.PathLike) -> StatementCounts:
    """Write the statements of `decisions` to `path` as JSON lines (0600, atomic: a
    crash leaves the previous file or none)."""
    counts = StatementCounts()
    with atomic_write(path, "w", encoding="utf-8") as handle:
        buffer: list[str] = []
        for statement in statements_of(decisions, config, counts):
            buffer.append(json.dumps(statement, ensure_ascii=False))
            if len(buffer) >= 4096:
                handle.write("\n".join(buffer) + "\n")
                buffer.clear()
        if buffer:
            handle.write("\n".join(buffer) + "\n")
    return counts
