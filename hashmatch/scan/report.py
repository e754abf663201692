"""Scan reports: one row per file found, written as each file finishes, in JSON Lines
(default) or CSV, plus a final summary record.

JSON Lines row: ``path``, ``size``, ``sha256``, ``status`` (match, no_match, low_quality,
error), ``hashes``, ``pdq_quality``, ``image`` (width, height, format, mode, frames),
``matches`` (each with algorithm, distance, threshold, list_name, list_version, category,
entry_id, store_id, variant, query_quality) or ``error`` (type, code, message). A file
whose content did not decode but whose exact hashes were matched has status match or
no_match, no ``image``, and ``decode_error`` (type, code, message). The last record is
``{"summary": {...}}``.

CSV: the same, flattened: ``path,size,sha256,status,<one column per algorithm>,<the
columns signal types add, e.g. pdq_quality>,matches,error_type,error_code,error_message,
decode_error,summary``;
``matches`` and ``decode_error`` hold JSON; the last row has status ``summary`` and the
summary as JSON.

The file is created with mode 0600 and every row is flushed when written (fsync at most
every FSYNC_INTERVAL_S), so after any interruption the report holds whole rows plus at
most one partial line at the end. Resuming keeps the complete rows, drops the partial
line and any earlier summary (the kept part is rewritten atomically), then appends.
"""
from __future__ import annotations

import csv
import json
import os
import time
from typing import Any, Iterator, Sequence

from hashmatch import signals
from hashmatch.base.files import atomic_write
from hashmatch.errors import ConfigurationError

REPORT_FORMATS = ("jsonl", "csv")
FSYNC_INTERVAL_S = 2.0


def _csv_columns(algorithms: Sequence[str]) -> list[str]:
    extra = [c for a in algorithms for c in signals.get(a).report_columns()]  # e.g. pdq_quality
    return ["path", "size", "sha256", "status", *algorithms, *extra, "matches", "error_type", "error_code",
            "error_message", "decode_error", "summary"]


def _records(path: str, fmt: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The complete records of an existing report: (header text, [(record text, record)]).

    Records are parsed, not judged by physical lines: a CSV field may hold newlines and
    commas (a hostile file name), and only the csv module knows where its record ends. A
    record cut by an interruption (a partial last line, or a quoted field left open) is
    dropped; so is a JSON line that does not parse. Lines split on "\n" only: a name may
    hold any other line-breaking character."""
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.rfind(b"\n")
    text = data[:end + 1].decode("utf-8", "surrogateescape") if end >= 0 else ""
    lines = [line + "\n" for line in text.split("\n")[:-1]]
    records: list[tuple[str, dict[str, Any]]] = []
    if fmt == "jsonl":
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a damaged line: its file is scanned again
            if isinstance(record, dict):
                records.append((line, record))
        return "", records
    consumed = 0

    def feed() -> Iterator[str]:
        nonlocal consumed
        for line in lines:
            consumed += 1
            yield line

    reader = csv.reader(feed(), strict=True)
    header_text, header, start = "", None, 0
    try:
        for fields in reader:
            chunk = "".join(lines[start:consumed])
            start = consumed
            if header is None:
                header_text, header = chunk, fields
            elif len(fields) == len(header):
                records.append((chunk, dict(zip(header, fields))))
    except csv.Error:
        pass  # a quoted field left open at the end: the record was cut, its file is scanned again
    return header_text, records


def _is_summary(record: dict[str, Any], fmt: str) -> bool:
    if fmt == "jsonl":
        return "summary" in record
    return record.get("status") == "summary" and not record.get("path")


def read_report_rows(path: str, fmt: str = "jsonl") -> Iterator[dict[str, Any]]:
    """The file rows of an existing report (summary records left out), as dicts with at
    least path and status (and error code / match categories for the counts)."""
    if fmt not in REPORT_FORMATS:
        raise ConfigurationError(f"unknown report format {fmt!r}")
    for _, row in _records(path, fmt)[1]:
        if _is_summary(row, fmt) or not row.get("path") or row.get("status") in (None, ""):
            continue
        if fmt == "jsonl":
            yield row
            continue
        out: dict[str, Any] = {"path": row["path"], "status": row["status"]}
        if row["status"] == "error":
            out["error"] = {"type": row.get("error_type"), "code": row.get("error_code"),
                            "message": row.get("error_message")}
        try:
            out["matches"] = json.loads(row["matches"]) if row.get("matches") else []
            if row.get("decode_error"):
                out["decode_error"] = json.loads(row["decode_error"])
        except ValueError:
            continue
        yield out


class ReportWriter:
    """Writes rows to the report as they come; `close(summary)` appends the summary."""

    def __init__(self, path: str, fmt: str, algorithms: Sequence[str], *, resume: bool = False):
        if fmt not in REPORT_FORMATS:
            raise ConfigurationError(f"unknown report format {fmt!r}; choose from {', '.join(REPORT_FORMATS)}")
        self.path = path
        self.fmt = fmt
        self.columns = _csv_columns(algorithms)
        self._last_sync = time.monotonic()
        kept: list[str] = []
        self._stdout = path == "-"
        if self._stdout:  # rows to standard output: nothing to resume, nothing to fsync
            import sys

            self._handle = sys.stdout
            self._csv = csv.DictWriter(self._handle, self.columns, extrasaction="ignore") if fmt == "csv" else None
            if self._csv is not None:
                self._csv.writeheader()
            return
        if resume and os.path.exists(path):
            header, records = _records(path, fmt)
            kept = [text for text, record in records if not _is_summary(record, fmt)]
            if kept and header:
                kept.insert(0, header)
            with atomic_write(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
                handle.writelines(kept)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if kept or resume else os.O_TRUNC)
        fd = os.open(path, flags, 0o600)
        os.fchmod(fd, 0o600)
        self._handle = os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="")
        self._csv = csv.DictWriter(self._handle, self.columns, extrasaction="ignore") if fmt == "csv" else None
        if self._csv is not None and not kept:
            self._csv.writeheader()
            self._handle.flush()

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is None:
            self._handle.write(json.dumps(row) + "\n")
        else:
            self._csv.writerow(self._flatten(row))
        self._handle.flush()
        now = time.monotonic()
        if not self._stdout and now - self._last_sync >= FSYNC_INTERVAL_S:
            os.fsync(self._handle.fileno())
            self._last_sync = now

    def _flatten(self, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("status") == "summary":
            return row
        flat = {k: v for k, v in row.items() if not isinstance(v, (dict, list))}
        flat.update(row.get("hashes", {}))
        if "matches" in row:
            flat["matches"] = json.dumps(row["matches"])
        if "decode_error" in row:
            flat["decode_error"] = json.dumps(row["decode_error"])
        if "error" in row:
            flat.update(error_type=row["error"].get("type"), error_code=row["error"].get("code"),
                        error_message=row["error"].get("message"))
        return flat

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._handle.closed:
            return
        if self._stdout:
            if summary is not None:
                self.write(summary if self._csv is None else
                           {"path": "", "status": "summary", "summary": json.dumps(summary["summary"])})
            self._handle.flush()
            return
        if summary is not None:
            if self._csv is None:
                self._handle.write(json.dumps(summary) + "\n")
            else:
                self._csv.writerow({"path": "", "status": "summary", "summary": json.dumps(summary["summary"])})
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
