"""atheris harness: arbitrary bytes -> hashmatch.Hasher.hash.

The contract under test (README, "Bad input"): any input either hashes to a well-formed
HashResult or raises a hashmatch.ImageError subclass with a code and a message. Any
other exception, an ImageError without its code or message, or a malformed result is a
crash (atheris saves the input as crash-<sha1> under -artifact_prefix).

    pip install atheris
    python benchmarks/fuzz/corpus.py /tmp/fuzz-decode-corpus          # seed corpus (once)
    python benchmarks/fuzz/fuzz_decode.py -max_total_time=180 -timeout=20 -rss_limit_mb=4096 \\
        -artifact_prefix=/tmp/fuzz-decode- /tmp/fuzz-decode-corpus

An empty corpus folder is seeded from corpus.py automatically. Reproduce a crash with
`python benchmarks/fuzz/fuzz_decode.py /tmp/fuzz-decode-crash-...` (one run, no fuzzing).
Python code (hashmatch.decode.image, Pillow's plugins) is instrumented for coverage; the
native decoders and hashmatch's Cython kernels run uninstrumented (build the kernels
with HASHMATCH_SANITIZE=1 and preload libasan to catch memory errors in them).
"""
from __future__ import annotations

import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("fuzz_decode.py needs atheris: pip install atheris")

with atheris.instrument_imports(include=["hashmatch", "PIL"]):
    import hashmatch
    from hashmatch import Hasher, HashResult, ImageError

ALGORITHMS = ("pdq", "phash", "dhash", "ahash", "md5")
HEX_DIGITS = {"pdq": 64, "phash": 16, "dhash": 16, "ahash": 16, "md5": 32}
HASHER = Hasher(ALGORITHMS, trim_borders=True)
warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF/TIFF tags; not a failure


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from known import is_known  # noqa: E402 - the shared known-bug list, beside this script


class ContractViolation(AssertionError):
    """The input was neither hashed properly nor refused with a typed error."""


def check(data: bytes) -> None:
    try:
        result = HASHER.hash(data)
    except ImageError as exc:
        if not exc.code or exc.code == ImageError.code or not str(exc).strip():
            raise ContractViolation(f"{type(exc).__name__} without a code or message: {exc.code!r} {exc!s}") from exc
        return
    if not isinstance(result, HashResult):
        raise ContractViolation(f"hash() returned {type(result).__name__}")
    for alg in ALGORITHMS:
        digest = result.hashes.get(alg)
        if not (isinstance(digest, str) and len(digest) == HEX_DIGITS[alg]):
            raise ContractViolation(f"{alg} hash is {digest!r}")
    if not (0 <= result.pdq_quality <= 100) or min(result.width, result.height) < 5:
        raise ContractViolation(f"odd result {result.to_dict()}")


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    try:
        check(data)
    except ContractViolation:
        raise
    except Exception as exc:
        if not is_known(exc):
            raise


def _seed_if_empty(argv: list[str]) -> None:
    """Fill the first corpus folder from corpus.py when it is missing or empty."""
    folders = [a for a in argv[1:] if not a.startswith("-")]
    if not folders or (os.path.isdir(folders[0]) and os.listdir(folders[0])) or os.path.isfile(folders[0]):
        return
    sys.path.insert(0, HERE)
    import corpus

    paths = corpus.generate(folders[0], seed=0, count=corpus.DEFAULT_COUNT)
    print(f"seeded {folders[0]} with {len(paths)} inputs from corpus.py", file=sys.stderr)


def main() -> None:
    _seed_if_empty(sys.argv)
    print(f"hashmatch {hashmatch.__file__}", file=sys.stderr)
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
