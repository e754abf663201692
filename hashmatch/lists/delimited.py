"""The `csv` and `tsv` formats (and the reading `tx-csv` shares with them): a header
row naming the columns (COLUMN_NAMES), RFC 4180 quoting, bulk parsing of quote-free
chunks, and quoted fields that may span lines only while they cannot be an unterminated
quote swallowing rows (module docs of hashmatch.lists)."""
from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Callable

import numpy as np

from hashmatch.lists.schema import COLUMN_NAMES
from hashmatch.lists.values import _looks_like_hash

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.lists.builder import _Builder
    from hashmatch.lists.reader import _Block, _Reader

class _DelimitedParser:
    """csv and tsv (tx-csv: tx_csv.TxCsvParser)."""

    def __init__(self, builder: _Builder, reader: _Reader, delimiter: str) -> None:
        self.b, self.reader, self.delim = builder, reader, delimiter
        self.roles: dict[str, int] | None = None
        self.ncols = 0

    def _set_header(self, fields: list[str], line: int) -> None:
        names = [f.strip().lstrip("\ufeff").strip().lower() for f in fields]
        self.roles, self.ncols = self._roles(names, line), len(names)

    def _roles(self, names: list[str], line: int) -> dict[str, int]:
        """Column index of each field role, from the header's (lower-cased) names."""
        roles: dict[str, int] = {}
        for role, keys in COLUMN_NAMES.items():
            for key in keys:
                if key in names:
                    roles[role] = names.index(key)
                    break
        if "hash" not in roles:
            raise self.b.fail(line, f"no hash column in the header (expected one of: "
                                    f"{', '.join(COLUMN_NAMES['hash'])}); found: {', '.join(names)[:200]}")
        return roles

    def feed(self, block: _Block) -> None:
        if self.roles is None:
            # Before the header, blank lines and '#' comments may stand (a preamble).
            # After it, a line starting with '#' is a row like any other: never dropped.
            # The header is one line: a quote left open there is an error.
            for k in range(block.n):
                line = block.full_line(k)
                if line.strip() and not line.lstrip().startswith("#"):
                    self._set_header(self._header_fields(line, int(block.linenos[k])), int(block.linenos[k]))
                    block = block.after(k + 1)
                    break
            else:
                return
        if b'"' in block.data:
            self._feed_quoted(block)
        else:
            self._feed_plain(block)

    def _header_fields(self, line: str, lineno: int) -> list[str]:
        if '"' not in line:
            return line.split(self.delim)
        try:
            return next(csv.reader([line], delimiter=self.delim, strict=True))
        except csv.Error as exc:
            raise self.b.fail(lineno, f"malformed CSV header: {exc} (unterminated quote?)") from None

    def _feed_plain(self, block: _Block) -> None:
        """A block without quote characters: one field per delimiter, in bulk."""
        block = block.prefiltered(comments=False)
        if not block.n:
            return
        arr = np.frombuffer(block.data, np.uint8)
        if self.ncols == 1:
            uniform = self.delim.encode() not in block.data
        else:
            cuts = np.flatnonzero(arr == ord(self.delim))
            uniform = bool((np.diff(np.searchsorted(cuts, block.nl), prepend=0) == self.ncols - 1).all())
        if uniform:
            flat = block.text.replace("\n", self.delim).split(self.delim)
            flat.pop()
            assert self.roles is not None
            columns = {role: flat[i::self.ncols] for role, i in self.roles.items()}
            self._add(block.linenos, columns, block.line_text)
            return
        lines = block.lines()
        rows, keep = [], []
        for i, line in enumerate(lines):
            fields = line.split(self.delim)
            if len(fields) != self.ncols:
                self.b.reject(int(block.linenos[i]), f"expected {self.ncols} fields, found {len(fields)}", line)
                continue
            rows.append(fields)
            keep.append(i)
        self._add_rows(block.linenos[keep], rows, lambda k: lines[keep[k]])

    def _feed_quoted(self, block: _Block) -> None:
        """Blocks with quote characters go through the csv module (multi-line fields).

        A record spanning lines is checked (_spanning_problem); a quote judged
        unterminated rejects the line that opened it, and a new csv reader resumes at
        the next line (see "Unterminated quotes" in the module docs)."""
        reader = csv.reader(io.StringIO(block.text), delimiter=self.delim, strict=True)
        base = 0  # line of the block where `reader` starts
        lines: list[str] | None = None  # the block's lines, once a reader has to start mid-block
        rows: list[list[str]] = []
        keep: list[int] = []
        ncols = self.ncols
        append_row, append_keep = rows.append, keep.append
        done = 0  # lines of the block consumed by complete records (or rejected)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                first, end = done, base + reader.line_num
                at_end = "unexpected end of data" in str(exc)  # a quoted field runs past this block
                if at_end and not block.last and not block.before_long and \
                        self._span(block, first, block.n) <= self.b.max_line:
                    self.reader.unread(block.data[block.start(first):], int(block.linenos[first]))
                    break
                if not at_end and end - first <= 1:  # an error within one line: that line is bad
                    self.b.reject(int(block.linenos[first]), f"malformed CSV: {exc}", block.line_text(first))
                    done = end
                    continue
                problem = self._spanning_problem(block, first, max(end, first + 1), exc, at_end)
            else:
                first = done
                done = base + reader.line_num
                if len(row) == ncols and done - first == 1 and row[0] and not row[0].isspace():
                    append_row(row)  # the common case, quickly
                    append_keep(first)
                    continue
                if len(row) == ncols and (done - first == 1 or self._spanning_problem(block, first, done) is None):
                    if "".join(row).strip() or not self._blank(block, first, done):
                        append_row(row)
                        append_keep(first)
                    continue
                problem = None if done - first == 1 else self._spanning_problem(block, first, done)
                if problem is None:
                    if row and not self._blank(block, first, done):
                        self.b.reject(int(block.linenos[first]), f"expected {ncols} fields, found {len(row)}",
                                      block.line_text(first))
                    continue
            # An unterminated quote: reject the line that opened it, read on from the next.
            if not self.b.skip_invalid:
                self._add_rows(block.linenos[keep], rows, lambda k: block.line_text(keep[k]))
                self.b.check()  # an earlier bad line is the error
                raise self.b.fail(int(block.linenos[first]), str(problem))
            self.b.reject(int(block.linenos[first]),
                          f"{problem}; the lines after it are read on their own", block.line_text(first))
            done = first + 1
            if done >= block.n:
                break
            if block.data.find(b'"', block.start(done)) < 0:  # the rest has no quote: in bulk
                self._add_rows(block.linenos[keep], rows, lambda k: block.line_text(keep[k]))
                self._feed_plain(block.after(done))
                return
            if lines is None:
                lines = block.lines()
            base = done
            reader = csv.reader((lines[i] + "\n" for i in range(base, block.n)), delimiter=self.delim, strict=True)
        self._add_rows(block.linenos[keep], rows, lambda k: block.line_text(keep[k]))

    @staticmethod
    def _blank(block: _Block, first: int, end: int) -> bool:
        """Lines first..end-1 are one blank line (whitespace only, delimiters included), as
        prefiltered() drops it."""
        return end - first == 1 and not block.data[block.start(first):int(block.nl[first])].strip()

    @staticmethod
    def _span(block: _Block, first: int, end: int) -> int:
        """Bytes of lines first..end-1 of the block, newlines included."""
        return int(block.nl[end - 1]) + 1 - block.start(first)

    def _spanning_problem(self, block: _Block, first: int, end: int, exc: csv.Error | None = None,
                          at_end: bool = False) -> str | None:
        """Why a record read over lines first..end-1 (or one the csv module gave up on
        there) is an unterminated quote, or None when it is a sound multi-line record."""
        opened = int(block.linenos[first])
        cap = self.b.max_line
        if self._span(block, first, end) > cap or (at_end and block.before_long and not block.last):
            if self._span(block, first, block.n) > cap:
                past = int(np.searchsorted(block.nl, block.start(first) + cap))
                to = int(block.linenos[past])
            else:  # the next line is itself over the cap
                to = int(block.linenos[-1]) + 1
            return f"malformed CSV: a quoted field opened at line {opened} runs over {cap} bytes, to line {to} " \
                   "(unterminated quote?)"
        last = int(block.linenos[end - 1])
        if at_end:
            return f"malformed CSV: unterminated quoted field: the quote opened at line {opened} is still open " \
                   f"at the end of the file (line {last})"
        if exc is not None:
            return f"malformed CSV: a quoted field opened at line {opened} runs to line {last}, where: {exc} " \
                   "(unterminated quote?)"
        assert self.roles is not None
        column = self.roles["hash"]
        for i in range(first + 1, end):
            fields = block.full_line(i).split(self.delim)
            if len(fields) == self.ncols and _looks_like_hash(fields[column]):
                return f"malformed CSV: a quoted field opened at line {opened} runs to line {last}, over line " \
                       f"{int(block.linenos[i])}, which reads as a row of its own (unterminated quote?)"
        return None

    def _add_rows(self, linenos: np.ndarray, rows: list[list[str]], texts: Callable[[int], str]) -> None:
        if not rows:
            return
        assert self.roles is not None
        columns = {role: [r[i] for r in rows] for role, i in self.roles.items()}
        self._add(linenos, columns, texts)

    def _add(self, linenos: np.ndarray, columns: dict[str, list[str]], texts: Callable[[int], str]) -> None:
        self.b.add(linenos, columns["hash"], texts, algs=columns.get("algorithm"), cats=columns.get("category"),
                   ids=columns.get("entry_id"), dates=columns.get("date"), tags_raw=columns.get("tags"))

    def finish(self) -> None:
        pass


