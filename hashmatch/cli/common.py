"""What the `hashmatch` commands share: the setup error (exit status 2), the store
option, the matching options (one set of click options that builds a MatchConfig), list
import, and standard output that survives file names that are not UTF-8."""
from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any, Callable

import click

from hashmatch.cli.terminal import safe
from hashmatch.decode.image import DecodeLimits
from hashmatch.signals.pdq import DEFAULT_CROP_SEARCH_RADIUS, DEFAULT_CROP_THRESHOLD
from hashmatch.signals.pdq import DEFAULT_QUALITY_GATE as DEFAULT_PDQ_QUALITY_GATE
from hashmatch.video import DEFAULT_COMPARED_PERCENT, DEFAULT_QUERY_PERCENT

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.matching.matcher import MatchConfig
    from hashmatch.store.store import Store

ENGINES = ("auto", "flat", "mih")


class SetupError(click.ClickException):
    """A store, list or option that cannot be used: exit status 2, like a usage error, so
    that status 1 keeps meaning "something matched" (lookup, scan) or "a file failed" (hash)."""

    exit_code = 2

    def format_message(self) -> str:
        return safe(self.message)  # messages name files and lists: never raw control characters


STORE_OPTION = click.option("-s", "--store", "store_path", required=True, type=click.Path(file_okay=False),
                            help="The store directory.")


def match_options(*, dihedral_help: str, trim_help: str) -> Callable[[Callable], Callable]:
    """The matching options of lookup and scan (thresholds, PDQ quality gate, dihedral,
    border trimming, engine); the command turns them into a MatchConfig with match_config."""
    options = [
        click.option("-t", "--threshold", "thresholds", multiple=True, metavar="ALGORITHM=N",
                     help="Override a threshold, e.g. pdq=25; repeatable."),
        click.option("--dihedral", is_flag=True, help=dihedral_help),
        click.option("--pdq-quality-gate", type=click.IntRange(0, 100), default=DEFAULT_PDQ_QUALITY_GATE,
                     show_default=True,
                     help="PDQ hashes whose quality is below this are reported low_quality, not matched."),
        click.option("--trim-borders", is_flag=True, help=trim_help),
        click.option("--crop-robust", is_flag=True,
                     help="Also match PDQ's zoom-out variants of a query that may be a crop (centre or a corner "
                          "cut by 2-12%): a listed hash within --crop-search-radius of a variant matches when the "
                          "bits the query's own pixels decide differ in at most --crop-threshold of 256; the "
                          "evidence names the variant."),
        click.option("--crop-threshold", type=click.IntRange(0, 255), default=DEFAULT_CROP_THRESHOLD,
                     show_default=True,
                     help="Distance over a zoom-out variant's reliable bits (scaled to 256) within which it matches."),
        click.option("--crop-search-radius", type=click.IntRange(0, 255), default=DEFAULT_CROP_SEARCH_RADIUS,
                     show_default=True, help="PDQ distance within which a zoom-out variant's candidates are searched."),
        click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True),
        click.option("--video-query-percent", type=click.FloatRange(0, 100), default=DEFAULT_QUERY_PERCENT,
                     show_default=True, help="vPDQ: share of the query video's frames that must match a listed video."),
        click.option("--video-compared-percent", type=click.FloatRange(0, 100), default=DEFAULT_COMPARED_PERCENT,
                     show_default=True, help="vPDQ: share of the listed video's frames that must be matched."),
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def limit_options(command: Callable) -> Callable:
    """The decoding limits of hash and scan; the command turns them into DecodeLimits with
    decode_limits."""
    for option in reversed([
        click.option("--max-bytes", type=click.IntRange(min=1), default=DecodeLimits.max_bytes, show_default=True,
                     help="Largest file decoded as an image (exact hashes are taken of any size)."),
        click.option("--max-pixels", type=click.IntRange(min=1), default=DecodeLimits.max_pixels, show_default=True),
        click.option("--no-verify-jpeg", is_flag=True,
                     help="Skip the second, 1/8-scale libjpeg decode that refuses JPEGs cut short or corrupt "
                          "(faster; a partial JPEG is then hashed as if whole)."),
        click.option("--seconds-per-hash", type=click.FloatRange(0, 3600), default=1.0, show_default=True,
                     help="vPDQ: hash one video frame per this many seconds (0: every frame; Meta's lists use 1)."),
        click.option("--max-video-seconds", type=click.FloatRange(min=1), default=DecodeLimits.max_video_seconds,
                     show_default=True,
                     help="Longest video decoded (declared or decoded; a longer one is 'too_long')."),
        click.option("--animated-as-video", is_flag=True,
                     help="Also hash animated GIFs as video (vPDQ), beside their first frame. (FFmpeg does not "
                          "decode animated WebP.)"),
    ]):
        command = option(command)
    return command


def decode_limits(max_bytes: int, max_pixels: int, no_verify_jpeg: bool, max_video_seconds: float = 4 * 3600.0,
                  animated_as_video: bool = False) -> DecodeLimits:
    videos = DecodeLimits.video_formats | ({"GIF"} if animated_as_video else set())
    return DecodeLimits(max_bytes=max_bytes, max_pixels=max_pixels, verify_jpeg=not no_verify_jpeg,
                        max_video_seconds=max_video_seconds, video_formats=frozenset(videos))


def match_config(thresholds, dihedral: bool, pdq_quality_gate: int, trim_borders: bool, engine: str,
                 video_query_percent: float = DEFAULT_QUERY_PERCENT,
                 video_compared_percent: float = DEFAULT_COMPARED_PERCENT, crop_robust: bool = False,
                 crop_threshold: int = DEFAULT_CROP_THRESHOLD,
                 crop_search_radius: int = DEFAULT_CROP_SEARCH_RADIUS, **more: Any) -> MatchConfig:
    """The MatchConfig of the match_options values (plus any other MatchConfig field)."""
    from hashmatch.matching.matcher import MatchConfig

    return MatchConfig(thresholds=parse_thresholds(thresholds), dihedral=dihedral,
                       pdq_quality_gate=pdq_quality_gate, trim_borders=trim_borders, engine=engine,
                       video_query_percent=video_query_percent, video_compared_percent=video_compared_percent,
                       crop_robust=crop_robust, crop_threshold=crop_threshold,
                       crop_search_radius=crop_search_radius, **more)


def parse_thresholds(specs) -> dict[str, int]:
    result = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        if not value.isdigit():
            raise click.UsageError(f"threshold {spec!r}: expected ALGORITHM=N")
        result[name.strip().lower()] = int(value)
    return result


def open_store(path: str) -> Store:
    from hashmatch.store.store import Store, StoreError

    try:
        return Store.open(path)
    except StoreError as exc:
        raise SetupError(str(exc)) from exc


def stdout() -> IO[str]:
    stream = sys.stdout
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="backslashreplace")
    return stream
