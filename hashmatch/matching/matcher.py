"""The public matching API: thresholds, quality gates, query variants, batch matching and
concurrency, over a verified Store and one index per algorithm (the Hamming engines for
perceptual signal types, a sorted array for exact ones). What is particular to a signal
type (PDQ's quality gate and dihedral and trimmed variants) lives in its SignalType
(hashmatch.signals); this module loops over them.

A match is a candidate for human review, so it carries its evidence: algorithm,
distance, the threshold it passed, the list (name and version), category, the source's
entry id, the store's entry id, which query variant hit, the query's quality, and the
entry's tags. Thresholds are inclusive (distance <= threshold).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from hashmatch import signals
from hashmatch.config import usable_cores
from hashmatch.decode.image import DecodeLimits, Source
from hashmatch.errors import ConfigurationError, ImageError
from hashmatch.index.engines import AUTO_MIH_MIN_ENTRIES, Engine, FlatEngine, build_engine
from hashmatch.isolation.isolated import IsolatedHasher
from hashmatch.isolation.workers import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S
from hashmatch.matching.batch import batches_of, match_batches
from hashmatch.matching.evidence import Hit, Match, MatchResult, Search
from hashmatch.signals.hasher import Hasher, ordered_map, parse_algorithms
from hashmatch.signals.pdq import DEFAULT_CROP_SEARCH_RADIUS, DEFAULT_CROP_THRESHOLD, DEFAULT_PICTURE_THRESHOLD
from hashmatch.signals.pdq import DEFAULT_QUALITY_GATE as DEFAULT_PDQ_QUALITY_GATE
from hashmatch.store.store import MatchedEntry, Store
from hashmatch.video.matching import DEFAULT_COMPARED_PERCENT, DEFAULT_QUERY_PERCENT, VideoEvidence, match_video

#: Inclusive distance thresholds of the built-in perceptual types (each SignalType's
#: default_threshold; plug-ins bring their own): PDQ 31 is Meta's published rule, the
#: 64-bit ones are measured (signals/imagehash_family.py, README "Thresholds").
DEFAULT_THRESHOLDS = {s.name: s.default_threshold for s in signals.BUILTIN if not s.exact}



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
    image with flat borders trimmed and of pictures found inside it (screenshots, canvases;
    those within picture_threshold), and vPDQ's frames without bars constant over the
    video. crop_robust: also search PDQ's zoom-out variants of a query that may be a crop
    (decode/zoom_out.py): a candidate within crop_search_radius matches when the bits its
    paddings agree on differ in at most crop_threshold of 256 (signals/pdq.py).
    engine: auto, flat or mih. limits, exif_transpose, seconds_per_hash: as Hasher.
    video_query_percent / video_compared_percent: vPDQ's match rule (video/matching.py).
    isolate: hash inputs of Matcher.match in worker processes (workers.IsolatedHasher)
    with `timeout_s` per input and `memory_limit` bytes per worker, on `workers` processes
    (None: the usable cores)."""

    algorithms: tuple[str, ...] | None = None
    thresholds: Mapping[str, int] = field(default_factory=dict)
    pdq_quality_gate: int = DEFAULT_PDQ_QUALITY_GATE
    dihedral: bool = False
    trim_borders: bool = False
    picture_threshold: int = DEFAULT_PICTURE_THRESHOLD
    crop_robust: bool = False
    crop_threshold: int = DEFAULT_CROP_THRESHOLD
    crop_search_radius: int = DEFAULT_CROP_SEARCH_RADIUS
    engine: str = "auto"
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    exif_transpose: bool = False
    isolate: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT
    workers: int | None = None
    seconds_per_hash: float = 1.0  # vPDQ: one frame hashed per this many seconds
    video_query_percent: float = DEFAULT_QUERY_PERCENT  # vPDQ: share of the query's frames that must match
    video_compared_percent: float = DEFAULT_COMPARED_PERCENT  # vPDQ: share of the listed video's frames

    def __post_init__(self) -> None:
        for name in ("video_query_percent", "video_compared_percent"):
            if not 0 <= getattr(self, name) <= 100:
                raise ConfigurationError(f"{name} is a percentage (0 to 100)")
        if self.algorithms is not None:
            object.__setattr__(self, "algorithms", parse_algorithms(self.algorithms))
        thresholds = {}
        for name, value in self.thresholds.items():
            signal = signals.get(name)
            if signal.exact:
                raise ConfigurationError(f"thresholds apply to perceptual algorithms, not {name!r}")
            if not 0 <= int(value) < signal.bits:
                raise ConfigurationError(f"threshold {value} for {name} is out of range")
            thresholds[signal.name] = int(value)
        object.__setattr__(self, "thresholds", thresholds)
        if not 0 <= self.pdq_quality_gate <= 100:
            raise ConfigurationError("the PDQ quality gate is between 0 and 100")
        if self.limits is None:
            object.__setattr__(self, "limits", DecodeLimits())

    def merged_thresholds(self) -> dict[str, int]:
        """Every perceptual type's threshold: its default, unless this config sets one."""
        defaults = {s.name: s.default_threshold for s in map(signals.get, signals.names()) if not s.exact}
        return {**defaults, **self.thresholds}


class Matcher:
    """Matches inputs against one store generation. Thread-safe; `reload()` returns a
    matcher on the store's newest generation (this one keeps its own)."""

    def __init__(self, store: Store, config: MatchConfig | None = None, *,
                 _reuse: Mapping[tuple[Any, ...], Any] | None = None, **options: Any):
        self.store = store
        self.config = config = replace(config or MatchConfig(), **options)
        chosen = config.algorithms or tuple(store.arrays) or ("pdq",)
        self.algorithms = chosen
        self.thresholds = config.merged_thresholds()
        offered = {option for a in chosen for option in signals.get(a).options}  # variants the types can make
        self.hasher = Hasher(chosen, pdq_mode=store.pdq_mode, dihedral=config.dihedral and "dihedral" in offered,
                             trim_borders=config.trim_borders and "trim_borders" in offered,
                             crop_robust=config.crop_robust and "crop_robust" in offered, limits=config.limits,
                             exif_transpose=config.exif_transpose, seconds_per_hash=config.seconds_per_hash)
        # The Hamming radius each type's index is searched at: its threshold, or a variant's
        # when that is larger (crop_robust); every hit is then held to its own variant's.
        self.search_radius = {a: max([t] + ([config.crop_search_radius] if self.hasher.crop_robust and a == "pdq"
                                            else []))
                              for a, t in self.thresholds.items()}
        self._isolated: IsolatedHasher | None = None
        if config.isolate:
            self._isolated = IsolatedHasher(self.hasher, workers=config.workers or usable_cores(),
                                            timeout_s=config.timeout_s, memory_limit=config.memory_limit)
        # Per algorithm, the indexes searched: (index, entry id of each row, ids to drop).
        # A store generation with an overlay has two: its base (whose hidden ids are
        # dropped) and the overlay's delta. A video type searches its active rows whole.
        self._layers: dict[str, list[tuple[Any, np.ndarray, frozenset[int]]]] = {}
        self._engines: dict[str, Engine] = {}  # the base engine of each Hamming type
        # (algorithm, address and shape of a codes array) -> its index, for reload to reuse
        self._codes_of: dict[tuple[Any, ...], Any] = {}
        for algorithm in chosen:
            array = store.arrays.get(algorithm)
            if array is None:
                continue
            signal = signals.get(algorithm)
            if signal.variable:
                array = array.active()
            hidden = frozenset(array.hidden.tolist()) if array.hidden is not None and len(array.hidden) else frozenset()
            layers = []
            for part, drop in ((array, hidden), (array.delta, frozenset())):
                if part is None or not len(part.ids):
                    continue
                key = (algorithm, part.codes.__array_interface__["data"][0], part.codes.shape)
                reuse = (_reuse or {}).get(key)
                if reuse is not None:
                    index = reuse
                elif signal.exact:
                    index = _ExactIndex.build(part.codes)
                elif part is array:
                    index = build_engine(part.codes, config.engine, max_radius=self.search_radius[algorithm],
                                         tables=part.mih)
                elif len(part.ids) < AUTO_MIH_MIN_ENTRIES:  # an overlay's few codes: the native scan,
                    # a few microseconds, where FAISS costs ~40 us a call in overhead
                    index = FlatEngine(part.codes, max_radius=self.search_radius[algorithm], backend="native")
                else:
                    index = build_engine(part.codes, "auto", max_radius=self.search_radius[algorithm])
                layers.append((index, part.ids, drop))
                self._codes_of[key] = index
            if layers:
                self._layers[algorithm] = layers
                if not signal.exact:
                    self._engines[algorithm] = layers[0][0]

    def reload(self) -> "Matcher":
        """A matcher with the same configuration on the store's newest generation; the
        isolated workers (isolate=True) are shared, not restarted, and the index of a base
        the new generation still uses (a small change: an overlay) is reused, not rebuilt."""
        fresh = Matcher(self.store.reload(), self.config, isolate=False, _reuse=self._codes_of)
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
            exact = {a: {"hash": h} for a, h in (exc.file_hashes or {}).items() if a in self.algorithms}
            if not exact:
                raise
            return replace(self._match_values(exact), decode_error=exc)
        values = {a: image.values.get(a) or {"hash": h} for a, h in image.hashes.items()}
        return replace(self._match_values(values), image=image)

    def match_many(self, sources: Iterable[Source], *,
                   threads: int | None = None) -> Iterator[MatchResult | ImageError]:
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
        """match_hashes for many {'pdq': ..., ...} mappings, in input order, batched as
        match_records_many; a malformed query yields its ConfigurationError instead of stopping."""
        return match_batches(self, batches_of((hashes, list(hashes)) for hashes in queries), threads)

    def match_hashes(self, hashes: Mapping[str, str], **fields: Any) -> MatchResult:
        """Match precomputed hex hashes ({'pdq': ..., 'md5': ...}). `fields` are what a
        flat hash record carries beside them (HashResult.to_dict), e.g. pdq_quality,
        pdq_dihedral, pdq_trimmed, pdq_trimmed_quality: a PDQ without a quality is
        matched (the caller vouches for it); with one, the gate applies; the dihedral and
        trimmed variants are searched when this matcher has dihedral / trim_borders on."""
        return self.match_record({**fields, **hashes}, algorithms=list(hashes))

    def match_record(self, record: Mapping[str, Any], *, algorithms: Iterable[str] | None = None) -> MatchResult:
        """Match a flat record as `hashmatch hash` prints it (the hashes under their
        algorithm names, and each signal type's fields): the algorithms given, or every
        one of this matcher's that the record holds. ConfigurationError if malformed."""
        return self._match_values(self._values_of(record, algorithms))

    def match_records_many(self, items: Iterable[tuple[Mapping[str, Any], Iterable[str] | None]], *,
                           threads: int | None = None) -> Iterator[MatchResult | ConfigurationError]:
        """match_record for many (record, algorithms) pairs, in input order, batched: the
        searches of up to BATCH_QUERIES queries go to the kernels at once, split over
        `threads` threads (None: the usable cores), and their hits' metadata is read in
        one pass (batch.py); results lag the input by up to two batches. A
        malformed query yields its ConfigurationError."""
        return match_batches(self, batches_of(items), threads)

    def _values_of(self, record: Mapping[str, Any], algorithms: Iterable[str] | None) -> dict[str, dict[str, Any]]:
        """Each queried signal type's value (its hash, normalised, and what the type adds),
        checked. ConfigurationError if malformed."""
        values: dict[str, dict[str, Any]] = {}
        for name in (algorithms if algorithms is not None else [a for a in self.algorithms if a in record]):
            signal = signals.find(name)
            if signal is None:
                raise ConfigurationError(f"unknown algorithm {name!r}")
            value = signal.value_from_record({**record, signal.name: record[name]})
            if not isinstance(value["hash"], str):
                raise ConfigurationError(f"{signal.name} hash must be a string")
            if signal.variable:
                try:
                    text = signal.parse(value["hash"])
                except ValueError as exc:
                    raise ConfigurationError(f"{signal.name}: {exc}") from exc
            else:
                text = value["hash"].strip().lower()
                if not signal.is_code(text):
                    raise ConfigurationError(f"{signal.name} hash must be {signal.hex_length} hex digits")
            value["hash"] = text
            try:
                signal.check_value(value)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from exc
            values[signal.name] = value
        return values

    def _match_values(self, values: Mapping[str, Mapping[str, Any]]) -> MatchResult:
        searches, gated = self._searches(values)
        return self._result(values, searches, [self._search(a, code) for a, _, code in searches], gated)

    def _searches(self, values: Mapping[str, Mapping[str, Any]]) -> tuple[list[Search], list[str]]:
        """What matching `values` searches: (algorithm, variant, hex code) per search, per
        algorithm its variants with the plain query first (an exact type: one, variant
        None); and the algorithms a quality gate stopped."""
        searches: list[Search] = []
        gated: list[str] = []
        for algorithm, value in values.items():
            if algorithm not in self._layers:
                continue
            signal = signals.get(algorithm)
            if signal.exact:
                searches.append((algorithm, None, value["hash"]))
                continue
            queries, was_gated = signal.queries(value, self.config)
            if was_gated and not signal.variable:
                gated.append(algorithm)
                continue
            searches.extend((algorithm, name, code) for name, code in queries)
        return searches, gated

    def _search(self, algorithm: str, code: str) -> list[Hit]:
        """One search over the algorithm's layers: (store id, distance, video evidence) of
        every hit, the rows this generation hides dropped."""
        layers = self._layers[algorithm]
        signal = signals.get(algorithm)
        if signal.exact:
            key = bytes.fromhex(code)
            return [(int(ids[p]), 0, None) for index, ids, drop in layers for p in index.lookup(key)
                    if int(ids[p]) not in drop]
        if signal.variable:  # a video: matched whole against each listed video
            found = self._match_video(algorithm, layers[0][0], {"hash": code})
            return [(store_id, evidence.best_distance, evidence) for store_id, evidence in found.items()]
        query, threshold = bytes.fromhex(code), self.search_radius[algorithm]
        hits: list[Hit] = []
        for index, ids, drop in layers:  # a lookup's hot path
            for position, distance in index.search_one(query, threshold):
                store_id = int(ids[position])
                if store_id not in drop:  # a base row this generation removed, disabled or changed
                    hits.append((store_id, distance, None))
        return hits

    def _result(self, values: Mapping[str, Mapping[str, Any]], searches: list[Search], hits: list[list[Hit]],
                gated: list[str], entries: Mapping[int, MatchedEntry] | None = None) -> MatchResult:
        """The result of a query's searches and their hits; `entries` holds the hits'
        metadata when the caller read it already (a batch), else it is read here."""
        found: dict[tuple[str, int], Hit] = {}  # (algorithm, store id) -> the best hit and its variant
        variants: dict[tuple[str, int], str | None] = {}
        checks = [signals.get(a).variant_check(v, values[a], self.config) if a in self.thresholds and found_any
                  else None for (a, v, _), found_any in zip(searches, hits)]  # only searches that found something
        listed = self._listed_codes(h[0] for check, search_hits in zip(checks, hits) if check is not None
                                    for h in search_hits)
        for (algorithm, variant, _), check, search_hits in zip(searches, checks, hits):
            limit = (signals.get(algorithm).variant_threshold(variant, self.config, self.thresholds[algorithm])
                     if algorithm in self.thresholds else None)
            for hit in search_hits:
                if check is not None:  # a second stage: the distance it returns is the one held
                    code = listed.get(hit[0])
                    verified = check(code, hit[1]) if code is not None else None
                    if verified is None:
                        continue
                    hit = (hit[0], verified, hit[2])
                if limit is not None and hit[2] is None and hit[1] > limit:
                    continue  # a variant held to a tighter threshold
                key = (algorithm, hit[0])
                best = found.get(key)
                # A video keeps the variant matching the larger share of the query; a hash the
                # closest one, on a tie the earlier (the plain query first).
                if best is None or (hit[1] < best[1] if hit[2] is None else
                                    hit[2].query_percent > best[2].query_percent):  # type: ignore[union-attr]
                    found[key], variants[key] = hit, variant
        if entries is None:
            entries = self.store.matched_entries(store_id for _, store_id in found) if found else {}
        matches = sorted(
            (self._evidence(key[0], store_id, distance, variants[key], values[key[0]], entries[store_id], video)
             for key, (store_id, distance, video) in found.items() if store_id in entries),
            key=lambda m: (m.distance, m.algorithm, m.store_id))
        status = "match" if matches else ("low_quality" if gated else "no_match")
        return MatchResult(status, tuple(matches), {a: v["hash"] for a, v in values.items()}, tuple(gated),
                           values={a: dict(v) for a, v in values.items()})

    def _listed_codes(self, store_ids: Iterable[int]) -> dict[int, bytes]:
        """The listed codes of the given entries, for a second stage (variant_check): read
        from the store for the few candidates a variant's search found."""
        wanted = set(store_ids)
        return self.store.blobs(wanted) if wanted else {}

    def _match_video(self, algorithm: str, engine: Engine, value: Mapping[str, Any]) -> dict[int, VideoEvidence]:
        return match_video(value, engine, self._layers[algorithm][0][1], self.thresholds[algorithm],
                           self.store.blobs, query_percent=self.config.video_query_percent,
                           compared_percent=self.config.video_compared_percent)

    def _evidence(self, algorithm: str, store_id: int, distance: int, variant: str | None,
                  value: Mapping[str, Any], entry: MatchedEntry, video: VideoEvidence | None = None) -> Match:
        signal = signals.get(algorithm)
        threshold = 0 if signal.exact else signal.variant_threshold(variant, self.config, self.thresholds[algorithm])
        return Match(algorithm=algorithm, distance=distance, threshold=threshold,
                     list_name=entry.list_name, list_version=entry.list_version, category=entry.category,
                     entry_id=entry.entry_id, store_id=store_id,
                     variant=variant if variant is not None else signal.default_variant(self.config),
                     query_quality=signal.query_quality(value), tags=entry.tags, video=video)


def open_matcher(path: str, config: MatchConfig | None = None, **options: Any) -> Matcher:
    """Open and verify the store at `path` and return a Matcher over it."""
    return Matcher(Store.open(path), config, **options)
