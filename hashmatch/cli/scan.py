"""`hashmatch scan`: files and folders against a store or list files, one report row per
entry found, in isolated workers or on a Dask cluster; progress, summary and audit."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from hashmatch.cli.common import (
    SetupError,
    decode_limits,
    limit_options,
    match_config,
    match_options,
    open_store,
)
from hashmatch.cli.terminal import safe
from hashmatch.errors import ConfigurationError, HashmatchError
from hashmatch.isolation.workers import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S
from hashmatch.lists import ListFormatError
from hashmatch.matching.matcher import Matcher
from hashmatch.scan.report import REPORT_FORMATS
from hashmatch.scan.scanner import ScanOptions, append_audit, audit_record, scan
from hashmatch.signals.hasher import PDQ_MODES, parse_algorithms
from hashmatch.store.list_files import import_list_file
from hashmatch.store.store import Store, StoreError


@click.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-s", "--store", "store_path", type=click.Path(file_okay=False), help="Match against this store.")
@click.option("-l", "--list", "list_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Match against these list files instead (a temporary index; repeatable).")
@click.option("-r", "--report", type=click.Path(dir_okay=False),
              help="Report file (created 0600, rows flushed as they finish) [default: stdout].")
@click.option("--format", "report_format", type=click.Choice(REPORT_FORMATS), default="jsonl", show_default=True)
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Hashing processes [default: the usable cores].")
@click.option("-a", "--algorithm", "algorithms", multiple=True,
              help="Algorithms to match (repeatable or comma list) [default: those in the store/lists].")
@click.option("--pdq-mode", type=click.Choice(PDQ_MODES), default="full", show_default=True,
              help="PDQ convention of --list files (a store records its own).")
@match_options(dihedral_help="Also match PDQ's rotated and flipped variants.",
               trim_help="Also hash PDQ after trimming flat borders (letterboxes, frames) and match that too. "
                         "Off by default: lists made by other tools hold untrimmed hashes.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds a file may take before its worker is stopped (the file gets an error row).")
@click.option("--memory-limit", "memory_limit_mb", type=click.IntRange(min=0), default=DEFAULT_MEMORY_LIMIT >> 20,
              show_default=True, help="Address-space limit per worker, MiB (0: none).")
@limit_options
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links (loops are detected).")
@click.option("--resume", is_flag=True, help="Continue an interrupted scan into the same --report.")
@click.option("--audit-log", type=click.Path(dir_okay=False),
              help="Audit log to append to [default: STORE/audit.jsonl, else beside the report].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no match lines on stderr.")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run on a Dask cluster: a scheduler address (tcp://host:8786; the store must be on a path "
                   "every worker reads) or local[:N] for N local worker processes. Needs hashmatch[dask].")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Files per Dask task.")
def scan_command(paths, store_path, list_files, report, report_format, workers, algorithms, pdq_mode, timeout_s,
                 memory_limit_mb, max_bytes, max_pixels, no_verify_jpeg, seconds_per_hash, max_video_seconds,
                 animated_as_video, follow_symlinks, resume, audit_log, quiet, dask_address, shard_size,
                 **match) -> None:
    """Scan files and folders (recursively) against a store or list files.

    Exactly one report row per file found: path, size, sha256, status (match, no_match,
    low_quality, error), the hashes, and for a match every hit with its evidence
    (algorithm, distance, threshold, list, version, category, entry id, dihedral
    variant); for an error its type and message. A summary ends the report and goes to
    stderr. Files are decoded in worker processes: a file that crashes, hangs or
    exhausts a worker costs only its own row. Symbolic links are not followed unless
    asked; FIFOs, sockets and devices get a row without being opened.

    Exit status: 0 no match, 1 at least one match, 2 usage or setup error. A file that
    cannot be hashed is an error row, not a failure of the run.
    """
    import datetime as dt
    import tempfile

    if bool(store_path) == bool(list_files):
        raise click.UsageError("give either --store or --list")
    if resume and not report:
        raise click.UsageError("--resume needs the --report of the interrupted scan")
    if dask_address and list_files and not dask_address.startswith("local"):
        raise click.UsageError("--list builds a store on this machine only; with a remote --dask cluster "
                               "import the lists into a --store on a path every worker reads")
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    temp = tempfile.TemporaryDirectory(prefix="hashmatch-scan-") if list_files else None
    try:
        try:
            if temp is not None:
                store = Store.create(os.path.join(temp.name, "store"), pdq_mode=pdq_mode)
                for file in list_files:
                    store = import_list_file(store, file)[0]
            else:
                store = open_store(store_path)
            chosen = parse_algorithms(",".join(algorithms)) if algorithms else None
            limits = decode_limits(max_bytes, max_pixels, no_verify_jpeg, max_video_seconds, animated_as_video)
            matcher = Matcher(store, match_config(**match, algorithms=chosen, limits=limits,
                                                  seconds_per_hash=seconds_per_hash))
        except (ConfigurationError, ListFormatError, StoreError) as exc:
            raise SetupError(str(exc)) from exc
        options = ScanOptions(workers=workers or 0, timeout_s=timeout_s,
                              memory_limit=(memory_limit_mb << 20) or None, follow_symlinks=follow_symlinks,
                              resume=resume, report_format=report_format)
        client = cluster = executor = None
        if dask_address:
            from hashmatch.scan.dask_executor import DaskExecutor, connect

            try:
                client, cluster = connect(dask_address)
                executor = DaskExecutor(client, shard_size=shard_size)
            except (ConfigurationError, OSError) as exc:
                raise SetupError(f"Dask: {exc}") from exc
        try:
            with _ScanProgress(paths, follow_symlinks, enabled=not quiet) as progress:
                summary = scan(list(paths), matcher, report or "-", options, progress=progress.row, executor=executor)
        except HashmatchError as exc:
            raise SetupError(str(exc)) from exc
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        record = summary.to_record()
        log = audit_log or (os.path.join(store_path, "audit.jsonl") if store_path else
                            (report + ".audit.jsonl") if report else _user_audit_log())
        append_audit(log, audit_record(matcher, list(paths), report or "-", options, summary, started_at,
                                       list(list_files) or None))
        click.echo(_summary_text(record["summary"]), err=True)
        sys.exit(1 if record["summary"]["matched"] else 0)
    finally:
        if temp is not None:
            temp.cleanup()


def _user_audit_log() -> str:
    """$XDG_STATE_HOME/hashmatch/audit.jsonl (~/.local/state/...): for a scan with neither a
    store nor a report file to sit beside."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    folder = os.path.join(base, "hashmatch")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, "audit.jsonl")


class _ScanProgress:
    """tqdm bar on stderr when it is a terminal: files done, matches so far, rate, and an
    ETA once a background count of the tree finishes. Match lines (path, list, category,
    distance; never hash values) go above the bar."""

    def __init__(self, paths, follow_symlinks: bool, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.matches = 0
        if enabled and sys.stderr.isatty():
            import threading

            from tqdm import tqdm

            from hashmatch.scan.scanner import walk_tree

            self.bar = tqdm(total=None, unit="file", file=sys.stderr, dynamic_ncols=True, smoothing=0.05)

            def count() -> None:
                total = sum(1 for _ in walk_tree(paths, follow_symlinks=follow_symlinks))
                if self.bar is not None:
                    self.bar.total = total
                    self.bar.refresh()

            threading.Thread(target=count, daemon=True, name="hashmatch-count").start()

    def __enter__(self) -> "_ScanProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def row(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if row["status"] == "match":
            self.matches += 1
            best = row["matches"][0]
            line = safe(f"MATCH {row['path']}: {best['list_name']} ({best['category'] or 'no category'}), "
                    f"{best['algorithm']} distance {best['distance']}/{best['threshold']}"
                    + (f", variant {best['variant']}" if best.get("variant") not in (None, "original") else "")
                    + (f" (+{len(row['matches']) - 1} more)" if len(row["matches"]) > 1 else ""))
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                click.echo(line, err=True)
        if self.bar is not None:
            self.bar.set_postfix(matches=self.matches, refresh=False)
            self.bar.update(1)


def _summary_text(summary: dict[str, Any]) -> str:
    parts = [f"{summary['files']} files", f"{summary['matched']} matched", f"{summary['no_match']} no match",
             f"{summary['low_quality']} low quality", f"{summary['errors']} errors"]
    if summary.get("not_decoded"):
        parts.append(f"{summary['not_decoded']} not decoded as images (matched by exact hashes only)")
    if summary["matched_by_category"]:
        parts.append("by category: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["matched_by_category"].items())))
    rate = f", {summary['files_per_s']} files/s" if summary.get("files_per_s") else ""
    return f"hashmatch scan: {'; '.join(parts)} in {summary['elapsed_s']:.1f} s{rate}"


