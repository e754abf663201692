"""The `hashmatch` command line: click commands only, one module per command (group);
each parses its options, calls the API, prints. common.py holds what they share."""
from __future__ import annotations

import warnings

import click
from PIL import Image

from .. import __version__
from .common import SetupError
from .hash import hash_command
from .lists import list_group
from .lookup import lookup
from .scan import scan_command
from .serve import serve_command, token_group
from .tools import bench_command, evaluate_command

# The CLI refuses oversized images with its own typed error; Pillow's warning about the
# same image would only be noise between the records.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hashmatch")
def main() -> None:
    """Find known images and videos by perceptual hash (PDQ, pHash, dHash, aHash, vPDQ) and
    exact hash."""


for command in (hash_command, list_group, lookup, scan_command, evaluate_command, bench_command, serve_command,
                token_group):
    main.add_command(command)

__all__ = ["SetupError", "main"]
