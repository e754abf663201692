"""The `hashmatch` command line: click commands only; each parses, calls the API, prints."""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import sys
import warnings
from contextlib import nullcontext
from typing import IO, Any, Iterator

import click
from PIL import Image

from . import __version__
from .decode import DecodeLimits
from .errors import ConfigurationError, HashmatchError, ImageError
from .files import InputFile, atomic_write, iter_input_files
from .hashing import (
    ALGORITHMS,
    DIHEDRAL_NAMES,
    HEX_LENGTH,
    PDQ_MODES,
    Hasher,
    HashResult,
    ordered_map,
    parse_algorithms,
)
from .lists import FORMATS as LIST_FORMATS
from .lists import WRITE_FORMATS, ListFormatError, read_list, write_rejects
from .matcher import DEFAULT_PDQ_QUALITY_GATE, Matcher
from .evaluate import SETTINGS as EVAL_SETTINGS
from .report import REPORT_FORMATS
from .scan import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S
from .store import Store, StoreError
from .terminal import safe

# The CLI refuses oversized images with its own typed error; Pillow's warning about the
# same image would only be noise between the records.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hashmatch")
def main() -> None:
    """Find known images by perceptual hash (PDQ, pHash, dHash, aHash) and exact hash."""


def _record(item: InputFile, outcome: HashResult | ImageError) -> dict[str, Any]:
    if isinstance(outcome, ImageError):
        # Exact hashes of a file that did not decode are kept beside the error: they still match.
        return {"path": item.path, **(outcome.file_hashes or {}),
                **({"size": outcome.file_size} if outcome.file_size is not None else {}),
                "error": {"type": type(outcome).__name__, "code": outcome.code, "message": str(outcome)}}
    return {"path": item.path, **outcome.to_dict()}


def _csv_columns(algorithms: tuple[str, ...], dihedral: bool, trim: bool = False) -> list[str]:
    columns = ["path", *algorithms]
    if "pdq" in algorithms:
        columns += ["pdq_quality", "pdq_mode"]
        if dihedral:
            columns += [f"pdq_{name}" for name in DIHEDRAL_NAMES[1:]]
        if trim:
            columns += ["pdq_trimmed", "pdq_trimmed_quality"]
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
@click.option("--trim-borders", is_flag=True,
              help="Also output the PDQ of the image with flat borders trimmed (pdq_trimmed), when it has any.")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write here (created 0600, atomically) instead of stdout.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
              help="Hashing threads [default: the usable cores].")
@click.option("--apply-exif-orientation", is_flag=True,
              help="Rotate by the EXIF orientation tag before hashing (the reference tools do not).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=DecodeLimits.max_bytes, show_default=True)
@click.option("--max-pixels", type=click.IntRange(min=1), default=DecodeLimits.max_pixels, show_default=True)
def hash_command(paths, algorithms, pdq_mode, dihedral, trim_borders, output_format, output, workers,
                 apply_exif_orientation, max_bytes, max_pixels) -> None:
    """Hash image files, and every file under folders (recursively).

    One record per file: the path and each requested hash under its algorithm name, or
    an `error` with its type and message. Exact hashes (md5, sha1, sha256) are taken of
    every readable file, image or not, and stay in the record beside the error of a file
    that does not decode. Errors never stop the run.

    Exit status: 0 every file hashed, 1 at least one file failed, 2 usage error.
    """
    try:
        chosen = parse_algorithms(algorithms)
        hasher = Hasher(chosen, pdq_mode=pdq_mode, dihedral=dihedral, exif_transpose=apply_exif_orientation,
                        trim_borders=trim_borders,
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
        writer = csv.DictWriter(stream, fieldnames=_csv_columns(chosen, dihedral, trim_borders), extrasaction="ignore") \
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


class SetupError(click.ClickException):
    """A store, list or option that cannot be used: exit status 2, like a usage error, so
    that status 1 keeps meaning "something matched" (lookup, scan) or "a file failed" (hash)."""

    exit_code = 2

    def format_message(self) -> str:
        return safe(self.message)  # messages name files and lists: never raw control characters


STORE_OPTION = click.option("-s", "--store", "store_path", required=True, type=click.Path(file_okay=False),
                            help="The store directory.")


def _open_store(path: str) -> Store:
    try:
        return Store.open(path)
    except StoreError as exc:
        raise SetupError(str(exc)) from exc


@main.group("list")
def list_group() -> None:
    """Manage the hash lists in a store: import, show, export, remove, disable."""


@list_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@STORE_OPTION
@click.option("--name", help="List name [default: the file name without extension].")
@click.option("--version", "list_version", help="List version [default: the file's sha256, first 12 digits].")
@click.option("--category", help="Category for entries whose source carries none (csam, terrorism, ...).")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), help="Algorithm for lists that do not name it.")
@click.option("--format", "list_format", type=click.Choice(LIST_FORMATS), help="Force a format [default: detect].")
@click.option("--skip-invalid", is_flag=True, help="Import the valid lines; write every rejected line to --rejects.")
@click.option("--rejects", type=click.Path(dir_okay=False), help="Reject report [default: FILE.rejects.csv].")
@click.option("--pdq-mode", type=click.Choice(PDQ_MODES), default="full", show_default=True,
              help="Convention the list's PDQ hashes were made with (a new store takes it).")
def list_import(files, store_path, name, list_version, category, algorithm, list_format, skip_invalid, rejects,
                pdq_mode) -> None:
    """Import hash lists into a store (created if missing). Re-importing a list under the
    same name replaces all its entries at once. All or nothing unless --skip-invalid."""
    if name and len(files) > 1:
        raise click.UsageError("--name applies to one file; import files one at a time to name them")
    try:
        store = Store.open_or_create(store_path, pdq_mode=pdq_mode)
        for file in files:
            store, parsed, list_name, version = _import_list_file(
                store, file, name=name, version=list_version, pdq_mode=pdq_mode, format=list_format,
                algorithm=algorithm, category=category, skip_invalid=skip_invalid)
            counts = ", ".join(f"{n} {a}" for a, n in sorted(parsed.counts().items()))
            click.echo(safe(f"{list_name}: imported {len(parsed)} entries ({counts}) as version {version}"), err=True)
            if parsed.rejected:
                report = rejects or f"{file}.rejects.csv"
                write_rejects(parsed.rejected, report)
                click.echo(safe(f"{list_name}: {len(parsed.rejected)} invalid lines skipped, listed in {report}"),
                           err=True)
    except (ListFormatError, StoreError) as exc:
        raise SetupError(str(exc)) from exc


@list_group.command("show")
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_show(store_path, as_json) -> None:
    """The store's lists with versions and entry counts."""
    store = _open_store(store_path)
    lists = store.lists()
    if as_json:
        click.echo(json.dumps({"generation": store.generation, "pdq_mode": store.pdq_mode,
                               "counts": store.manifest.counts, "lists": [l.__dict__ for l in lists]}, indent=2))
        return
    click.echo(safe(f"store {store.path} (generation {store.generation}, PDQ convention {store.pdq_mode})"))
    for info in lists:
        click.echo(safe(f"  {info.name}  version {info.version}  {info.entries} entries"
                        f"  ({info.disabled} disabled)  imported {info.imported_at}"))


@list_group.command("export")
@STORE_OPTION
@click.option("--name", help="Export only this list [default: every list].")
@click.option("--format", "list_format", type=click.Choice(WRITE_FORMATS), default="csv", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write (atomically, mode 0600).")
@click.option("--include-disabled", is_flag=True, help="Also export locally disabled entries.")
def list_export(store_path, name, list_format, output, include_disabled) -> None:
    """Export entries as plain text (`algorithm hash`), CSV or JSON Lines; `list import`
    reads every one of them back."""
    store = _open_store(store_path)
    try:
        n = store.export(output, list_format, list_name=name, include_disabled=include_disabled)
    except (StoreError, ConfigurationError) as exc:
        raise SetupError(str(exc)) from exc
    click.echo(f"exported {n} entries to {output}", err=True)


@list_group.command("remove")
@STORE_OPTION
@click.option("--name", help="Remove this whole list.")
@click.option("--entry", "entries", multiple=True, type=int, help="Remove this entry (store id); repeatable.")
@click.option("--reason", default="retracted by the source", show_default=True)
def list_remove(store_path, name, entries, reason) -> None:
    """Remove a list or entries (retracted by the source); removals are kept in the audit table."""
    if bool(name) == bool(entries):
        raise click.UsageError("give either --name or --entry")
    store = _open_store(store_path)
    try:
        store = store.remove_list(name, reason) if name else store.remove_entries(entries, reason)
    except StoreError as exc:
        raise SetupError(str(exc)) from exc
    click.echo(f"removed; store is now at generation {store.generation}", err=True)


def _set_disabled(store_path: str, entries, hashes, disabled: bool, reason: str | None) -> None:
    store = _open_store(store_path)
    ids = set(entries)
    for spec in hashes:
        algorithm, _, hex_hash = spec.partition(":")
        found = store.find(algorithm.lower(), hex_hash.lower()) if hex_hash else []
        if not found:
            raise SetupError(f"no entry holds {spec!r} (expected ALGORITHM:HEX)")
        ids.update(e.id for e in found)
    if not ids:
        raise click.UsageError("give --entry or --hash")
    try:
        store = store.set_disabled(ids, disabled, reason)
    except StoreError as exc:
        raise SetupError(str(exc)) from exc
    click.echo(f"{'disabled' if disabled else 'enabled'} {len(ids)} entries; generation {store.generation}", err=True)


@list_group.command("disable")
@STORE_OPTION
@click.option("--entry", "entries", multiple=True, type=int, help="Store id of the entry; repeatable.")
@click.option("--hash", "hashes", multiple=True, help="ALGORITHM:HEX; every entry holding it; repeatable.")
@click.option("--reason", required=True, help="Why (kept with the entry for audit).")
def list_disable(store_path, entries, hashes, reason) -> None:
    """Disable entries locally (false positives): they never match but stay auditable."""
    _set_disabled(store_path, entries, hashes, True, reason)


@list_group.command("enable")
@STORE_OPTION
@click.option("--entry", "entries", multiple=True, type=int)
@click.option("--hash", "hashes", multiple=True, help="ALGORITHM:HEX")
def list_enable(store_path, entries, hashes) -> None:
    """Enable entries disabled earlier."""
    _set_disabled(store_path, entries, hashes, False, None)


@main.command("lookup")
@click.argument("hashes", nargs=-1)
@STORE_OPTION
@click.option("-t", "--threshold", "thresholds", multiple=True, metavar="ALGORITHM=N",
              help="Override a threshold, e.g. pdq=25; repeatable.")
@click.option("--dihedral", is_flag=True,
              help="Also search the PDQ dihedral variants of records that carry them (hash --dihedral).")
@click.option("--pdq-quality-gate", type=click.IntRange(0, 100), default=DEFAULT_PDQ_QUALITY_GATE, show_default=True,
              help="Records whose PDQ quality is below this are reported low_quality, not matched.")
@click.option("--trim-borders", is_flag=True, help="Also search the border-trimmed PDQ of records (hash --trim-borders).")
@click.option("--engine", type=click.Choice(["auto", "flat", "mih"]), default="auto", show_default=True)
def lookup(hashes, store_path, thresholds, dihedral, pdq_quality_gate, trim_borders, engine) -> None:
    """Look hashes up: HASH arguments, or one per line on stdin. A line is hex, optionally
    preceded by its algorithm (`pdq 0a1b...`; bare hex is tried as every algorithm of that
    length held by the store), or a JSON record of `hashmatch hash` (its path, hashes, PDQ
    quality and dihedral variants are used, so `hashmatch hash DIR | hashmatch lookup -s S`
    matches a folder). One JSON line per query; a bad query gets an `error` and the run
    goes on.

    Exit status: 0 no match, 1 at least one match, 2 usage or setup error.
    """
    try:
        matcher = Matcher(_open_store(store_path), thresholds=_parse_thresholds(thresholds), engine=engine,
                          dihedral=dihedral, pdq_quality_gate=pdq_quality_gate, trim_borders=trim_borders)
    except ConfigurationError as exc:
        raise SetupError(str(exc)) from exc
    queries = hashes or (line for line in sys.stdin if line.strip())
    any_match = False
    out = _stdout()
    for raw in queries:
        record, query = _lookup_query(raw.strip(), matcher)
        if query is not None:
            try:
                result = matcher.match_hashes(**query)
            except ConfigurationError as exc:
                record["error"] = str(exc)
            else:
                record.update(result.to_dict())
                any_match |= result.matched
        out.write(json.dumps(record) + "\n")
        out.flush()
    sys.exit(1 if any_match else 0)


def _lookup_query(text: str, matcher: Matcher) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the output record so far, keyword arguments for match_hashes or None on error)."""
    if text.startswith("{"):
        return _lookup_hash_record(text, matcher)
    record: dict[str, Any] = {"query": text}
    parts = text.replace(",", " ").split()
    if len(parts) == 2:
        algorithm = parts[0].lower()
        if algorithm not in HEX_LENGTH:
            record["error"] = f"unknown algorithm {parts[0]!r}"
            return record, None
        return record, {"hashes": {algorithm: parts[1]}}
    if len(parts) != 1:
        record["error"] = "expected HEX, ALGORITHM HEX or a JSON record of hashmatch hash"
        return record, None
    candidates = [a for a in matcher.algorithms if HEX_LENGTH[a] == len(parts[0])]
    if not candidates:
        record["error"] = f"no algorithm in this store has {len(parts[0])}-digit hashes"
        return record, None
    return record, {"hashes": {a: parts[0] for a in candidates}}


def _lookup_hash_record(text: str, matcher: Matcher) -> tuple[dict[str, Any], dict[str, Any] | None]:
    try:
        source = json.loads(text)
    except ValueError as exc:
        return {"query": text[:200], "error": f"not valid JSON: {exc}"}, None
    if not isinstance(source, dict):
        return {"query": text[:200], "error": "a JSON query must be an object"}, None
    record: dict[str, Any] = {"path": source["path"]} if "path" in source else {}
    if "error" in source:  # the file could not be hashed: pass its error through
        record["error"] = source["error"]
        return record, None
    present = {a: source[a] for a in matcher.algorithms if isinstance(source.get(a), str)}
    if not present:
        record["error"] = f"the record holds none of this store's algorithms ({', '.join(matcher.algorithms)})"
        return record, None
    quality = source.get("pdq_quality")
    dihedral = source.get("pdq_dihedral")
    trimmed, trimmed_quality = source.get("pdq_trimmed"), source.get("pdq_trimmed_quality")
    return record, {"hashes": present, "pdq_quality": quality if isinstance(quality, int) else None,
                    "pdq_dihedral": dihedral if isinstance(dihedral, dict) else None,
                    "pdq_trimmed": trimmed if isinstance(trimmed, str) else None,
                    "pdq_trimmed_quality": trimmed_quality if isinstance(trimmed_quality, int) else None}


@main.command("scan")
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
@click.option("--dihedral", is_flag=True, help="Also match PDQ's rotated and flipped variants.")
@click.option("-t", "--threshold", "thresholds", multiple=True, metavar="ALGORITHM=N",
              help="Override a threshold, e.g. pdq=25; repeatable.")
@click.option("--pdq-quality-gate", type=click.IntRange(0, 100), default=DEFAULT_PDQ_QUALITY_GATE, show_default=True)
@click.option("--trim-borders", is_flag=True,
              help="Also hash PDQ after trimming flat borders (letterboxes, frames) and match that too. "
                   "Off by default: lists made by other tools hold untrimmed hashes.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds a file may take before its worker is stopped (the file gets an error row).")
@click.option("--memory-limit", "memory_limit_mb", type=click.IntRange(min=0), default=DEFAULT_MEMORY_LIMIT >> 20,
              show_default=True, help="Address-space limit per worker, MiB (0: none).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=DecodeLimits.max_bytes, show_default=True)
@click.option("--max-pixels", type=click.IntRange(min=1), default=DecodeLimits.max_pixels, show_default=True)
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links (loops are detected).")
@click.option("--resume", is_flag=True, help="Continue an interrupted scan into the same --report.")
@click.option("--audit-log", type=click.Path(dir_okay=False),
              help="Audit log to append to [default: STORE/audit.jsonl, else beside the report].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no match lines on stderr.")
@click.option("--engine", type=click.Choice(["auto", "flat", "mih"]), default="auto", show_default=True)
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run on a Dask cluster: a scheduler address (tcp://host:8786; the store must be on a path "
                   "every worker reads) or local[:N] for N local worker processes. Needs hashmatch[dask].")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Files per Dask task.")
def scan_command(paths, store_path, list_files, report, report_format, workers, algorithms, pdq_mode, dihedral,
                 thresholds, pdq_quality_gate, trim_borders, timeout_s, memory_limit_mb, max_bytes, max_pixels, follow_symlinks,
                 resume, audit_log, quiet, engine, dask_address, shard_size) -> None:
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

    from .scan import ScanOptions, append_audit, audit_record, scan

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
                    store = _import_list_file(store, file)[0]
            else:
                store = _open_store(store_path)
            chosen = parse_algorithms(",".join(algorithms)) if algorithms else None
            matcher = Matcher(store, algorithms=chosen, thresholds=_parse_thresholds(thresholds), engine=engine,
                              dihedral=dihedral, pdq_quality_gate=pdq_quality_gate, trim_borders=trim_borders,
                              limits=DecodeLimits(max_bytes=max_bytes, max_pixels=max_pixels))
        except (ConfigurationError, ListFormatError, StoreError) as exc:
            raise SetupError(str(exc)) from exc
        options = ScanOptions(workers=workers or 0, timeout_s=timeout_s,
                              memory_limit=(memory_limit_mb << 20) or None, follow_symlinks=follow_symlinks,
                              resume=resume, report_format=report_format)
        client = cluster = executor = None
        if dask_address:
            from .dask_executor import DaskExecutor, connect

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

            from .scan import walk_tree

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


@main.command("evaluate")
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
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (they need matplotlib: pip install 'hashmatch[plot]').")
@click.option("-q", "--quiet", is_flag=True)
def evaluate_command(originals_dir, output, generate, seed, transform_names, algorithm_names, setting_names,
                     target_fmr, workers, no_plots, quiet) -> None:
    """Measure how many transformed copies each hash setting still finds, and at what
    false-match rate, on ORIGINALS_DIR (benign images) and/or --generate N scenes.

    Writes OUTPUT/results.json (a list of records with algorithm, setting, transform,
    threshold, recall, false_match_rate, threshold_at_target, recall_at_target),
    OUTPUT/run.json and PNG plots, and prints the recall table.
    """
    from .evaluate import evaluate, list_originals, table, write_outputs
    from .transforms import BUILTIN, DEFAULT

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


@main.command("bench")
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
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def bench_command(sizes, compare, images, plot_dir, output, scan_files, quiet) -> None:
    """Measure throughput on this machine: hashing per algorithm and image size (one
    thread and all cores, beside bare decoding), matching per engine and list size
    (build time, bytes per entry, lookups/s, recall), and a full scan's files/s."""
    from .bench import parse_sizes, plots, run, tables

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


def _parse_thresholds(specs) -> dict[str, int]:
    result = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        if not value.isdigit():
            raise click.UsageError(f"threshold {spec!r}: expected ALGORITHM=N")
        result[name.strip().lower()] = int(value)
    return result


def _import_list_file(store: Store, file: str, *, name: str | None = None, version: str | None = None,
                      pdq_mode: str | None = None, **read_options) -> tuple[Store, Any, str, str]:
    """Read a list file and import it: named after the file unless `name`, versioned by
    the first 12 digits of its sha256 unless `version`. Returns (store, parsed list,
    name, version)."""
    parsed = read_list(file, **read_options)
    digest = _file_sha256(file)
    name = name or os.path.splitext(os.path.basename(file))[0]
    version = version or digest[:12]
    return store.import_list(parsed, name=name, version=version, pdq_mode=pdq_mode, source_sha256=digest), \
        parsed, name, version


def _file_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _stdout() -> IO[str]:
    stream = sys.stdout
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="backslashreplace")
    return stream


if __name__ == "__main__":  # pragma: no cover
    main()
