"""Summarise a pytest-benchmark JSON as the ratios the project reports.

    pytest benchmarks/ --benchmark-json=/tmp/bench.json -q
    python benchmarks/ratios.py /tmp/bench.json [--strict]

In each group the reference is the benchmark named ``test_peer_*`` (another library) or
``test_baseline_*`` (hashmatch in a reference configuration), and the subject is
``test_hashmatch_*``. The ratio is reference_time / hashmatch_time, so higher is better for
hashmatch in every group:

* peer groups: how many times faster hashmatch is than the peer;
* jpeg-decode-vs-pdq: hashmatch's decode+PDQ throughput as a fraction of Pillow's bare
  decode throughput;
* threads: the wall-clock speedup of threads=2 over threads=1.

Prints a markdown table (mean ratio, judged against the target, plus the median ratio as a
noise check). --strict exits 1 when a target is missed or a group is incomplete.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

# group -> (target ratio, what the ratio means)
TARGETS: dict[str, tuple[float, str]] = {
    "pdq-1024x768": (5.0, "pdqhash / hashmatch time"),
    "pdq-4032x3024": (5.0, "pdqhash / hashmatch time"),
    "jpeg-decode-vs-pdq": (0.5, "hash throughput / bare decode throughput"),
    "phash": (1.0, "imagehash / hashmatch time"),
    "dhash": (1.0, "imagehash / hashmatch time"),
    "ahash": (1.0, "imagehash / hashmatch time"),
    "imagehash-all-three": (1.0, "imagehash x3 / hashmatch time"),
    "threads": (1.7, "threads=1 / threads=2 time"),
    "scan-workers": (1.7, "scan with 1 worker / scan with 2 workers time"),
    "scan-vs-hashing": (0.8, "scan throughput / bare hashing throughput (2 workers vs 2 threads)"),
    "dask-vs-local-1w": (0.85, "local pool time / Dask LocalCluster time, 1 worker"),
    "dask-vs-local-2w": (0.85, "local pool time / Dask LocalCluster time, 2 workers"),
}
REFERENCE_PREFIXES = ("test_peer_", "test_baseline_")
SUBJECT_PREFIX = "test_hashmatch_"


def _role(name: str) -> str | None:
    if name.startswith(SUBJECT_PREFIX):
        return "hashmatch"
    if name.startswith(REFERENCE_PREFIXES):
        return "reference"
    return None


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def summarise(data: dict) -> tuple[list[str], bool]:
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for bench in data.get("benchmarks", []):
        role = _role(bench["name"])
        if role is not None:
            groups[bench.get("group") or "(none)"][role].append(bench)

    ordered = [g for g in TARGETS if g in groups] + sorted(g for g in groups if g not in TARGETS)
    lines = [
        "| group | reference | ref mean | hashmatch | hm mean | ratio (mean) | ratio (median) | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    all_ok = True
    for group in ordered:
        refs, subjects = groups[group]["reference"], groups[group]["hashmatch"]
        target, _ = TARGETS.get(group, (None, ""))
        if len(refs) != 1 or len(subjects) != 1:
            lines.append(f"| {group} | {len(refs)} reference(s) | | {len(subjects)} hashmatch | | | | "
                         f"{'' if target is None else f'>= {target:g}'} | incomplete |")
            all_ok = False
            continue
        ref, hm = refs[0], subjects[0]
        ratio_mean = ref["stats"]["mean"] / hm["stats"]["mean"]
        ratio_median = ref["stats"]["median"] / hm["stats"]["median"]
        if target is None:
            verdict, target_txt = "-", "-"
        else:
            ok = ratio_mean >= target
            all_ok &= ok
            verdict, target_txt = ("yes" if ok else "**NO**"), f">= {target:g}"
        lines.append(
            f"| {group} | {ref['name']} | {_fmt_time(ref['stats']['mean'])} | {hm['name']} | "
            f"{_fmt_time(hm['stats']['mean'])} | {ratio_mean:.2f} | {ratio_median:.2f} | {target_txt} | {verdict} |"
        )
    for group, (target, _meaning) in TARGETS.items():
        if group not in groups:
            lines.append(f"| {group} | (not in this run) | | | | | | >= {target:g} | - |")
    return lines, all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="output of pytest --benchmark-json=FILE")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    with open(args.json_file, encoding="utf-8") as fh:
        data = json.load(fh)

    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {})
    print(f"Run {data.get('datetime', '?')} on {cpu.get('brand_raw', machine.get('processor', '?'))}, "
          f"{cpu.get('count', '?')} logical CPUs, Python {machine.get('python_version', '?')}")
    print()
    lines, all_ok = summarise(data)
    print("\n".join(lines))
    print()
    print("Ratio = reference time / hashmatch time (higher is better for hashmatch):")
    for group, (target, meaning) in TARGETS.items():
        print(f"- {group}: {meaning}, target >= {target:g}")
    return 1 if (args.strict and not all_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
