"""`hashmatch list ...`: import, show, export, remove, disable and enable the hash lists
of a store."""
from __future__ import annotations

import json

import click

from hashmatch.cli.common import STORE_OPTION, SetupError, open_store
from hashmatch.cli.terminal import safe
from hashmatch.errors import ConfigurationError
from hashmatch.lists import FORMATS as LIST_FORMATS
from hashmatch.lists import WRITE_FORMATS, ListFormatError, write_rejects
from hashmatch.signals.hasher import ALGORITHMS, PDQ_MODES
from hashmatch.store.list_files import import_list_file
from hashmatch.store.store import Store, StoreError


@click.group("list")
def list_group() -> None:
    """Manage the hash lists in a store: import, show, export, remove, disable."""


@list_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@STORE_OPTION
@click.option("--name", help="List name [default: the file name without extension].")
@click.option("--version", "list_version", help="List version [default: the file's sha256, first 12 digits].")
@click.option("--category", help="Category for entries whose source carries none (csam, terrorism, ...).")
@click.option("--algorithm", help=f"Algorithm for lists that do not name it ({', '.join(ALGORITHMS)}, or a "
                                  "plug-in's signal type).")
@click.option("--format", "list_format",
              help=f"Force a format: {', '.join(LIST_FORMATS)}, or a plug-in's [default: detect].")
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
            store, summary, list_name, version = import_list_file(
                store, file, name=name, version=list_version, pdq_mode=pdq_mode, format=list_format,
                algorithm=algorithm, category=category, skip_invalid=skip_invalid)
            counts = ", ".join(f"{n} {a}" for a, n in sorted(summary.counts().items()))
            merged = f"; {summary.merged} repeated lines merged into identical entries" if summary.merged else ""
            click.echo(safe(f"{list_name}: imported {len(summary)} entries ({counts}) as version {version}{merged}"),
                       err=True)
            if summary.rejected:
                report = rejects or f"{file}.rejects.csv"
                write_rejects(summary.rejected, report)
                click.echo(safe(f"{list_name}: {len(summary.rejected)} invalid lines skipped, listed in {report}"),
                           err=True)
    except (ListFormatError, StoreError, ConfigurationError) as exc:
        raise SetupError(str(exc)) from exc


@list_group.command("show")
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_show(store_path, as_json) -> None:
    """The store's lists with versions and entry counts."""
    store = open_store(store_path)
    lists = store.lists()
    if as_json:
        click.echo(json.dumps({"generation": store.generation, "pdq_mode": store.pdq_mode,
                               "counts": store.manifest.counts, "lists": [info.__dict__ for info in lists]}, indent=2))
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
    store = open_store(store_path)
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
    store = open_store(store_path)
    try:
        store = store.remove_list(name, reason) if name else store.remove_entries(entries, reason)
    except StoreError as exc:
        raise SetupError(str(exc)) from exc
    click.echo(f"removed; store is now at generation {store.generation}", err=True)


def _set_disabled(store_path: str, entries, hashes, disabled: bool, reason: str | None) -> None:
    store = open_store(store_path)
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


