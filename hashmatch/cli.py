"""The `hashmatch` command line: click commands only; each parses, calls the API, prints."""
from __future__ import annotations

import csv
import itertools
import json
import sys
import warnings
from contextlib import nullcontext
from typing import IO, Any, Iterator

import click
from PIL import Image

from . import __version__
from .decode import DecodeLimits
from .errors import ConfigurationError, ImageError
from .files import InputFile, atomic_write, iter_input_files
from .hashing import ALGORITHMS, DIHEDRAL_NAMES, PDQ_MODES, Hasher, HashResult, ordered_map, parse_algorithms

# The CLI refuses oversized images with its own typed error; Pillow's warning about the
# same image would only be noise between the records.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hashmatch")
def main() -> None:
    """Find known images by perceptual hash (PDQ, pHash, dHash, aHash) and exact hash."""


def _record(item: InputFile, outcome: HashResult | ImageError) -> dict[str, Any]:
    if isinstance(outcome, ImageError):
        return {"path": item.path,
                "error": {"type": type(outcome).__name__, "code": outcome.code, "message": str(outcome)}}
    return {"path": item.path, **outcome.to_dict()}


def _csv_columns(algorithms: tuple[str, ...], dihedral: bool) -> list[str]:
    columns = ["path", *algorithms]
    if "pdq" in algorithms:
        columns += ["pdq_quality", "pdq_mode"]
        if dihedral:
            columns += [f"pdq_{name}" for name in DIHEDRAL_NAMES[1:]]
    return columns + ["width", "height", "format", "mode", "frames", "error_type", "error_code", "error_message"]


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in record.items() if k not in ("error", "pdq_dihedral", "exif_transposed")}
    for name, value in (record.get("pdq_dihedral") or {}).items():
        if name != "original":
            row[f"pdq_{name}"] = value
    if "error" in record:
        row.update(error_type=record["error"]["type"], error_code=record["error"]["code"],
                   error_message=record["error"]["message"])
    return row


@main.command("hash")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-a", "--algorithm", "algorithms", multiple=True, default=("pdq",), show_default=True,
              help=f"Repeatable or comma separated: {', '.join(ALGORITHMS)}.")
@click.option("--pdq-mode", type=click.Choice(PDQ_MODES), default="full", show_default=True,
              help="full: the pdqhash / python-threatexchange convention (most shared lists). "
                   "cimg512: Meta's C++ pdq-photo-hasher.")
@click.option("--dihedral", is_flag=True, help="Also output PDQ's 7 rotated/flipped variants.")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write here (created 0600, atomically) instead of stdout.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Hashing threads [default: the usable cores].")
@click.option("--apply-exif-orientation", is_flag=True,
              help="Rotate by the EXIF orientation tag before hashing (the reference tools do not).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=DecodeLimits.max_bytes, show_default=True)
@click.option("--max-pixels", type=click.IntRange(min=1), default=DecodeLimits.max_pixels, show_default=True)
def hash_command(paths, algorithms, pdq_mode, dihedral, output_format, output, workers,
                 apply_exif_orientation, max_bytes, max_pixels) -> None:
    """Hash image files, and every file under folders (recursively).

    One record per file: the path and each requested hash under its algorithm name, or
    an `error` with its type and message. Errors never stop the run.

    Exit status: 0 every file hashed, 1 at least one file failed, 2 usage error.
    """
    try:
        chosen = parse_algorithms(algorithms)
        hasher = Hasher(chosen, pdq_mode=pdq_mode, dihedral=dihedral, exif_transpose=apply_exif_orientation,
                        limits=DecodeLimits(max_bytes=max_bytes, max_pixels=max_pixels))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc

    def outcome(item: InputFile) -> HashResult | ImageError:
        return item.error or hasher.hash_or_error(item.path)

    # Streamed: tee keeps only the items in flight, so a huge tree never sits in memory.
    walk, to_hash = itertools.tee(iter_input_files(paths))
    records: Iterator[dict[str, Any]] = (
        _record(item, result) for item, result in zip(walk, ordered_map(outcome, to_hash, workers))
    )
    failed = total = 0
    # Paths that are not valid UTF-8 are kept as escapes rather than failing the write.
    target: Any = atomic_write(output, "w", encoding="utf-8", errors="backslashreplace", newline="") \
        if output else nullcontext(_stdout())
    with target as stream:
        writer = csv.DictWriter(stream, fieldnames=_csv_columns(chosen, dihedral), extrasaction="ignore") \
            if output_format == "csv" else None
        if writer:
            writer.writeheader()
        for record in records:
            total += 1
            failed += "error" in record
            if writer:
                writer.writerow(_csv_row(record))
            else:
                stream.write(json.dumps(record) + "\n")
    if failed:
        click.echo(f"hashmatch: {failed} of {total} files could not be hashed", err=True)
    sys.exit(1 if failed else 0)


def _stdout() -> IO[str]:
    stream = sys.stdout
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="backslashreplace")
    return stream


if __name__ == "__main__":  # pragma: no cover
    main()
