"""The service audit's four measurements (issue 24), against a real `hashmatch serve` on
a loopback port, as deployed:

1. server RSS under 16 concurrent maximum-size uploads (60 MiB) against a queue of 8;
2. time to shut down (SIGTERM) with two poison videos in flight;
3. audit lines after a 10-second outage of the audit folder with lookups running,
   against the decisions answered;
4. how long a removed token keeps working in a running service.

    python benchmarks/measure_service_hardening.py [--only rss,shutdown,audit,tokens] [--json FILE]

Uses only options every version of the service has (so it also measures an older checkout:
run it with that checkout's `hashmatch` first on PYTHONPATH). Loopback only, bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' server helpers
from servicehelp import PeakRSS, Server, _cli  # noqa: E402


def _store(root: Path) -> Path:
    listed = root / "known.txt"
    listed.write_text("md5 " + "1" * 32 + "\n")
    store = root / "store"
    assert _cli("list", "import", str(listed), "-s", str(store)).returncode == 0
    return store


def measure_rss(root: Path) -> dict:
    store = _store(root)
    server = Server(store, None, "--queue", "8", "--max-body", str(64 << 20))
    try:
        server.wait("/readyz")
        body = os.urandom(1 << 20) * 60
        answers: list[tuple[int, float]] = []
        started = time.monotonic()

        def upload() -> None:
            try:
                got = httpx.post(server.url + "/v1/match", content=body, timeout=300)
                answers.append((got.status_code, time.monotonic() - started))
            except httpx.TransportError as exc:
                answers.append((0, time.monotonic() - started))
                print("upload:", type(exc).__name__, file=sys.stderr)

        with PeakRSS(server.process.pid) as memory:
            senders = [threading.Thread(target=upload) for _ in range(16)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
        statuses = sorted(code for code, _ in answers)
        return {"uploads": 16, "upload_mib": 60, "queue": 8, "rss_before_mib": round(memory.before / 2**20),
                "rss_peak_mib": round(memory.peak / 2**20), "rss_growth_mib": round(memory.growth_mib),
                "statuses": {str(c): statuses.count(c) for c in sorted(set(statuses))}}
    finally:
        server.stop()


POISON: Path | None = None  # --poison FILE: the video to send (an older checkout cannot make one)


def measure_shutdown(root: Path) -> dict:
    if POISON is not None:
        video = POISON.read_bytes()
    else:
        from hashmatch.evaluation.synthetic_video import repeated_frames_video

        video = repeated_frames_video(1200)  # 20 min declared; ~8 s to decode here
    store = _store(root)
    server = Server(store, None, "-a", "vpdq,md5", "--timeout", "600")
    try:
        server.wait("/readyz")
        for _ in range(2):
            threading.Thread(target=lambda: _quietly(httpx.post, server.url + "/v1/match", content=video,
                                                     timeout=600), daemon=True).start()
        time.sleep(2.0)
        children = [p.pid for p in psutil.Process(server.process.pid).children(recursive=True)]
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=120)
            took = round(time.monotonic() - started, 2)
        except subprocess.TimeoutExpired:
            took = None
        exited = time.monotonic()
        alive = _running(children)
        while alive and time.monotonic() - exited < 10:
            time.sleep(0.05)
            alive = _running(children)
        gone_after = None if alive else round(time.monotonic() - exited, 2)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        return {"shutdown_s": took, "workers_gone_after_exit_s": gone_after, "workers_left_after_10_s": len(alive)}
    finally:
        server.stop()


def _running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _quietly(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except httpx.TransportError:
        pass


def measure_audit(root: Path) -> dict:
    store = _store(root)
    folder = root / "audit"
    folder.mkdir()
    log = folder / "audit.jsonl"
    server = Server(store, None, "--audit-log", str(log))
    try:
        server.wait("/readyz")
        answered, refused, errors = [], 0, 0
        stop = threading.Event()

        def lookups() -> None:
            nonlocal refused, errors
            while not stop.is_set():
                try:
                    got = httpx.post(server.url + "/v1/lookup", json={"hashes": {"md5": "1" * 32}}, timeout=10)
                except httpx.TransportError:
                    errors += 1
                    continue
                if got.status_code == 200:
                    answered.append(got.json()["request_id"])
                else:
                    refused += 1

        runner = threading.Thread(target=lookups)
        runner.start()
        time.sleep(1)
        os.rename(folder, root / "audit-away")
        time.sleep(10)
        os.rename(root / "audit-away", folder)
        time.sleep(3)
        stop.set()
        runner.join()
        time.sleep(2)
        written = {json.loads(line).get("request_id") for line in log.read_text().splitlines()}
        return {"outage_s": 10, "decisions_answered": len(answered), "refused_503": refused,
                "audit_lines_of_answered": sum(1 for r in answered if r in written),
                "answered_without_audit_line": sum(1 for r in answered if r not in written)}
    finally:
        server.stop()


def measure_tokens(root: Path) -> dict:
    store = _store(root)
    tokens = root / "tokens.json"
    secret = _cli("token", "add", "client", "--tokens", str(tokens)).stdout.strip()
    _cli("token", "add", "other", "--tokens", str(tokens))
    server = Server(store, tokens)
    try:
        server.wait("/readyz")
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(server.url + "/v1/lists", headers=headers).status_code == 200
        _cli("token", "remove", "client", "--tokens", str(tokens))
        removed = time.monotonic()
        while httpx.get(server.url + "/v1/lists", headers=headers).status_code == 200:
            if time.monotonic() - removed > 30:
                return {"removal_latency_s": None, "note": "the removed token still worked after 30 s"}
            time.sleep(0.02)
        return {"removal_latency_s": round(time.monotonic() - removed, 2)}
    finally:
        server.stop()


MEASURES = {"rss": measure_rss, "shutdown": measure_shutdown, "audit": measure_audit, "tokens": measure_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(MEASURES))
    parser.add_argument("--json")
    parser.add_argument("--poison", type=Path, help="the poison video (default: made by hashmatch.evaluation)")
    args = parser.parse_args()
    global POISON
    POISON = args.poison
    results = {}
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory(prefix="hashmatch-measure-") as folder:
            results[name] = MEASURES[name](Path(folder))
            print(name, json.dumps(results[name]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
