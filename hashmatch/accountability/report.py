"""Transparency counts from the decision log, for a reporting period:

- `own-initiative-illegal-content.csv`: Implementing Regulation 2024/2835 sheet 5 (measures
  taken on the provider's own initiative against illegal content): a TOTAL row, a row
  per statement category, and under each the rows of its keywords; per row the number
  of measures, those taken by solely automated means, and the counts by restriction type.
  Each measure is counted once, under its statement's category and first keyword (or
  "(none)"), so keyword rows sum to their category and categories to TOTAL.
- `automated-means.csv`: sheet 8, one row per hash list (the moderation system a measure
  relied on: its primary match), measures solely automated / not, and precision over the
  reviewed decisions (confirmed / (confirmed + false matches)). Accuracy and recall stay
  empty: they need the items the lists missed, which a matching engine cannot see.
- `tco-article-7.csv`: the figures of a TCO Art. 7(3) report a matching engine knows:
  items removed or disabled by the hash-matching measure and reinstatements after review.
- `summary.txt` (the same figures in words) and `decisions-per-month.png` (a chart).

The period selects decisions by their decision date; a decision's review counts with
the decision, whenever it was recorded. CSV: RFC 4180, UTF-8, CRLF line ends, 0600.
"""
from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from hashmatch.accountability import enums
from hashmatch.accountability.decisions import (
    ACCOUNT_ACTIONS,
    MONETARY_ACTIONS,
    PROVISION_ACTIONS,
    Decision,
)
from hashmatch.accountability.dsa_config import DsaConfig
from hashmatch.accountability.statements import primary_match
from hashmatch.base.files import atomic_write, save_figure
from hashmatch.errors import ConfigurationError

#: Sheet 5's restriction-type columns: (heading, the actions counted in it).
RESTRICTIONS = (
    ("Visibility restriction: removal", ("removed",)),
    ("Visibility restriction: disabling", ("disabled",)),
    ("Visibility restriction: demotion", ("demoted",)),
    ("Visibility restriction: age restriction", ("age_restricted",)),
    ("Visibility restriction: interaction restriction", ("interaction_restricted",)),
    ("Visibility restriction: labelling", ("labelled",)),
    ("Visibility restriction: other", ()),
    ("Monetary restriction", tuple(MONETARY_ACTIONS)),
    ("Restriction of the provision of the service", tuple(PROVISION_ACTIONS)),
    ("Restriction of the account", tuple(ACCOUNT_ACTIONS)),
)
SHEET5_HEADINGS = ("Reporting period", "Service", "Level", "Category", "Keyword",
                   "Number of measures taken at the provider's own initiative",
                   "Of which taken by solely automated means", *(h for h, _ in RESTRICTIONS))
SHEET8_HEADINGS = ("Reporting period", "Service", "Automated means", "Measures taken solely by automated means",
                   "Measures not taken solely by automated means", "Decisions reviewed", "Confirmed by review",
                   "False matches found by review", "Accuracy", "Precision", "Recall",
                   "How the indicators were measured")
TCO_HEADINGS = ("Reporting period", "Service", "Specific measure", "Items removed or disabled",
                "Reinstated after review", "Of which after a complaint", "Complaints reviewed")
UNCATEGORISED = "(no dsa.toml rule)"
NO_KEYWORD = "(none)"
PRECISION_NOTE = ("Precision = confirmed / (confirmed + false matches) over the decisions a person reviewed; "
                  "accuracy and recall need the items the lists missed, which the matching engine cannot see: "
                  "measure them on a labelled sample (hashmatch evaluate)")


def parse_period(text: str) -> tuple[str, str]:
    """YYYY-MM-DD/YYYY-MM-DD, start <= end."""
    import datetime as dt

    try:
        start, end = text.split("/")
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        raise ConfigurationError(f"a period is YYYY-MM-DD/YYYY-MM-DD, not {text!r}") from None
    if first > last:
        raise ConfigurationError(f"the period {text} ends before it starts")
    return first.isoformat(), last.isoformat()


@dataclass
class _Row:
    measures: int = 0
    automated: int = 0
    restrictions: Counter = field(default_factory=Counter)

    def add(self, decision: Decision) -> None:
        self.measures += 1
        self.automated += decision.automated == "fully"
        for heading, actions in RESTRICTIONS:
            if any(a in actions for a in decision.actions):
                self.restrictions[heading] += 1

    def cells(self) -> list[int]:
        return [self.measures, self.automated, *(self.restrictions[h] for h, _ in RESTRICTIONS)]


@dataclass
class _ListRow:
    automated: int = 0
    not_automated: int = 0
    confirmed: int = 0
    false_matches: int = 0


@dataclass
class Counts:
    """Everything the report says, counted in one pass over the decisions."""

    period: tuple[str, str]
    service: str
    categories: dict[str, _Row] = field(default_factory=lambda: defaultdict(_Row))
    keywords: dict[tuple[str, str], _Row] = field(default_factory=lambda: defaultdict(_Row))
    total: _Row = field(default_factory=_Row)
    lists: dict[str, _ListRow] = field(default_factory=lambda: defaultdict(_ListRow))
    months: Counter = field(default_factory=Counter)  # (YYYY-MM, category) -> decisions
    tco_removed: int = 0
    tco_reinstated: int = 0
    tco_reinstated_after_complaint: int = 0
    tco_complaints: int = 0

    def add(self, decision: Decision, config: DsaConfig) -> None:
        match, rule = primary_match(decision, config)
        category = rule.category if rule is not None else UNCATEGORISED
        keyword = rule.keywords[0] if rule is not None and rule.keywords else NO_KEYWORD
        self.total.add(decision)
        self.categories[category].add(decision)
        self.keywords[(category, keyword)].add(decision)
        self.months[(decision.decided_at[:7], category)] += 1
        used = match if match is not None else (decision.matches[0] if decision.matches else {})
        row = self.lists[str(used.get("list_name", "(unknown)"))]
        if decision.automated == "fully":
            row.automated += 1
        else:
            row.not_automated += 1
        row.confirmed += decision.review == "confirmed"
        row.false_matches += decision.review == "false_match"
        if rule is not None and rule.tco and {"removed", "disabled"} & set(decision.actions):
            self.tco_removed += 1
            self.tco_complaints += decision.review is not None and decision.after_complaint
            if decision.review == "false_match":
                self.tco_reinstated += 1
                self.tco_reinstated_after_complaint += decision.after_complaint


def count(decisions: Iterable[Decision], config: DsaConfig, period: tuple[str, str], service: str = "") -> Counts:
    counts = Counts(period=period, service=service or config.service)
    for decision in decisions:
        if period[0] <= decision.decided_date <= period[1]:
            counts.add(decision, config)
    return counts


def sheet5_rows(counts: Counts) -> list[list[Any]]:
    period, service = "/".join(counts.period), counts.service
    rows: list[list[Any]] = [[period, service, "TOTAL", "TOTAL", "", *counts.total.cells()]]
    categories = list(enums.STATEMENT_CATEGORIES) + ([UNCATEGORISED] if UNCATEGORISED in counts.categories else [])
    for category in categories:
        row = counts.categories.get(category, _Row())
        rows.append([period, service, "CATEGORY", category, "", *row.cells()])
        for (of, keyword), kept in sorted(counts.keywords.items()):
            if of == category:
                rows.append([period, service, "KEYWORD", category, keyword, *kept.cells()])
    return rows


def sheet8_rows(counts: Counts) -> list[list[Any]]:
    period, rows = "/".join(counts.period), []
    for name, row in sorted(counts.lists.items()):
        reviewed = row.confirmed + row.false_matches
        precision = f"{row.confirmed / reviewed:.4f}" if reviewed else ""
        rows.append([period, counts.service, f"hash list {name}", row.automated, row.not_automated, reviewed,
                     row.confirmed, row.false_matches, "", precision, "", PRECISION_NOTE])
    return rows


def tco_rows(counts: Counts) -> list[list[Any]]:
    return [["/".join(counts.period), counts.service, "hash matching against lists of known terrorist content",
             counts.tco_removed, counts.tco_reinstated, counts.tco_reinstated_after_complaint, counts.tco_complaints]]


def csv_text(headings: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(headings)
    writer.writerows(rows)
    return buffer.getvalue()


def summary_text(counts: Counts) -> str:
    total = counts.total
    lines = [f"Transparency counts for {counts.service or 'the service'}, {counts.period[0]} to {counts.period[1]}",
             "",
             f"Measures taken on the provider's own initiative after hash matching: {total.measures:,}",
             f"  of which decided by solely automated means: {total.automated:,}"]
    for heading, _ in RESTRICTIONS:
        if total.restrictions[heading]:
            lines.append(f"  {heading.lower()}: {total.restrictions[heading]:,}")
    lines += ["", "By category:"]
    for category, row in sorted(counts.categories.items(), key=lambda item: -item[1].measures):
        lines.append(f"  {category}: {row.measures:,}")
    lines += ["", "By hash list (precision over reviewed decisions):"]
    for name, listed in sorted(counts.lists.items()):
        reviewed = listed.confirmed + listed.false_matches
        precision = f"{listed.confirmed / reviewed:.1%} of {reviewed:,} reviewed" if reviewed else "none reviewed"
        lines.append(f"  {name}: {listed.automated + listed.not_automated:,} measures, precision {precision}")
    lines += ["", f"Terrorist content (TCO Art. 7): {counts.tco_removed:,} items removed or disabled by hash "
                  f"matching; {counts.tco_reinstated:,} reinstated after review "
                  f"({counts.tco_reinstated_after_complaint:,} after a complaint)."]
    return "\n".join(lines) + "\n"


def write_report(counts: Counts, folder: str, chart: bool = True) -> list[str]:
    """Write the report's files into `folder` (created 0700); their paths."""
    from hashmatch.base.files import make_private_dirs

    make_private_dirs(folder)
    written = []
    for name, text in (("own-initiative-illegal-content.csv", csv_text(SHEET5_HEADINGS, sheet5_rows(counts))),
                       ("automated-means.csv", csv_text(SHEET8_HEADINGS, sheet8_rows(counts))),
                       ("tco-article-7.csv", csv_text(TCO_HEADINGS, tco_rows(counts))),
                       ("summary.txt", summary_text(counts))):
        path = os.path.join(folder, name)
        with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        written.append(path)
    if chart:
        written.append(write_chart(counts, os.path.join(folder, "decisions-per-month.png")))
    return written


def write_chart(counts: Counts, path: str) -> str:
    """Decisions per month by category, stacked bars (matplotlib: the plot extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigurationError("the chart needs matplotlib: pip install 'hashmatch[plot]' (or --no-chart)") from None
    months = sorted({m for m, _ in counts.months})
    categories = sorted({c for _, c in counts.months})
    figure, axes = plt.subplots(figsize=(9, 4.5))
    bottom = [0] * len(months)
    for category in categories:
        values = [counts.months[(m, category)] for m in months]
        label = category.replace("STATEMENT_CATEGORY_", "").replace("_", " ").lower()
        axes.bar(months, values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    axes.set_title(f"Decisions after hash matching per month, {counts.period[0]} to {counts.period[1]}")
    axes.set_ylabel("decisions")
    if categories:
        axes.legend(fontsize=8)
    axes.tick_params(axis="x", labelrotation=45)
    figure.tight_layout()
    return save_figure(figure, path)
