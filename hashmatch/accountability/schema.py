"""The Transparency Database's rules for a statement of reasons, checked locally before a
statement is written or sent: required fields, enums, required-if rules (an `_OTHER`
value needs its text, illegal content needs its legal ground and explanation), lengths,
dates and the puid pattern. `problems(statement)` returns {field: [message, ...]}, the
shape the database's 422 answers use; empty means valid."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

from hashmatch.accountability import enums
from hashmatch.accountability.dsa_config import EEA

PUID = re.compile(r"[a-zA-Z0-9_-]+")
_DECISIONS = (("decision_visibility", enums.DECISION_VISIBILITIES, True, "DECISION_VISIBILITY_OTHER"),
              ("decision_monetary", enums.DECISION_MONETARIES, False, "DECISION_MONETARY_OTHER"),
              ("decision_provision", enums.DECISION_PROVISIONS, False, None),
              ("decision_account", enums.DECISION_ACCOUNTS, False, None))
_TEXT_LIMITS = {"decision_visibility_other": 500, "decision_monetary_other": 500, "content_type_other": 500,
                "illegal_content_legal_ground": 500, "illegal_content_explanation": 2000,
                "incompatible_content_ground": 500, "incompatible_content_explanation": 2000,
                "decision_facts": 5000, "puid": 500, "category_addition_other": 500,
                "decision_ground_reference_url": 500}


def problems(statement: Mapping[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        found.setdefault(name, []).append(message)

    def enum(name: str, allowed: tuple[str, ...], *, array: bool, required: bool) -> Any:
        value = statement.get(name)
        if value is None:
            if required:
                bad(name, "is required")
            return None
        values = value if array else [value]
        if array and (not isinstance(value, list) or not value):
            bad(name, "must be a non-empty array")
            return None
        wrong = [v for v in values if v not in allowed]
        if wrong:
            bad(name, f"has values outside the schema: {', '.join(map(str, wrong))}")
        return value

    # At least one decision; an _OTHER value needs its text.
    if not any(statement.get(name) for name, *_ in _DECISIONS):
        bad("decision_visibility", "at least one of decision_visibility, decision_monetary, decision_provision "
                                   "or decision_account is required")
    for name, allowed, array, other in _DECISIONS:
        value = enum(name, allowed, array=array, required=False)
        if other is not None and value is not None and other in (value if array else [value]) \
                and not statement.get(f"{name}_other"):
            bad(f"{name}_other", f"is required when {name} is {other}")

    ground = enum("decision_ground", enums.DECISION_GROUNDS, array=False, required=True)
    if ground == "DECISION_GROUND_ILLEGAL_CONTENT":
        for name in ("illegal_content_legal_ground", "illegal_content_explanation"):
            if not statement.get(name):
                bad(name, "is required when the ground is illegal content")
    elif ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        for name in ("incompatible_content_ground", "incompatible_content_explanation"):
            if not statement.get(name):
                bad(name, "is required when the ground is incompatible content")

    types = enum("content_type", enums.CONTENT_TYPES, array=True, required=True)
    if types and "CONTENT_TYPE_OTHER" in types and not statement.get("content_type_other"):
        bad("content_type_other", "is required when content_type includes CONTENT_TYPE_OTHER")
    enum("category", enums.STATEMENT_CATEGORIES, array=False, required=True)
    enum("category_specification", enums.KEYWORDS, array=True, required=False)
    enum("category_addition", enums.STATEMENT_CATEGORIES, array=True, required=False)
    enum("source_type", enums.SOURCE_TYPES, array=False, required=True)
    enum("automated_decision", enums.AUTOMATED_DECISIONS, array=False, required=True)
    enum("automated_detection", ("Yes", "No"), array=False, required=True)
    enum("account_type", enums.ACCOUNT_TYPES, array=False, required=False)
    enum("territorial_scope", EEA, array=True, required=True)

    _date(statement, "content_date", dt.date(2000, 1, 1), dt.date(2038, 1, 1), True, bad)
    _date(statement, "application_date", dt.date(2020, 1, 1), None, True, bad)
    _date(statement, "end_date_visibility_restriction", dt.date(2020, 1, 1), None, False, bad)

    for name in ("decision_facts", "puid"):
        if not statement.get(name):
            bad(name, "is required")
    for name, limit in _TEXT_LIMITS.items():
        value = statement.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            bad(name, f"must be text of at most {limit} characters")
    puid = statement.get("puid")
    if isinstance(puid, str) and puid and not PUID.fullmatch(puid):
        bad("puid", "may hold only a-z A-Z 0-9 - _")
    language = statement.get("content_language")
    if language is not None and not (isinstance(language, str) and re.fullmatch(r"[A-Z]{2}", language)):
        bad("content_language", "must be an upper-case ISO 639-1 code")
    url = statement.get("decision_ground_reference_url")
    if url is not None and not (isinstance(url, str) and re.fullmatch(r"https?://\S+", url)):
        bad("decision_ground_reference_url", "must be an http(s) URL")
    return found


def _date(statement: Mapping[str, Any], name: str, earliest: dt.date, latest: dt.date | None, required: bool,
          bad: Any) -> None:
    value = statement.get(name)
    if value is None:
        if required:
            bad(name, "is required")
        return
    try:
        if not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
            raise ValueError
        day = dt.date.fromisoformat(value)
    except ValueError:
        bad(name, "must be a date YYYY-MM-DD")
        return
    if day < earliest or (latest is not None and day > latest):
        bad(name, f"must be from {earliest}" + (f" to {latest}" if latest else ""))
