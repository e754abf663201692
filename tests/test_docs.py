"""The documentation cannot rot: every example on the site (docs/*.md) and in the README
runs here, and the architecture page says what the import contract enforces.

Each page runs in a fresh folder holding a link to the repository's `examples/`, its fenced
blocks in order: ``python`` blocks in one namespace per page, ``sh`` blocks in bash with the
installed `hashmatch` first on PATH (a command may exit 1, hashmatch's "something matched";
any other failure fails the test), ``json`` and ``toml`` blocks parsed. ``text`` blocks are
usage synopses and sample output, ``mermaid`` blocks diagrams: shown, not run. A block that
cannot run here (it installs packages, or needs a cluster) says why in a
``<!-- docs-test: skip (why) -->`` line just above it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^(?:<!-- docs-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
                   re.M | re.S)
SHOWN_ONLY = {"text", "mermaid"}
# bash: a command's exit status 1 is hashmatch's "matched" and lets the block go on; a
# larger one (usage error, crash) stops it with that status.
SH_PRELUDE = "set -o pipefail\ntrap 'rc=$?; [ $rc -le 1 ] || exit $rc' ERR\n"


def _blocks(page: Path) -> list[tuple[int, str, str, str | None]]:
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m["lang"], m["code"], m["why"]) for m in FENCE.finditer(text)]


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_example_on_the_page_runs(page, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(work)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the installed hashmatch first
    env = {**os.environ, "HOME": str(tmp_path), "PATH": path}
    namespace: dict = {"__name__": "__docs__"}
    for line, lang, code, why in _blocks(page):
        where = f"{_name(page)}:{line}"
        if why is not None:
            assert why.strip(), f"{where}: a skipped block must say why"
            continue
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)
        elif lang == "sh":
            done = subprocess.run(["bash", "-c", SH_PRELUDE + code + "\nexit 0\n"], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=600)
            output = f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            assert done.returncode == 0, f"{where} exited {done.returncode}:\n{output}"
            assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr[-4000:]}"
        elif lang == "json":
            json.loads(code)
        elif lang == "toml":
            tomllib.loads(code)
        else:
            assert lang in SHOWN_ONLY, f"{where}: fence language {lang!r} is neither run nor marked as shown only"


def test_the_pages_have_examples_and_few_skips():
    blocks = [block for page in PAGES for block in _blocks(page)]
    run = [b for b in blocks if b[3] is None and b[1] not in SHOWN_ONLY]
    skipped = [b for b in blocks if b[3] is not None]
    assert len(run) >= 15 and len(skipped) <= len(run) // 3, (len(run), len(skipped))


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [" | ".join(part.strip() for part in layer.split("|")) for layer in layers]


def test_the_architecture_page_draws_the_layers_the_import_contract_enforces():
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("<!-- layers:", 1)[1].split("\n\n", 2)[1]
    rows = [re.split(r"(?<!\\)\|", row)[2] for row in table.splitlines()[2:]]  # the packages column
    drawn = [re.sub(r"\s*\\\|\s*", " | ", cell.strip().replace("`", "")) for cell in rows]
    assert drawn == _contract_layers()


def test_every_package_of_hashmatch_is_in_a_layer_and_says_what_it_owns():
    layered = {name for layer in _contract_layers() for name in layer.split(" | ")}
    packages = {p.parent.name for p in (ROOT / "hashmatch").glob("*/__init__.py")}
    modules = {p.stem for p in (ROOT / "hashmatch").glob("*.py")} - {"__init__"}
    assert packages | modules == layered
    for package in packages:
        init = (ROOT / "hashmatch" / package / "__init__.py").read_text()
        assert init.lstrip().startswith('"""') and "import" in init.split('"""')[1], package
