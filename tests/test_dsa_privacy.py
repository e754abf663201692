"""No personal data and no hash value leaves the accountability path: a scan of files with
telling names, then decide, statements, submit (to the loopback fake) and report, as
processes; every file written, everything printed and everything the fake database stored
is searched for the paths, file names, hash values (every algorithm's) and the token."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from dsafake import TransparencyDbFake
from servicehelp import _cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "tdb-secret-token-for-the-privacy-test"


def test_nothing_personal_or_hashed_in_any_output(tmp_path: Path) -> None:
    files = tmp_path / "Jane Doe private uploads"
    files.mkdir()
    for i, original in enumerate(sorted((EXAMPLES / "images" / "copies").glob("*.jpg"))[:4]):
        shutil.copy(original, files / f"jane.doe@example.org-{i}.jpg")
    store = tmp_path / "store"
    assert _cli("list", "import", str(EXAMPLES / "lists" / "originals-pdq.txt"), "-s", str(store), "--category",
                "terrorism").returncode == 0
    outputs = []

    def run(*args: str, ok: tuple[int, ...] = (0,)) -> None:
        done = _cli(*args)
        assert done.returncode in ok, done.stderr
        outputs.extend([done.stdout, done.stderr])

    scanned = _cli("scan", str(files), "-s", str(store), "--report", str(tmp_path / "scan.jsonl"), "-a",
                   "pdq,md5,sha1", "--quiet")  # the analyst's own report and audit line name the files
    assert scanned.returncode == 1, scanned.stderr
    rows = [json.loads(line) for line in (tmp_path / "scan.jsonl").read_text().splitlines()][:-1]
    assert sum(r["status"] == "match" for r in rows) >= 2
    secrets = {TOKEN, str(files), "Jane Doe", "jane.doe@example.org"}
    for r in rows:
        secrets.update([r["path"], Path(r["path"]).name, r["sha256"], *r["hashes"].values()])
        secrets.add(hashlib.md5(Path(r["path"]).read_bytes()).hexdigest())
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    fake = TransparencyDbFake(token=TOKEN)
    try:
        run("decide", "--report", str(tmp_path / "scan.jsonl"), "-s", str(store), "--action", "removed",
            "--automated", "fully", "--puid-prefix", "p-")
        run("dsa", "statements", "--decisions", str(store / "decisions.jsonl"), "-o", str(tmp_path / "s.jsonl"))
        run("dsa", "submit", str(tmp_path / "s.jsonl"), "--url", fake.base, "--token-file", str(token))
        run("dsa", "report", "--decisions", str(store / "decisions.jsonl"), "--period", "2000-01-01/2099-12-31",
            "-o", str(tmp_path / "report"), "--format", "text")
        stored = json.dumps(list(fake.stored.values()))
        assert fake.stored_count >= 2
    finally:
        fake.close()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".csv", ".txt", ".state")
               and p.name not in ("scan.jsonl", "audit.jsonl") and "Jane" not in str(p.parent)]
    written += [store / "decisions.jsonl"]
    assert {p.name for p in written} >= {"s.jsonl", "s.jsonl.state", "decisions.jsonl", "summary.txt",
                                         "own-initiative-illegal-content.csv", "automated-means.csv",
                                         "tco-article-7.csv"}
    texts = [p.read_text(errors="replace") for p in written] + outputs + [stored]
    for secret in secrets:
        for text in texts:
            assert secret not in text, secret
