"""`hashmatch lookup`: precomputed hashes (arguments, stdin lines, or `hashmatch hash`
records) matched against a store, one JSON line per query."""
from __future__ import annotations

import io
import json
import os
import select
import sys
from collections import deque
from typing import IO, Any, Iterator

import click

from hashmatch import signals
from hashmatch.cli.common import STORE_OPTION, SetupError, match_config, match_options, open_store, stdout
from hashmatch.errors import ConfigurationError
from hashmatch.matching.batch import BATCH_QUERIES, Item, batches_of, match_batches
from hashmatch.matching.matcher import Matcher

#: A stdin line longer than this is answered with an error and skipped, never read into
#: memory whole (a vPDQ record of a day-long video at one frame a second is ~7 MB).
MAX_LINE_BYTES = 64 << 20


@click.command("lookup")
@click.argument("hashes", nargs=-1)
@STORE_OPTION
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Matching threads [default: the usable cores].")
@match_options(dihedral_help="Also search the PDQ dihedral variants of records that carry them (hash --dihedral).",
               trim_help="Also search the border-trimmed PDQ of records (hash --trim-borders).")
def lookup(hashes, store_path, workers, **match) -> None:
    """Look hashes up: HASH arguments, or one per line on stdin. A line is hex, optionally
    preceded by its algorithm (`pdq 0a1b...`; bare hex is tried as every algorithm of that
    length held by the store), or a JSON record of `hashmatch hash` (its path, hashes, PDQ
    quality and dihedral variants are used, so `hashmatch hash DIR | hashmatch lookup -s S`
    matches a folder). One JSON line per query; a bad query gets an `error` and the run
    goes on.

    Exit status: 0 no match, 1 at least one match, 2 usage or setup error.
    """
    try:
        matcher = Matcher(open_store(store_path), match_config(**match))
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
    out = stdout()
    # Output records in input order, each with whether it waits for a match result (a bad
    # line is answered with its error, no search).
    waiting: deque[tuple[dict[str, Any], bool]] = deque()

    def write(record: dict[str, Any]) -> None:
        out.write(json.dumps(record) + "\n")

    def batches() -> Iterator[list[Item]]:
        source = batches_of(hashes) if hashes else _ready_lines(sys.stdin)
        while True:
            out.flush()  # every answer written so far goes out before a read that may wait
            batch = next(source, None)
            if batch is None:
                return
            items: list[Item] = []
            for raw in batch:
                if not raw.strip() and not hashes:  # blank stdin lines are skipped
                    continue
                if isinstance(raw, _TooLong):
                    waiting.append(({"query": str(raw), "error": f"a line longer than {MAX_LINE_BYTES} bytes"}, False))
                    continue
                record, query = _lookup_query(raw.strip(), matcher)
                waiting.append((record, query is not None))
                if query is not None:
                    items.append((query, [a for a in query if signals.find(a)]))
            while waiting and not waiting[0][1]:  # bad lines with nothing unanswered before them
                write(waiting.popleft()[0])
            yield items  # empty when the input paused: every pending answer is written first

    any_match = False
    for result in match_batches(matcher, batches(), workers):
        while not waiting[0][1]:
            write(waiting.popleft()[0])
        record = waiting.popleft()[0]
        if isinstance(result, ConfigurationError):
            record["error"] = str(result)
        else:
            record.update(result.to_dict())
            any_match |= result.matched
        write(record)
    while waiting:
        write(waiting.popleft()[0])
    out.flush()
    sys.exit(1 if any_match else 0)


class _TooLong(str):
    """Stands for a stdin line over MAX_LINE_BYTES (its first 200 characters): answered
    with an error, never held whole in memory."""


def _ready_lines(stream: IO[str], size: int = BATCH_QUERIES) -> Iterator[list[str]]:
    """The stream's lines in lists of up to `size`: the complete lines ready now, then an
    empty list whenever the input pauses, so a program feeding lookup one line at a time
    gets each answer before it sends the next (a co-process), while a pipe or a file is
    read a batch at a time. Bytes that are not UTF-8 survive as surrogate escapes."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # not a file (an in-memory stream)
        yield from batches_of(stream, size)
        return
    parts: list[bytes] = []  # the pieces of the line being read
    held = 0  # their bytes
    skipping = False  # inside a line already answered as too long
    lines: list[str] = []
    while True:
        if lines and not select.select([fd], [], [], 0)[0]:  # nothing more ready: answer these
            yield lines
            yield []
            lines = []
        data = os.read(fd, 1 << 16)
        if not data:
            break
        pieces = data.split(b"\n")
        for i, piece in enumerate(pieces):
            if not skipping:
                parts.append(piece)
                held += len(piece)
                if held > MAX_LINE_BYTES:
                    lines.append(_TooLong(b"".join(parts)[:200].decode("utf-8", "replace")))
                    parts, held, skipping = [], 0, True
            if i < len(pieces) - 1:  # a newline ends this line
                if not skipping:
                    lines.append(b"".join(parts).decode("utf-8", "surrogateescape"))
                parts, held, skipping = [], 0, False
        while len(lines) >= size:
            yield lines[:size]
            lines = lines[size:]
    if parts and not skipping:
        lines.append(b"".join(parts).decode("utf-8", "surrogateescape"))
    yield lines


def _lookup_query(text: str, matcher: Matcher) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the output record so far, the flat record to match or None on error)."""
    if text.startswith("{"):
        return _lookup_hash_record(text, matcher)
    record: dict[str, Any] = {"query": text}
    head, _, rest = text.partition(" ")
    if text.startswith("[") or rest.lstrip().startswith("["):  # a vPDQ signal string, after its name or alone
        signal = signals.find("vpdq" if text.startswith("[") else head)
        if signal is None or not signal.variable:
            record["error"] = f"{head!r} is not a signal type whose hashes are lists of frames"
            return record, None
        return record, {signal.name: text if text.startswith("[") else rest}
    parts = text.replace(",", " ").split()
    if len(parts) == 2:
        signal = signals.find(parts[0])
        if signal is None:
            record["error"] = f"unknown algorithm {parts[0]!r}"
            return record, None
        return record, {signal.name: parts[1]}
    if len(parts) != 1:
        record["error"] = "expected HEX, ALGORITHM HEX or a JSON record of hashmatch hash"
        return record, None
    candidates = [a for a in matcher.algorithms if signals.get(a).hex_length == len(parts[0])]
    if not candidates:
        record["error"] = f"no algorithm in this store has {len(parts[0])}-digit hashes"
        return record, None
    return record, {a: parts[0] for a in candidates}


def _lookup_hash_record(text: str, matcher: Matcher) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A `hashmatch hash` record: its hashes of this store's algorithms and what each
    signal type reads beside them (PDQ: quality, dihedral and trimmed variants)."""
    try:
        source = json.loads(text)
    except ValueError as exc:
        return {"query": text[:200], "error": f"not valid JSON: {exc}"}, None
    if not isinstance(source, dict):
        return {"query": text[:200], "error": "a JSON query must be an object"}, None
    record: dict[str, Any] = {"path": source["path"]} if "path" in source else {}
    present = [a for a in matcher.algorithms if isinstance(source.get(a), str)]
    if "error" in source:
        # A file that did not decode still has the exact hashes of its bytes: match those,
        # keeping the decode problem. With none, the file's error passes through.
        record["decode_error" if present else "error"] = source["error"]
        return record, ({a: source[a] for a in present} if present else None)
    if not present:
        record["error"] = f"the record holds none of this store's algorithms ({', '.join(matcher.algorithms)})"
        return record, None
    return record, source
