"""The public matching API: thresholds, the PDQ quality gate, dihedral matching, batch
matching and concurrency, over a verified Store and one engine per algorithm.

A match is a candidate for human review, so it carries its evidence: algorithm,
distance, the threshold it passed, the list (name and version), category, the source's
entry id, the store's entry id, which dihedral variant hit, and the query's PDQ quality.
Thresholds are inclusive (distance <= threshold).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from .decode import DecodeLimits, Source
from .engines import Engine, build_engine
from .errors import ConfigurationError, ImageError
from .hashing import (
    CRYPTOGRAPHIC_ALGORITHMS,
    DIHEDRAL_NAMES,
    HEX_LENGTH,
    PERCEPTUAL_ALGORITHMS,
    Hasher,
    HashResult,
    ordered_map,
    parse_algorithms,
    usable_cores,
)
from .store import EntryInfo, Store
from .workers import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S, IsolatedHasher

#: Inclusive distance thresholds. PDQ 31 is Meta's published rule. The 64-bit ones come
#: from benchmarks/measure_thresholds.py (1,000 generated originals x 21 transforms, 21M
#: impostor pairs; README "Thresholds"): the largest threshold 3 bits below the closest
#: impostor with an estimated per-pair false-match rate under 1e-8 (0.1 false candidates
#: per query on a 10M list). aHash only matches exactly: unrelated images come within
#: 3-5 bits of each other.
DEFAULT_THRESHOLDS = {"pdq": 31, "phash": 6, "dhash": 5, "ahash": 0}
#: PDQ hashes below this quality are unreliable (Meta discards them); such queries are
#: reported as low quality and not matched unless the caller lowers the gate.
DEFAULT_PDQ_QUALITY_GATE = 50


@dataclass(frozen=True)
class Match:
    algorithm: str
    distance: int
    threshold: int
    list_name: str
    list_version: str
    category: str | None
    entry_id: str | None  # the source's id for the entry, when it has one
    store_id: int  # the store's id for the entry
    variant: str | None = None  # PDQ dihedral variant of the query that hit
    query_quality: int | None = None  # the query's PDQ quality
    tags: tuple[str, ...] = ()  # the entry's tags: its source's opinion (disputed, ...), collab, file type

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "tags": list(self.tags)}


@dataclass(frozen=True)
class MatchResult:
    """The outcome for one input: `status` is match, no_match or low_quality.

    `decode_error` is set when the input's content did not decode (not an image, corrupt,
    too large): only its exact hashes were matched, and the perceptual ones are missing."""

    status: str
    matches: tuple[Match, ...]
    hashes: dict[str, str]
    pdq_quality: int | None = None
    gated: tuple[str, ...] = ()  # algorithms not matched because of the quality gate
    image: HashResult | None = None
    decode_error: ImageError | None = None

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"status": self.status, "hashes": dict(self.hashes)}
        if self.pdq_quality is not None:
            record["pdq_quality"] = self.pdq_quality
        if self.gated:
            record["gated"] = list(self.gated)
        if self.decode_error is not None:
            e = self.decode_error
            record["decode_error"] = {"type": type(e).__name__, "code": e.code, "message": str(e)}
        record["matches"] = [m.to_dict() for m in self.matches]
        return record


@dataclass
class _ExactIndex:
    """Exact hashes: a sorted fixed-width byte array and binary search."""

    keys: np.ndarray  # sorted, dtype S<nbytes>
    positions: np.ndarray  # row of each sorted key in the store's array

    @classmethod
    def build(cls, codes: np.ndarray) -> "_ExactIndex":
        keys = np.ascontiguousarray(codes).view(f"S{codes.shape[1]}").ravel()
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], order)

    def lookup(self, code: bytes) -> np.ndarray:
        key = np.array([code], dtype=self.keys.dtype)
        lo, hi = np.searchsorted(self.keys, key, "left")[0], np.searchsorted(self.keys, key, "right")[0]
        return self.positions[lo:hi]


@dataclass(frozen=True)
class MatchConfig:
    """Every matching option, in one object the API, the CLI, scan workers and Dask
    workers share (no option list is written out twice). `Matcher(store, config)`, or
    keyword overrides: `Matcher(store, dihedral=True)`.

    algorithms: what to hash and match (None: every algorithm the store holds).
    thresholds: inclusive distance per perceptual algorithm, over DEFAULT_THRESHOLDS.
    pdq_quality_gate: PDQ queries below this quality are reported low_quality, not matched.
    dihedral / trim_borders: also search PDQ's 7 flipped/rotated variants / the PDQ of the
    image with flat borders trimmed. engine: auto, flat or mih. limits, exif_transpose: as
    Hasher. isolate: hash inputs of Matcher.match in worker processes (workers.IsolatedHasher)
    with `timeout_s` per input and `memory_limit` bytes per worker, on `workers` processes
    (None: the usable cores)."""

    algorithms: tuple[str, ...] | None = None
    thresholds: Mapping[str, int] = field(default_factory=dict)
    pdq_quality_gate: int = DEFAULT_PDQ_QUALITY_GATE
    dihedral: bool = False
    trim_borders: bool = False
    engine: str = "auto"
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    exif_transpose: bool = False
    isolate: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.algorithms is not None:
            object.__setattr__(self, "algorithms", parse_algorithms(self.algorithms))
        for name, value in self.thresholds.items():
            if name not in PERCEPTUAL_ALGORITHMS:
                raise ConfigurationError(f"thresholds apply to perceptual algorithms, not {name!r}")
            if not 0 <= int(value) < HEX_LENGTH[name] * 4:
                raise ConfigurationError(f"threshold {value} for {name} is out of range")
        object.__setattr__(self, "thresholds", {k: int(v) for k, v in self.thresholds.items()})
        if not 0 <= self.pdq_quality_gate <= 100:
            raise ConfigurationError("the PDQ quality gate is between 0 and 100")
        if self.limits is None:
            object.__setattr__(self, "limits", DecodeLimits())

    def merged_thresholds(self) -> dict[str, int]:
        return {**DEFAULT_THRESHOLDS, **self.thresholds}


class Matcher:
    """Matches inputs against one store generation. Thread-safe; `reload()` returns a
    matcher on the store's newest generation (this one keeps its own)."""

    def __init__(self, store: Store, config: MatchConfig | None = None, **options: Any):
        self.store = store
        self.config = config = replace(config or MatchConfig(), **options)
        chosen = config.algorithms or tuple(store.arrays) or ("pdq",)
        self.algorithms = chosen
        self.thresholds = config.merged_thresholds()
        self.hasher = Hasher(chosen, pdq_mode=store.pdq_mode, dihedral=config.dihedral and "pdq" in chosen,
                             trim_borders=config.trim_borders and "pdq" in chosen,
                             limits=config.limits, exif_transpose=config.exif_transpose)
        self._isolated: IsolatedHasher | None = None
        if config.isolate:
            self._isolated = IsolatedHasher(self.hasher, workers=config.workers or usable_cores(),
                                            timeout_s=config.timeout_s, memory_limit=config.memory_limit)
        self._engines: dict[str, Engine] = {}
        self._exact: dict[str, _ExactIndex] = {}
        for algorithm in chosen:
            array = store.arrays.get(algorithm)
            if array is None or not len(array.ids):
                continue
            if algorithm in CRYPTOGRAPHIC_ALGORITHMS:
                self._exact[algorithm] = _ExactIndex.build(array.codes)
            else:
                self._engines[algorithm] = build_engine(array.codes, config.engine,
                                                        max_radius=self.thresholds[algorithm], tables=array.mih)

    def reload(self) -> "Matcher":
        """A matcher with the same configuration on the store's newest generation; the
        isolated workers (isolate=True) are shared, not restarted."""
        fresh = Matcher(self.store.reload(), self.config, isolate=False)
        fresh.config, fresh._isolated = self.config, self._isolated
        return fresh

    def close(self) -> None:
        """Stop the isolated workers, if any (they also end with this process)."""
        if self._isolated is not None:
            self._isolated.close()

    # -- inputs --------------------------------------------------------------------------
    def match(self, source: Source) -> MatchResult:
        """Hash one input (any kind the Hasher takes) and match it.

        An input whose bytes could be read but do not decode as an image (a video, a
        PDF, a corrupt JPEG) is still matched by its exact hashes when this matcher has
        any: the result then carries the decode problem in `decode_error`. Raises the
        ImageError when there is nothing to match (unreadable, or no exact hashes)."""
        try:
            image = (self._isolated or self.hasher).hash(source)
        except ImageError as exc:
            exact = {a: h for a, h in (exc.file_hashes or {}).items() if a in self.algorithms}
            if not exact:
                raise
            result = self._match_one(exact, None, None)
            return MatchResult(result.status, result.matches, result.hashes, decode_error=exc)
        queries = dict(image.hashes)
        variants = self._variants(image.pdq_dihedral, image.pdq_trimmed, image.pdq_trimmed_quality)
        result = self._match_one(queries, image.pdq_quality, variants)
        return MatchResult(result.status, result.matches, result.hashes, result.pdq_quality, result.gated, image)

    def match_many(self, sources: Iterable[Source], *, threads: int | None = None) -> Iterator[MatchResult | ImageError]:
        """Match many inputs on a thread pool, in input order; inputs with nothing to match
        yield their error (see match())."""
        def one(source: Source) -> MatchResult | ImageError:
            try:
                return self.match(source)
            except ImageError as exc:
                return exc
        return ordered_map(one, sources, threads)

    # -- precomputed hashes -----------------------------------------------------------------
    def match_hashes_many(self, queries: Iterable[Mapping[str, str]], *,
                          threads: int | None = None) -> Iterator[MatchResult | ConfigurationError]:
        """match_hashes for many {'pdq': ..., ...} mappings on a thread pool, in input
        order; a malformed query yields its ConfigurationError instead of stopping."""
        def one(hashes: Mapping[str, str]) -> MatchResult | ConfigurationError:
            try:
                return self.match_hashes(hashes)
            except ConfigurationError as exc:
                return exc
        return ordered_map(one, queries, threads)

    def match_hashes(self, hashes: Mapping[str, str], *, pdq_quality: int | None = None,
                     pdq_dihedral: Mapping[str, str] | None = None, pdq_trimmed: str | None = None,
                     pdq_trimmed_quality: int | None = None) -> MatchResult:
        """Match precomputed hex hashes ({'pdq': ..., 'md5': ...}). A PDQ without a quality
        is matched (the caller vouches for it); with one, the gate applies. The dihedral
        variants and the border-trimmed PDQ (HashResult fields) are searched when this
        matcher has dihedral / trim_borders on."""
        clean = {}
        for name, value in hashes.items():
            if name not in HEX_LENGTH:
                raise ConfigurationError(f"unknown algorithm {name!r}")
            clean[name] = _hex(value.strip(), HEX_LENGTH[name], f"{name} hash")
        for name, value in {**(pdq_dihedral or {}), **({"trimmed": pdq_trimmed} if pdq_trimmed else {})}.items():
            _hex(value, HEX_LENGTH["pdq"], f"PDQ variant {name}")
        return self._match_one(clean, pdq_quality, self._variants(pdq_dihedral, pdq_trimmed, pdq_trimmed_quality))

    def _variants(self, dihedral: Mapping[str, str] | None, trimmed: str | None,
                  trimmed_quality: int | None) -> dict[str, str] | None:
        """The extra PDQ queries this matcher searches: the dihedral variants (original
        first) with dihedral on; the trimmed PDQ with trim_borders on, if it passes the gate."""
        variants: dict[str, str] = {}
        if self.config.dihedral and dihedral:
            variants.update((k.lower(), v.lower()) for k, v in dihedral.items() if k in DIHEDRAL_NAMES)
        if self.config.trim_borders and trimmed and (
                trimmed_quality is None or trimmed_quality >= self.config.pdq_quality_gate):
            variants["trimmed"] = trimmed.lower()
        return variants or None

    def _match_one(self, hashes: dict[str, str], pdq_quality: int | None,
                   variants: Mapping[str, str] | None) -> MatchResult:
        found: dict[tuple[str, int], tuple[int, str | None]] = {}  # (algorithm, store id) -> (distance, variant)
        gated: list[str] = []
        for algorithm, hex_hash in hashes.items():
            if algorithm in self._exact:
                array = self.store.arrays[algorithm]
                for position in self._exact[algorithm].lookup(bytes.fromhex(hex_hash)):
                    found[(algorithm, int(array.ids[position]))] = (0, None)
                continue
            engine = self._engines.get(algorithm)
            if engine is None:
                continue
            names: list[str | None] = [None]
            codes = [hex_hash]
            if algorithm == "pdq" and variants:
                if "original" in variants:  # dihedral: the 8 variants replace the plain query
                    names, codes = [], []
                names += list(variants)
                codes += list(variants.values())
            if algorithm == "pdq" and pdq_quality is not None and pdq_quality < self.config.pdq_quality_gate:
                if not variants or "trimmed" not in variants:
                    gated.append(algorithm)
                    continue
                names, codes = ["trimmed"], [variants["trimmed"]]  # only the trimmed image is good enough
            queries = np.frombuffer(bytes.fromhex("".join(codes)), np.uint8).reshape(len(codes), -1)
            ids = self.store.arrays[algorithm].ids
            threshold = self.thresholds[algorithm]
            for name, (positions, distances) in zip(names, engine.range_search(queries, threshold)):
                for position, distance in zip(positions.tolist(), distances.tolist()):
                    key = (algorithm, int(ids[position]))
                    # Keep the closest variant; on a tie the earlier one (original first).
                    if key not in found or distance < found[key][0]:
                        found[key] = (distance, name)
        entries = self.store.entries([store_id for _, store_id in found]) if found else {}
        matches = sorted(
            (self._evidence(algorithm, store_id, distance, variant, pdq_quality, entries[store_id])
             for (algorithm, store_id), (distance, variant) in found.items() if store_id in entries),
            key=lambda m: (m.distance, m.algorithm, m.store_id))
        status = "match" if matches else ("low_quality" if gated else "no_match")
        return MatchResult(status, tuple(matches), hashes, pdq_quality, tuple(gated))

    def _evidence(self, algorithm: str, store_id: int, distance: int, variant: str | None,
                  quality: int | None, entry: EntryInfo) -> Match:
        threshold = 0 if algorithm in CRYPTOGRAPHIC_ALGORITHMS else self.thresholds[algorithm]
        if algorithm == "pdq" and self.config.dihedral and variant is None:
            variant = DIHEDRAL_NAMES[0]
        return Match(algorithm=algorithm, distance=distance, threshold=threshold, list_name=entry.list_name,
                     list_version=entry.list_version, category=entry.category, entry_id=entry.entry_id,
                     store_id=store_id, variant=variant, query_quality=quality if algorithm == "pdq" else None,
                     tags=entry.tags)


def _hex(value: Any, length: int, what: str) -> str:
    """`value` as lowercase hex of `length` digits, or a ConfigurationError naming `what`."""
    text = value.lower() if isinstance(value, str) else ""
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ConfigurationError(f"{what} must be {length} hex digits")
    return text


def open_matcher(path: str, config: MatchConfig | None = None, **options: Any) -> Matcher:
    """Open and verify the store at `path` and return a Matcher over it."""
    return Matcher(Store.open(path), config, **options)
