"""The `tx-csv` format: python-threatexchange's `tx dataset -P --csv` export (columns
collab, signal_type, signal_str, category, tags). Read like a CSV (delimited.py), with its
own header roles and rows: the category is python-threatexchange's aggregate opinion
(module docs of hashmatch.lists), the collab and the opinion become tags, and one
signal's rows from several collabs are one entry (the builder merges them)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from hashmatch.lists.delimited import _DelimitedParser

#: tx-csv signal types kept as a tag ``signal_type:<name>`` on the entry (provenance).
_TX_TAGGED_SIGNAL_TYPES = frozenset({"video_md5", "video_sha256"})

#: python-threatexchange AggregateSignalOpinionCategory names (lower-cased) ->
#: (retraction reason or None to import, tag added to the entry or None).
_TX_OPINIONS: dict[str, tuple[str | None, str | None]] = {
    "positive_class": (None, None),
    "investigation_seed": (None, "investigation_seed"),
    "disputed": (None, "disputed"),  # some opinions positive, some negative: still matches, flagged
    "negative_class": ("negative_class", None),
    # The names of python-threatexchange before 1.0 (SignalOpinionCategory), in older exports.
    "true_positive": (None, None),
    "worth_investigating": (None, "investigation_seed"),
    "false_positive": ("false_positive", None),
}


class TxCsvParser(_DelimitedParser):
    def _roles(self, names: list[str], line: int) -> dict[str, int]:
        roles: dict[str, int] = {}
        for role, name in (("hash", "signal_str"), ("algorithm", "signal_type"), ("opinion", "category"),
                           ("tags", "tags"), ("collab", "collab")):
            if name in names:
                roles[role] = names.index(name)
        if "hash" not in roles or "algorithm" not in roles:
            raise self.b.fail(line, "not a python-threatexchange CSV: the header needs signal_type and "
                                    f"signal_str columns; found: {', '.join(names)[:200]}")
        return roles

    def _add(self, linenos: np.ndarray, columns: dict[str, list[str]], texts: Callable[[int], str]) -> None:
        n = len(columns["hash"])
        opinions = columns.get("opinion", [""] * n)
        tag_fields = columns.get("tags", [""] * n)
        collabs = columns.get("collab", [""] * n)
        signal_types = columns["algorithm"]
        tags, retract, keep = [], [], []
        for i, (opinion, tag_field, collab, signal_type) in enumerate(zip(opinions, tag_fields, collabs,
                                                                           signal_types)):
            name = opinion.strip().lower()
            if name and name not in _TX_OPINIONS:
                self.b.reject(int(linenos[i]), f"unknown threatexchange opinion category {opinion.strip()[:40]!r} "
                                               "(expected POSITIVE_CLASS, INVESTIGATION_SEED, DISPUTED or "
                                               "NEGATIVE_CLASS, or the older TRUE_POSITIVE, WORTH_INVESTIGATING or "
                                               "FALSE_POSITIVE)", texts(i))
                continue
            reason, opinion_tag = _TX_OPINIONS.get(name, (None, None))  # blank: imported as listed
            row_tags = tag_field.split()
            if opinion_tag:
                row_tags.append(opinion_tag)
            kind = signal_type.strip().lower()
            if kind in _TX_TAGGED_SIGNAL_TYPES:
                row_tags.append(f"signal_type:{kind}")
            if collab.strip():
                row_tags.append(f"collab:{collab.strip()}")
            tags.append(tuple(dict.fromkeys(row_tags)))
            retract.append(reason)
            keep.append(i)
        if len(keep) != n:
            columns = {role: [col[i] for i in keep] for role, col in columns.items()}
            linenos = linenos[keep]
            inner = texts
            texts = lambda k: inner(keep[k])  # noqa: E731
        self.b.add(linenos, columns["hash"], texts, algs=columns["algorithm"], tags=tags, retract=retract)

