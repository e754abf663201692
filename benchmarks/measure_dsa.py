"""Issue 26's measurements, on the public path (the CLI as a process):

1. `hashmatch dsa statements` over a decision log of N decisions (default 1,000,000,
   recorded through DecisionLog.append in chunks, varied categories, actions, automation
   and reviews): statements built and validated per second, and the process's peak RSS;
2. `hashmatch dsa report` over the same log: decisions counted per second, peak RSS;
3. `hashmatch dsa submit` of M statements (default 20,000) to the loopback fake
   Transparency Database (tests/dsafake.py, in this process): statements per second.

    python benchmarks/measure_dsa.py [--decisions 1000000] [--submit 20000] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fakes and helpers
from accountabilityhelp import fill  # noqa: E402
from dsafake import TransparencyDbFake  # noqa: E402
from servicehelp import PeakRSS  # noqa: E402

from hashmatch.accountability.decisions import DecisionLog  # noqa: E402


def _timed(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak RSS MiB, result) of the CLI as a process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "hashmatch.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd="/")
    with PeakRSS(process.pid) as rss:
        out, err = process.communicate()
    elapsed = time.perf_counter() - started
    return elapsed, rss.peak / 2**20, subprocess.CompletedProcess(args, process.returncode, out, err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--submit", type=int, default=20_000)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dsa-measure-"))
    log = DecisionLog(root / "decisions.jsonl")
    started = time.perf_counter()
    chunk = 50_000
    for start in range(0, args.decisions, chunk):
        # Reviews in the first chunk only: each is its own fsync'd line, as a reviewer's would be.
        fill(log, min(chunk, args.decisions - start), seed=start, prefix=f"c{start}",
             review_every=0 if start else 7)
    recorded_s = time.perf_counter() - started
    size_mib = os.path.getsize(log.path) / 2**20
    print(f"recorded {args.decisions:,} decisions ({size_mib:.0f} MiB) in {recorded_s:.1f} s "
          f"({args.decisions / recorded_s:,.0f}/s, one fsync per {chunk:,})")

    seconds, peak, done = _timed(["dsa", "statements", "--decisions", str(log.path), "-o",
                                  str(root / "statements.jsonl")])
    assert done.returncode == 0, done.stderr
    statements_rate = args.decisions / seconds
    print(f"dsa statements: {seconds:.1f} s, {statements_rate:,.0f} statements/s, peak RSS {peak:.0f} MiB")

    report_s, report_peak, done = _timed(["dsa", "report", "--decisions", str(log.path), "--period",
                                          "2026-01-01/2026-12-31", "-o", str(root / "report")])
    assert done.returncode == 0, done.stderr
    print(f"dsa report: {report_s:.1f} s, {args.decisions / report_s:,.0f} decisions/s, peak RSS "
          f"{report_peak:.0f} MiB")

    subset = root / "submit.jsonl"
    with open(root / "statements.jsonl", "rb") as source, open(subset, "wb") as target:
        target.writelines(islice(source, args.submit))
    token = root / "token"
    token.write_text("measure-token")
    token.chmod(0o600)
    fake = TransparencyDbFake(token="measure-token")
    try:
        submit_s, submit_peak, done = _timed(["dsa", "submit", str(subset), "--url", fake.base, "--token-file",
                                              str(token), "--json"])
        assert done.returncode == 0 and fake.stored_count == args.submit, done.stderr
    finally:
        fake.close()
    print(f"dsa submit: {args.submit:,} statements in {submit_s:.1f} s ({args.submit / submit_s:,.0f}/s, "
          f"{args.submit // 100} calls of 100), peak RSS {submit_peak:.0f} MiB")
    figures = {"decisions": args.decisions, "log_mib": round(size_mib), "statements_s": round(seconds, 1),
               "statements_per_s": round(statements_rate), "statements_peak_rss_mib": round(peak),
               "report_s": round(report_s, 1), "report_peak_rss_mib": round(report_peak),
               "submitted": args.submit, "submit_s": round(submit_s, 1),
               "submit_per_s": round(args.submit / submit_s)}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
