"""hashmatch: find known images by perceptual hash (PDQ, pHash, dHash, aHash) and exact
hash (MD5, SHA-1, SHA-256), with a Cython core bit-compatible with the reference tools.

The public API is re-exported here; the compiled kernels (hashmatch._pdq,
hashmatch._dct_hashes, hashmatch._hamming) are private.
"""
from .decode import DEFAULT_FORMATS, DecodeLimits, sniff_format
from .errors import (
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
from .hashing import (
    ALGORITHMS,
    DIHEDRAL_NAMES,
    PDQ_MODES,
    Hasher,
    HashResult,
    hash_image,
    parse_algorithms,
    pdq_from_pixels,
)
from .lists import ParsedList, detect_format, read_list, write_list
from .matcher import (
    DEFAULT_PDQ_QUALITY_GATE,
    DEFAULT_THRESHOLDS,
    Match,
    MatchConfig,
    Matcher,
    MatchResult,
    open_matcher,
)
from .store import EntryInfo, ListInfo, Store, StoreError, StoreIntegrityError

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS", "DEFAULT_FORMATS", "DIHEDRAL_NAMES", "PDQ_MODES",
    "ConfigurationError", "CorruptImageError", "DecodeLimits", "DecompressionBombError",
    "EmptyInputError", "FileChangedError", "HashResult", "HashTimeoutError", "OutOfMemoryError",
    "WorkerCrashedError", "MatchConfig", "Hasher", "HashmatchError", "ImageError",
    "ImageTooSmallError", "InputTooLargeError", "InputTypeError", "NotARegularFileError",
    "SymlinkNotFollowedError", "TruncatedImageError", "UnreadableInputError", "UnsupportedFormatError",
    "hash_image", "parse_algorithms", "pdq_from_pixels", "sniff_format",
    "DEFAULT_PDQ_QUALITY_GATE", "DEFAULT_THRESHOLDS", "EntryInfo", "ListInfo", "Match", "MatchResult",
    "Matcher", "Store", "StoreError", "StoreIntegrityError", "open_matcher",
    "ListFormatError", "ParsedList", "detect_format", "read_list", "write_list",
]
