"""`hashmatch exchange`: sources that keep a store's lists current (exchanges/)."""
from __future__ import annotations

import json

import click

from hashmatch.cli.common import STORE_OPTION, SetupError, open_store, stdout
from hashmatch.cli.terminal import safe
from hashmatch.errors import ConfigurationError, HashmatchError


@click.group("exchange")
def exchange_group() -> None:
    """Sources that keep lists current: a clearing house's API, a URL or a file, fetched
    incrementally (additions and deletions) into one list of the store each."""


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key] = value
    return options


@exchange_group.command("add")
@click.argument("name")
@click.option("--type", "kind", required=True, help="The exchange type: url, file (and installed plug-ins).")
@click.option("--list", "list_name", required=True, help="The list of the store this source feeds.")
@STORE_OPTION
@click.option("--url", help="The type's base URL (or, for url, the list's URL; for file, its path).")
@click.option("--credentials", type=click.Path(dir_okay=False),
              help="A file (0600, yours) holding the source's secret; the store records only its path.")
@click.option("--category", help="The category of the list's entries [default: the type's].")
@click.option("--format", "list_format", help="The list format of a url or file source [default: detected].")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="A type's option; repeatable.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False, exists=True),
              help="A CA bundle to trust besides the system's (TLS is always verified).")
def add_command(name, kind, list_name, store_path, url, credentials, category, list_format, options,
                ca_bundle) -> None:
    """Record source NAME in the store (it is fetched by `hashmatch exchange fetch`)."""
    from hashmatch.exchanges.fetcher import add_source
    from hashmatch.store.store import Store

    try:
        store = Store.open_or_create(store_path)
        store = add_source(store, name, type=kind, list_name=list_name, url=url, credentials=credentials,
                           category=category, format=list_format, options=_options(options), ca_bundle=ca_bundle)
    except HashmatchError as exc:
        raise SetupError(str(exc)) from exc
    click.echo(f"source {safe(name)} added (generation {store.generation})", err=True)


@exchange_group.command("list")
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True)
def list_command(store_path, as_json) -> None:
    """The store's sources: type, list, last fetch."""
    sources = open_store(store_path).sources
    if as_json:
        stdout().write(json.dumps(sources, indent=1, sort_keys=True) + "\n")
        return
    for name, spec in sorted(sources.items()):
        fields = (name, spec["type"], spec["list"], spec.get("last_fetch") or "never fetched")
        click.echo("\t".join(safe(str(f)) for f in fields))


@exchange_group.command("show")
@click.argument("name")
@STORE_OPTION
def show_command(name, store_path) -> None:
    """One source's settings and checkpoint (never a secret: credentials by their path)."""
    spec = open_store(store_path).sources.get(name)
    if spec is None:
        raise SetupError(f"no exchange source named {name!r}")
    stdout().write(json.dumps({"name": name, **spec}, indent=1, sort_keys=True) + "\n")


@exchange_group.command("remove")
@click.argument("name")
@STORE_OPTION
@click.option("--drop-list", is_flag=True, help="Also remove the list the source fed [default: keep it].")
def remove_command(name, store_path, drop_list) -> None:
    """Forget source NAME (its list stays, unless --drop-list)."""
    from hashmatch.exchanges.fetcher import remove_source

    try:
        remove_source(open_store(store_path), name, drop_list=drop_list)
    except (ConfigurationError, HashmatchError) as exc:
        raise SetupError(str(exc)) from exc


@exchange_group.command("fetch")
@click.argument("names", nargs=-1)
@STORE_OPTION
@click.option("--full", is_flag=True, help="Fetch from the start, not from each source's checkpoint.")
def fetch_command(names, store_path, full) -> None:
    """Fetch sources (default: all) from their checkpoints: one JSON summary line each.
    Exit status 0 when every source succeeded, 2 otherwise (each source independent)."""
    from hashmatch.exchanges.fetcher import fetch

    store = open_store(store_path)
    unknown = [n for n in names if n not in store.sources]
    if unknown:
        raise SetupError(f"no exchange source named {', '.join(map(repr, unknown))}")
    failed = False
    for summary in fetch(store_path, list(names) or None, full=full):
        stdout().write(json.dumps(summary.to_dict(), sort_keys=True) + "\n")
        if not summary.ok:
            failed = True
            click.echo(safe(f"{summary.source}: {summary.error}"), err=True)
    raise SystemExit(2 if failed else 0)
