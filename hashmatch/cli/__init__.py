"""The `hashmatch` command line: click commands only, one module per command (group);
each parses its options, calls the API, prints. common.py holds what they share.

Commands are imported when they run (LazyGroup), so `hashmatch --help` and a command
that needs little start without loading the whole package; the command list in --help
comes from COMMANDS below, not from importing every module.

The top layer: may import every package of hashmatch; nothing imports it.
"""
from __future__ import annotations

import warnings
from importlib import import_module
from typing import Any

import click

from hashmatch.config import __version__

#: name -> (module, attribute, one-line help shown by `hashmatch --help`).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "hash": ("hash", "hash_command", "Hash image and video files, and every file under folders (recursively)."),
    "list": ("lists", "list_group", "Import, export, inspect and change the hash lists of a store."),
    "lookup": ("lookup", "lookup", "Look hashes up: HASH arguments, or one per line on stdin."),
    "scan": ("scan", "scan_command", "Scan files and folders (recursively) against a store or list files."),
    "exchange": ("exchange", "exchange_group", "Sources that keep lists current: add them, fetch them incrementally."),
    "decide": ("accountability", "decide_command", "Record what was done with matches (a scan report's rows)."),
    "dsa": ("accountability", "dsa_group", "DSA statements of reasons, their submission, transparency counts."),
    "serve": ("serve", "serve_command", "Serve matching over HTTP (hashmatch[serve])."),
    "token": ("serve", "token_group", "Bearer tokens of hashmatch serve (the file keeps only their hashes)."),
    "evaluate": ("tools", "evaluate_command", "Measure how many transformed copies each hash setting still finds."),
    "bench": ("tools", "bench_command", "Measure throughput on this machine."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        if module in ("hash", "scan", "tools"):
            # Decoders refuse oversized images with their own typed error; Pillow's warning
            # about the same image would only be noise between the records.
            from PIL import Image

            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        command: click.Command = getattr(import_module(f".{module}", __name__), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, _, text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hashmatch")
def main() -> None:
    """Find known images and videos by perceptual hash (PDQ, pHash, dHash, aHash, vPDQ) and
    exact hash."""


def __getattr__(name: str) -> Any:
    if name == "SetupError":  # kept importable from here, as before
        from hashmatch.cli.common import SetupError

        return SetupError
    raise AttributeError(name)


__all__ = ["COMMANDS", "LazyGroup", "main"]
