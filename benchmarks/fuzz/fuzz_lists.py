"""atheris harness: arbitrary bytes as a hash-list file -> hashmatch.lists.read_list.

The bytes are written to a temporary file and read as every format of
hashmatch.lists.FORMATS and with auto-detection (format=None), each with
algorithm="pdq", all-or-nothing and with skip_invalid. The contract (README, "Hash
lists"): every problem is a hashmatch.ListFormatError (ConfigurationError is tolerated
too); any other exception, or a ParsedList whose columns disagree or whose hashes are
not lowercase hex of their algorithm's length, is a crash.

    pip install atheris
    python benchmarks/fuzz/corpus.py /tmp/unused --count 1 --lists /tmp/fuzz-lists-corpus   # seeds (once)
    python benchmarks/fuzz/fuzz_lists.py -max_total_time=180 -timeout=20 -rss_limit_mb=4096 \\
        -artifact_prefix=/tmp/fuzz-lists- /tmp/fuzz-lists-corpus

An empty corpus folder is seeded from corpus.list_cases() automatically.
"""
from __future__ import annotations

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("fuzz_lists.py needs atheris: pip install atheris")



def _instrumentation(include: list[str]):
    """atheris.instrument_imports, but by default without comparison (dataflow) tracing:
    atheris 3.0 leaks the result of every traced comparison that is not a bool, and
    hashmatch.lists compares numpy arrays (`chunk == 10`) on every read, so a traced run
    grows by ~150 KB per input and dies of OOM within minutes. HASHMATCH_FUZZ_DATAFLOW=1
    turns the tracing back on (better at guessing magic strings; run it short)."""
    if os.environ.get("HASHMATCH_FUZZ_DATAFLOW") != "1":
        try:
            from atheris.import_hook import HookManager

            return HookManager({name.split(".")[0] for name in include}, set(), True, trace_dataflow=False)
        except (ImportError, TypeError):  # a later atheris: fall back to the public API
            pass
    return atheris.instrument_imports(include=include)


with _instrumentation(["hashmatch"]):
    import hashmatch
    from hashmatch import ConfigurationError, ListFormatError
    from hashmatch.lists import FORMATS, read_list

from hashmatch.signals.hasher import HEX_LENGTH  # noqa: E402 (after the instrumented imports above, on purpose)

WORKDIR = tempfile.mkdtemp(prefix="hashmatch-fuzz-lists-")
PATH = os.path.join(WORKDIR, "list")
HEX = frozenset("0123456789abcdef")


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from known import is_known  # noqa: E402 - the shared known-bug list, beside this script


class ContractViolation(AssertionError):
    """read_list returned something inconsistent."""


def _check_parsed(parsed, fmt) -> None:
    n = len(parsed.hashes)
    columns = {"algorithms": parsed.algorithms, "categories": parsed.categories, "entry_ids": parsed.entry_ids,
               "dates": parsed.dates, "tags": parsed.tags, "lines": parsed.lines}
    for name, column in columns.items():
        if len(column) != n:
            raise ContractViolation(f"format {fmt}: {name} has {len(column)} items for {n} hashes")
    for alg, digest in zip(parsed.algorithms, parsed.hashes):
        if alg not in HEX_LENGTH or len(digest) != HEX_LENGTH[alg] or not HEX.issuperset(digest):
            raise ContractViolation(f"format {fmt}: entry {alg} {digest!r} is not {alg} hex")
    for rejected in parsed.rejected:
        if not getattr(rejected, "reason", None):
            raise ContractViolation(f"format {fmt}: a rejection without a reason: {rejected!r}")


def check(data: bytes) -> None:
    with open(PATH, "wb") as handle:
        handle.write(data)
    for fmt in (*FORMATS, None):
        for skip_invalid in (False, True):
            try:
                parsed = read_list(PATH, format=fmt, algorithm="pdq", skip_invalid=skip_invalid)
            except (ListFormatError, ConfigurationError) as exc:
                if not str(exc).strip():
                    raise ContractViolation(f"format {fmt}: {type(exc).__name__} with an empty message") from exc
                continue
            _check_parsed(parsed, fmt)


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    try:
        check(data)
    except ContractViolation:
        raise
    except Exception as exc:
        if not is_known(exc):
            raise


def _seed_if_empty(argv: list[str]) -> None:
    folders = [a for a in argv[1:] if not a.startswith("-")]
    if not folders or (os.path.isdir(folders[0]) and os.listdir(folders[0])) or os.path.isfile(folders[0]):
        return
    sys.path.insert(0, HERE)
    import corpus

    paths = corpus.generate_lists(folders[0], seed=0)
    print(f"seeded {folders[0]} with {len(paths)} lists from corpus.py", file=sys.stderr)


def main() -> None:
    _seed_if_empty(sys.argv)
    print(f"hashmatch {hashmatch.__file__}; formats {FORMATS}", file=sys.stderr)
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
