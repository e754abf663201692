"""Reading a list file's bytes: bounded chunks, whole lines, a line over the cap cut out
without ever being held whole, binary and non-UTF-8 content refused."""
from __future__ import annotations

import codecs
from typing import Iterator, NamedTuple

import numpy as np

from hashmatch.errors import ListFormatError
from hashmatch.lists.schema import CHUNK_BYTES, REJECT_TEXT_CHARS
from hashmatch.lists.values import _clip


class _Block:
    """Whole lines of the file: `data` (each line ends in b"\\n"), its decoded `text`,
    the offsets of the newlines `nl`, and each line's number `linenos`. `last`: nothing
    follows in the file; `before_long`: a line over the cap follows (so a CSV record
    cannot continue past this block)."""

    __slots__ = ("data", "text", "nl", "linenos", "last", "before_long")

    def __init__(self, data: bytes, text: str, nl: np.ndarray, linenos: np.ndarray, last: bool = False,
                 before_long: bool = False):
        self.data, self.text, self.nl, self.linenos = data, text, nl, linenos
        self.last, self.before_long = last, before_long

    @property
    def n(self) -> int:
        return len(self.nl)

    def start(self, i: int) -> int:
        return int(self.nl[i - 1]) + 1 if i else 0

    def line_text(self, i: int) -> str:
        return self.data[self.start(i):int(self.nl[i])][:4 * REJECT_TEXT_CHARS].decode("utf-8", "replace")

    def full_line(self, i: int) -> str:
        return self.data[self.start(i):int(self.nl[i])].decode("utf-8")

    def lines(self) -> list[str]:
        lines = self.text.split("\n")
        lines.pop()
        return lines

    def after(self, k: int) -> "_Block":
        """The block without its first k lines."""
        if k == 0:
            return self
        off = self.start(k)
        data = self.data[off:]
        return _Block(data, data.decode("utf-8"), self.nl[k:] - off, self.linenos[k:], self.last, self.before_long)

    def prefiltered(self, comments: bool) -> "_Block":
        """Without blank (empty or whitespace-only) lines and, if `comments`, lines
        starting with '#'."""
        if not self.n:
            return self
        starts = np.empty(self.n, np.int64)
        starts[0] = 0
        starts[1:] = self.nl[:-1] + 1
        lengths = self.nl - starts
        arr = np.frombuffer(self.data, np.uint8)
        first = arr[starts]  # an empty line's first byte is its b"\n"
        drop = lengths == 0
        if comments:
            drop |= first == ord("#")
        # Whitespace-only lines start with whitespace: check those few one by one.
        for i in np.flatnonzero((first == 32) | (first == 9) | (first == 13)).tolist():
            drop[i] = not self.data[starts[i]:self.nl[i]].strip()
        if not drop.any():
            return self
        keep = ~drop
        kept = arr[np.repeat(keep, lengths + 1)].tobytes()
        nl = np.flatnonzero(np.frombuffer(kept, np.uint8) == 10)
        return _Block(kept, kept.decode("utf-8"), nl, self.linenos[keep], self.last, self.before_long)


class _LongLine(NamedTuple):
    line: int
    head: str


class _Reader:
    """Iterates a binary file as _Block and _LongLine items. Holds at most about
    CHUNK_BYTES + 2 x max_line bytes, whatever the file holds: a line over the cap is
    reported from its first bytes and skipped chunk by chunk."""

    def __init__(self, handle, path: str, max_line: int, chunk: int | None = None) -> None:
        self.handle, self.path, self.max_line = handle, path, max_line
        self.chunk = max(CHUNK_BYTES if chunk is None else chunk, 1)  # the module constant, read now
        self.line = 1  # number of the first line of `carry`
        self.carry = b""  # bytes read but not handed out yet (no complete line, or given back)
        self.eof = False
        self._pushed: tuple[bytes, int] | None = None

    def unread(self, data: bytes, line: int) -> None:
        """Give back the tail of the block just handed out, from line `line` on (a CSV
        record that continues in the next chunk); it comes again with more lines."""
        self._pushed = (data, line)

    def _read(self) -> bytes:
        try:
            chunk = self.handle.read(self.chunk)
        except OSError as exc:
            raise ListFormatError(self.path, None, f"cannot read: {exc.strerror or exc}") from exc
        nul = chunk.find(b"\0")
        if nul >= 0:
            line = self.line + self.carry.count(b"\n") + chunk.count(b"\n", 0, nul)
            raise ListFormatError(self.path, line, "binary file: NUL byte (a hash list is UTF-8 text)")
        return chunk

    def __iter__(self) -> Iterator[_Block | _LongLine]:
        first = True
        while True:
            chunk = b"" if self.eof else self._read()
            if first:
                first = False
                if chunk[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                    raise ListFormatError(self.path, None, "UTF-16 text: save the list as UTF-8")
                if chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8):]
            if not chunk:
                self.eof = True
                if not self.carry:
                    return
                data, self.carry = self.carry, b""
                if not data.endswith(b"\n"):
                    data += b"\n"
                yield from self._blocks(data, self.line, last=True)
                continue
            data = self.carry + chunk if self.carry else chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            long_tail = len(rest) > self.max_line
            self.carry = b"" if long_tail else rest
            if cut:
                yield from self._blocks(data[:cut], self.line, before_long=long_tail)
                if self._pushed is not None:  # pragma: no cover - a parser never gives back before a long line
                    continue
            if long_tail:
                # A line longer than the cap: report it, then skip to its end without keeping it.
                yield _LongLine(self.line, _clip(rest[:4 * REJECT_TEXT_CHARS].decode("utf-8", "replace")))
                del data, rest
                while not self.eof:
                    chunk = self._read()
                    if not chunk:
                        self.eof = True
                        break
                    pos = chunk.find(b"\n")
                    if pos >= 0:
                        self.carry = chunk[pos + 1:]
                        break
                self.line += 1

    def _blocks(self, data: bytes, line0: int, last: bool = False,
                before_long: bool = False) -> Iterator[_Block | _LongLine]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        arr = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(arr == 10)
        self.line = line0 + len(nl)
        lengths = np.diff(nl, prepend=-1) - 1
        long_lines = np.flatnonzero(lengths > self.max_line).tolist()
        begin = 0  # first line of the current run of normal lines
        for k in long_lines + [len(nl)]:
            if k > begin:
                lo = int(nl[begin - 1]) + 1 if begin else 0
                hi = int(nl[k - 1]) + 1
                piece = data[lo:hi]
                try:
                    text = piece.decode("utf-8")
                except UnicodeDecodeError as exc:
                    good = piece.count(b"\n", 0, exc.start)  # whole lines before the bad byte
                    if good:  # read first (an earlier bad entry is the first error whatever the chunking)
                        cut = int(nl[begin + good - 1]) + 1 - lo
                        yield _Block(piece[:cut], piece[:cut].decode("utf-8"), nl[begin:begin + good] - lo,
                                     np.arange(line0 + begin, line0 + begin + good, dtype=np.int64))
                        self._pushed = None  # the file is refused below: nothing is read again
                    bad_line = line0 + begin + good
                    raise ListFormatError(
                        self.path, bad_line,
                        f"not UTF-8 text (binary file?): invalid byte 0x{piece[exc.start]:02x}") from None
                at_end = k == len(nl)
                yield _Block(piece, text, nl[begin:k] - lo, np.arange(line0 + begin, line0 + k, dtype=np.int64),
                             last and at_end, before_long if at_end else True)
                if self._pushed is not None:
                    tail, line = self._pushed
                    self._pushed = None
                    self.carry = tail + data[hi:] + self.carry
                    self.line = line
                    return
            if k < len(nl):
                lo = int(nl[k - 1]) + 1 if k else 0
                yield _LongLine(line0 + k, _clip(data[lo:lo + 4 * REJECT_TEXT_CHARS].decode("utf-8", "replace")))
            begin = k + 1


