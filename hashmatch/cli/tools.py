"""`hashmatch evaluate` (detection quality per setting and transform) and `hashmatch
bench` (throughput on this machine): the measuring commands."""
from __future__ import annotations

import json
import os
import sys

import click

from hashmatch.base.files import atomic_write
from hashmatch.cli.common import SetupError
from hashmatch.cli.terminal import safe
from hashmatch.errors import ConfigurationError
from hashmatch.evaluation.evaluate import SETTINGS as EVAL_SETTINGS


@click.command("evaluate")
@click.argument("originals_dir", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for results.json and the PNG plots.")
@click.option("--generate", type=click.IntRange(min=0), default=0,
              help="Add N generated benign scenes as originals (no folder needed).")
@click.option("--seed", type=int, default=20240601, show_default=True)
@click.option("--transforms", "transform_names", default="default", show_default=True,
              help="Comma list of transform names, 'default' (20) or 'all'.")
@click.option("--algorithms", "algorithm_names", default=None,
              help="Comma list of pdq, phash, dhash, ahash: every setting of these [default: all].")
@click.option("--settings", "setting_names", default="all", show_default=True,
              help="Comma list of: " + ", ".join(EVAL_SETTINGS) + ", or 'all'.")
@click.option("--target-fmr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01,
              show_default=True, help="False-match rate at which to report the threshold and recall.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None, help="Processes [default: cores].")
@click.option("--no-plots", is_flag=True,
              help="Skip the PNG plots (they need matplotlib: pip install 'hashmatch[plot]').")
@click.option("--video", is_flag=True,
              help="Evaluate vPDQ on --generate N generated videos and the video transforms instead of images.")
@click.option("-q", "--quiet", is_flag=True)
def evaluate_command(originals_dir, output, generate, seed, transform_names, algorithm_names, setting_names,
                     target_fmr, workers, no_plots, video, quiet) -> None:
    """Measure how many transformed copies each hash setting still finds, and at what
    false-match rate, on ORIGINALS_DIR (benign images) and/or --generate N scenes.

    Writes OUTPUT/results.json (a list of records with algorithm, setting, transform,
    threshold, recall, false_match_rate, threshold_at_target, recall_at_target),
    OUTPUT/run.json and PNG plots, and prints the recall table.
    """
    from hashmatch.evaluation.evaluate import evaluate, list_originals, table, write_outputs
    from hashmatch.evaluation.transforms import BUILTIN, DEFAULT

    if video:
        _evaluate_video(output, generate, seed, transform_names, quiet)
        return

    names = {"default": list(DEFAULT), "all": list(BUILTIN)}.get(transform_names) or \
        [n.strip() for n in transform_names.split(",") if n.strip()]
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        raise click.UsageError(f"unknown transforms {unknown}; known: {', '.join(BUILTIN)}")
    settings = list(EVAL_SETTINGS) if setting_names == "all" else [s.strip() for s in setting_names.split(",")]
    if algorithm_names:
        wanted = {a.strip().lower() for a in algorithm_names.split(",") if a.strip()}
        settings = [s for s in settings if s.split(":")[0] in wanted]
        if not settings:
            raise click.UsageError(f"no setting for algorithms {sorted(wanted)}")
    originals = list_originals(originals_dir) if originals_dir else []
    if not originals and not generate:
        raise click.UsageError("give ORIGINALS_DIR with images, or --generate N")
    total = len(originals) + generate
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="original", file=sys.stderr)
    try:
        result = evaluate(originals, generate=generate, seed=seed, transforms={n: BUILTIN[n] for n in names},
                          settings=settings, target_fmr=target_fmr, workers=workers,
                          progress=bar.update if bar else None)
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    written = write_outputs(result, output, plots=not no_plots)
    click.echo(table(result.records))
    for problem in result.skipped:
        click.echo(safe(f"skipped: {problem}"), err=True)
    click.echo(f"{result.originals} originals x {len(names)} transforms; wrote {', '.join(written)}", err=True)


def _evaluate_video(output: str, generate: int, seed: int, transform_names: str, quiet: bool) -> None:
    from hashmatch.base.files import make_private_dirs
    from hashmatch.evaluation import synthetic_video as synthetic
    from hashmatch.evaluation.video_measure import evaluate_video

    if not generate:
        raise click.UsageError("--video needs --generate N (videos are generated, never read from a folder)")
    names = list(synthetic.TRANSFORMS) if transform_names in ("default", "all") else \
        [n.strip() for n in transform_names.split(",") if n.strip()]
    unknown = [n for n in names if n not in synthetic.TRANSFORMS]
    if unknown:
        raise click.UsageError(f"unknown video transforms {unknown}; known: {', '.join(synthetic.TRANSFORMS)}")
    records = evaluate_video(generate, seed=seed, transforms=names,
                             progress=None if quiet else lambda n: click.echo(".", nl=False, err=True))
    make_private_dirs(output)
    with atomic_write(os.path.join(output, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(records, handle, indent=1)
    for record in records:
        click.echo("  ".join(f"{k}={v}" for k, v in record.items()))


@click.command("bench")
@click.option("--sizes", default="100k,1m", show_default=True,
              help="List sizes for the matching part: 100k, 1m, 10m or numbers, comma separated.")
@click.option("--compare", is_flag=True,
              help="Also measure the peers (pdqhash, imagehash, FAISS MultiHash) in the same run.")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Hash these images instead of generated ones.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="Write PNG charts here (needs matplotlib).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the results as JSON (0600).")
@click.option("--scan-files", type=click.IntRange(min=1), default=100, show_default=True,
              help="Generated 1024x768 JPEGs in the scan part.")
@click.option("--video", is_flag=True,
              help="Only vPDQ: 720p and 1080p generated clips on one core, frames/s and realtime factor "
                   "(with --compare beside Meta's vpdq package, when installed).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def bench_command(sizes, compare, images, plot_dir, output, scan_files, video, quiet) -> None:
    """Measure throughput on this machine: hashing per algorithm and image size (one
    thread and all cores, beside bare decoding), matching per engine and list size
    (build time, bytes per entry, lookups/s, recall), and a full scan's files/s."""
    from hashmatch.evaluation.bench import parse_sizes, plots, run, tables

    try:
        list_sizes = parse_sizes(sizes)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="step", file=sys.stderr, bar_format="{desc} [{elapsed}]")

    def step(what: str) -> None:
        if bar is not None:
            bar.set_description_str(what)
            bar.update(1)

    if video:
        from hashmatch.evaluation.video_measure import bench_video

        rows = bench_video(compare=compare, step=step)
        if bar is not None:
            bar.close()
        for row in rows:
            click.echo("  ".join(f"{k}={v}" for k, v in row.items()))
        if output:
            with atomic_write(output, "w", encoding="utf-8") as handle:
                json.dump({"video": rows}, handle, indent=1)
        return
    try:
        result = run(sizes=list_sizes, compare=compare, images=images, scan_files=scan_files, progress=step)
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    click.echo(tables(result))
    if output:
        with atomic_write(output, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    if plot_dir:
        try:
            written = plots(result, plot_dir)
        except ImportError as exc:
            raise SetupError("--plot needs matplotlib: pip install 'hashmatch[plot]'") from exc
        click.echo(f"charts: {', '.join(written)}", err=True)


