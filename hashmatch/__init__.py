"""hashmatch: find known images by perceptual hash (PDQ, pHash, dHash, aHash) and exact
hash (MD5, SHA-1, SHA-256), with a Cython core bit-compatible with the reference tools.

The public API is re-exported here (imported on first use); the compiled kernels (hashmatch._native.pdq,
hashmatch._native.dct_hashes, hashmatch._native.hamming) are private.
"""
from importlib import import_module
from typing import TYPE_CHECKING, Any

from hashmatch.config import __version__
from hashmatch.errors import (
    ConfigurationError,
    CorruptImageError,
    DecompressionBombError,
    EmptyInputError,
    FileChangedError,
    HashmatchError,
    HashTimeoutError,
    ImageError,
    ImageTooSmallError,
    InputTooLargeError,
    InputTypeError,
    ListFormatError,
    NotARegularFileError,
    OutOfMemoryError,
    SymlinkNotFollowedError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
    WorkerCrashedError,
)

# The rest of the API is imported on first use (PEP 562), so that `import hashmatch` and
# the CLI start without numpy, Pillow, SQLite and the kernels until a command needs them.
_LAZY = {
    **dict.fromkeys(("DEFAULT_FORMATS", "DecodeLimits", "sniff_format"), "decode.image"),
    **dict.fromkeys(("ALGORITHMS", "DIHEDRAL_NAMES", "PDQ_MODES", "Hasher", "HashResult", "hash_image",
                     "parse_algorithms", "pdq_from_pixels"), "signals.hasher"),
    **dict.fromkeys(("ParsedList", "detect_format", "read_list", "write_list"), "lists"),
    **dict.fromkeys(("DEFAULT_PDQ_QUALITY_GATE", "DEFAULT_THRESHOLDS", "Match", "MatchConfig", "Matcher",
                     "MatchResult", "open_matcher"), "matching.matcher"),
    **dict.fromkeys(("EntryInfo", "ListInfo", "Store", "StoreError", "StoreIntegrityError"), "store.store"),
    **dict.fromkeys(("Decision", "DecisionError", "DecisionLog"), "accountability.decisions"),
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from hashmatch.accountability.decisions import Decision, DecisionError, DecisionLog
    from hashmatch.decode.image import DEFAULT_FORMATS, DecodeLimits, sniff_format
    from hashmatch.lists import ParsedList, detect_format, read_list, write_list
    from hashmatch.matching.matcher import (
        DEFAULT_PDQ_QUALITY_GATE,
        DEFAULT_THRESHOLDS,
        Match,
        MatchConfig,
        Matcher,
        MatchResult,
        open_matcher,
    )
    from hashmatch.signals.hasher import (
        ALGORITHMS,
        DIHEDRAL_NAMES,
        PDQ_MODES,
        Hasher,
        HashResult,
        hash_image,
        parse_algorithms,
        pdq_from_pixels,
    )
    from hashmatch.store.store import EntryInfo, ListInfo, Store, StoreError, StoreIntegrityError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hashmatch' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__", "ALGORITHMS", "DEFAULT_FORMATS", "DIHEDRAL_NAMES", "PDQ_MODES",
    "ConfigurationError", "CorruptImageError", "DecodeLimits", "DecompressionBombError",
    "EmptyInputError", "FileChangedError", "HashResult", "HashTimeoutError", "OutOfMemoryError",
    "WorkerCrashedError", "MatchConfig", "Hasher", "HashmatchError", "ImageError",
    "ImageTooSmallError", "InputTooLargeError", "InputTypeError", "NotARegularFileError",
    "SymlinkNotFollowedError", "TruncatedImageError", "UnreadableInputError", "UnsupportedFormatError",
    "hash_image", "parse_algorithms", "pdq_from_pixels", "sniff_format",
    "DEFAULT_PDQ_QUALITY_GATE", "DEFAULT_THRESHOLDS", "EntryInfo", "ListInfo", "Match", "MatchResult",
    "Matcher", "Store", "StoreError", "StoreIntegrityError", "open_matcher",
    "ListFormatError", "ParsedList", "detect_format", "read_list", "write_list",
    "Decision", "DecisionError", "DecisionLog",
]
