"""`hashmatch hash`: one record per file (JSON Lines or CSV), every requested hash or a
typed error; optionally in isolated worker processes with per-file limits."""
from __future__ import annotations

import csv
import itertools
import json
import sys
from contextlib import nullcontext
from typing import Any, Iterator

import click

from hashmatch.base.files import atomic_write
from hashmatch.cli.common import decode_limits, limit_options, stdout
from hashmatch.config import usable_cores
from hashmatch.errors import ConfigurationError, ImageError
from hashmatch.isolation.isolated import IsolatedHasher
from hashmatch.isolation.workers import DEFAULT_MEMORY_LIMIT
from hashmatch.scan.walk import InputFile, iter_input_files
from hashmatch.signals.hasher import (
    ALGORITHMS,
    PDQ_MODES,
    VIDEO_ALGORITHMS,
    Hasher,
    HashResult,
    ordered_map,
    parse_algorithms,
)


def _record(item: InputFile, outcome: HashResult | ImageError) -> dict[str, Any]:
    if isinstance(outcome, ImageError):
        # Exact hashes of a file that did not decode are kept beside the error: they still match.
        return {"path": item.path, **(outcome.file_hashes or {}),
                **({"size": outcome.file_size} if outcome.file_size is not None else {}),
                "error": {"type": type(outcome).__name__, "code": outcome.code, "message": str(outcome)}}
    return {"path": item.path, **outcome.to_dict()}


def _csv_columns(hasher: Hasher) -> list[str]:
    columns = ["path", *hasher.algorithms]
    for signal in hasher.signal_types():
        columns += signal.csv_columns(hasher.options)
    return columns + ["width", "height", "format", "mode", "frames", "error_type", "error_code", "error_message"]


def _csv_row(record: dict[str, Any], hasher: Hasher) -> dict[str, Any]:
    row = {k: v for k, v in record.items() if not isinstance(v, dict) and k != "exif_transposed"}
    for signal in hasher.signal_types():
        row.update(signal.csv_fields(record))
    if "error" in record:
        row.update(error_type=record["error"]["type"], error_code=record["error"]["code"],
                   error_message=record["error"]["message"])
    return row


def _write_frame_file(folder: str, path: str, value: str) -> None:
    """Meta's per-frame text of one video, as FOLDER/<file name without extension>.txt
    (-2, -3... when two videos share a name)."""
    import os

    from hashmatch.base.files import make_private_dirs
    from hashmatch.video.vpdq import parse, to_frame_file

    make_private_dirs(folder)
    stem = os.path.splitext(os.path.basename(path))[0] or "video"
    target, n = os.path.join(folder, f"{stem}.txt"), 1
    while os.path.exists(target):
        n += 1
        target = os.path.join(folder, f"{stem}-{n}.txt")
    with atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write(to_frame_file(parse(value)))


@click.command("hash")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-a", "--algorithm", "algorithms", multiple=True, default=("pdq",), show_default=True,
              help=f"Repeatable or comma separated: {', '.join(ALGORITHMS + VIDEO_ALGORITHMS)}, or a plug-in's "
                   "signal type. vpdq hashes videos (pip install 'hashmatch[video]'); image types, images.")
@click.option("--pdq-mode", type=click.Choice(PDQ_MODES), default="full", show_default=True,
              help="full: the pdqhash / python-threatexchange convention (most shared lists). "
                   "cimg512: Meta's C++ pdq-photo-hasher.")
@click.option("--dihedral", is_flag=True, help="Also output PDQ's 7 rotated/flipped variants.")
@click.option("--trim-borders", is_flag=True,
              help="Also output the PDQ of the image with flat borders trimmed (pdq_trimmed), when it has any, and "
                   "of pictures found inside it (pdq_pictures: screenshots, canvases).")
@click.option("--crop-robust", is_flag=True,
              help="Also output the PDQ of the image's zoom-out variants (pdq_crops), for lookup --crop-robust.")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write here (created 0600, atomically) instead of stdout.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Hashing threads [default: the usable cores].")
@click.option("--apply-exif-orientation", is_flag=True,
              help="Rotate by the EXIF orientation tag before hashing (the reference tools do not).")
@click.option("--vpdq-frames", "vpdq_frames_dir", type=click.Path(file_okay=False),
              help="Also write each video's vPDQ as Meta's per-frame text (frame,quality,hex,timestamp) to "
                   "DIR/NAME.txt, the C++ CLI's format (0600).")
@limit_options
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=None,
              help="Hash in worker processes, stopping a file after this many seconds (a typed 'timeout' record); "
                   "a file that crashes or exhausts its worker also costs only its record [default: in-process].")
@click.option("--memory-limit", "memory_limit_mb", type=click.IntRange(min=0), default=DEFAULT_MEMORY_LIMIT >> 20,
              show_default=True, help="With --timeout: address-space limit per worker, MiB (0: none).")
def hash_command(paths, algorithms, pdq_mode, dihedral, trim_borders, crop_robust, output_format, output, workers,
                 apply_exif_orientation, vpdq_frames_dir, max_bytes, max_pixels, no_verify_jpeg, seconds_per_hash,
                 max_video_seconds, animated_as_video, timeout_s, memory_limit_mb) -> None:
    """Hash image and video files, and every file under folders (recursively).

    One record per file: the path and each requested hash under its algorithm name, or
    an `error` with its type and message. Exact hashes (md5, sha1, sha256) are taken of
    every readable file, image or not, and stay in the record beside the error of a file
    that does not decode. Errors never stop the run.

    Decoders run in this process unless --timeout is given: then each file is hashed in
    a worker process with that time limit and --memory-limit, so a hostile file costs
    only its own record.

    Exit status: 0 every file hashed, 1 at least one file failed, 2 usage error.
    """
    try:
        chosen = parse_algorithms(algorithms)
        hasher = Hasher(chosen, pdq_mode=pdq_mode, dihedral=dihedral, exif_transpose=apply_exif_orientation,
                        trim_borders=trim_borders, crop_robust=crop_robust, seconds_per_hash=seconds_per_hash,
                        limits=decode_limits(max_bytes, max_pixels, no_verify_jpeg, max_video_seconds,
                                             animated_as_video))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    threads = workers or usable_cores()
    isolated = IsolatedHasher(hasher, workers=threads, timeout_s=timeout_s,
                              memory_limit=(memory_limit_mb << 20) or None) if timeout_s else None
    hash_or_error = (isolated or hasher).hash_or_error

    def outcome(item: InputFile) -> HashResult | ImageError:
        return item.error or hash_or_error(item.path)

    # Streamed: tee keeps only the items in flight, so a huge tree never sits in memory.
    walk, to_hash = itertools.tee(iter_input_files(paths))
    records: Iterator[dict[str, Any]] = (
        _record(item, result) for item, result in zip(walk, ordered_map(outcome, to_hash, threads))
    )
    failed = total = 0
    # Paths that are not valid UTF-8 are kept as escapes rather than failing the write.
    target: Any = atomic_write(output, "w", encoding="utf-8", errors="backslashreplace", newline="") \
        if output else nullcontext(stdout())
    with target as stream:
        writer = csv.DictWriter(stream, fieldnames=_csv_columns(hasher), extrasaction="ignore") \
            if output_format == "csv" else None
        if writer:
            writer.writeheader()
        for record in records:
            total += 1
            failed += "error" in record
            if vpdq_frames_dir and isinstance(record.get("vpdq"), str):
                _write_frame_file(vpdq_frames_dir, record["path"], record["vpdq"])
            if writer:
                writer.writerow(_csv_row(record, hasher))
            else:
                stream.write(json.dumps(record) + "\n")
    if isolated is not None:
        isolated.close()
    if failed:
        click.echo(f"hashmatch: {failed} of {total} files could not be hashed", err=True)
    sys.exit(1 if failed else 0)


