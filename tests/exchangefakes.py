"""Loopback fakes of the clearing houses' APIs, built to ../shared/EXCHANGES.md: each holds
a ground truth (records with timestamps, deletions) and answers as the real API would,
with a script of misbehaviours for the next requests."""
from __future__ import annotations

import base64
import http.server
import random
import threading
from urllib.parse import parse_qs, urlsplit

NCMEC_NS = "https://hashsharing.ncmec.org/hashsharing/v2"


def _stamp(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _parse(stamp: str) -> int:
    import calendar
    import time

    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.script: list[str] = []
        self.requests: list[tuple[str, dict]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class NcmecFake(FakeServer):
    """records: (timestamp, member, id, kind 'image'|'video'|'deletedImage'|..., fingerprints dict, classification)."""

    PAGE = 1000

    def __init__(self, user: str = "u", password: str = "p"):
        super().__init__(NcmecHandler)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.records: list[tuple] = []

    def truth(self) -> dict[str, dict[str, str]]:
        """MEMBER-ID -> {algorithm: hash} after every record in timestamp order (the last word wins)."""
        state: dict[str, dict[str, str]] = {}
        for _ts, member, rid, kind, prints, _ in sorted(self.records, key=lambda r: r[0]):
            key = f"{member}-{rid}"
            if kind.startswith("deleted"):
                state.pop(key, None)
            else:
                state[key] = dict(prints)
        return state


class NcmecHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        server: NcmecFake = self.server  # type: ignore[assignment]
        server.requests.append((self.path, dict(self.headers)))
        step = server.script.pop(0) if server.script else "ok"
        if self.headers.get("Authorization") != server.auth:
            return self._send(401, b"")
        if step == "500":
            return self._send(500, b"")
        if step == "malformed":
            return self._send(200, b"<queryResult><images><image><member")
        query = parse_qs(urlsplit(self.path).query)
        start_ts, end_ts = _parse(query["from"][0]), _parse(query["to"][0])
        start = int(query.get("start", ["1"])[0])
        window = [r for r in server.records if start_ts <= r[0] < end_ts]
        random.Random(start_ts).shuffle(window)  # not in timestamp order within a window
        page = window[start - 1:start - 1 + server.PAGE]
        body = [f'<queryResult xmlns="{NCMEC_NS}"><images count="{len(window)}">']
        for ts, member, rid, kind, prints, classification in page:
            body.append(f'<{kind}><member id="{member}">Member {member}</member><timestamp>{_stamp(ts)}</timestamp>'
                        f"<id>{rid}</id>")
            if not kind.startswith("deleted"):
                if classification:
                    body.append(f"<classification>{classification}</classification>")
                body.append("<fingerprints>" + "".join(f"<{k}>{v}</{k}>" for k, v in prints.items())
                            + "</fingerprints><feedback/>")
            body.append(f"</{kind}>")
        body.append("</images><videos/>")
        if start - 1 + server.PAGE < len(window):
            nxt = (f"/v2/entries?from={query['from'][0]}&amp;to={query['to'][0]}&amp;start={start + server.PAGE}"
                   f"&amp;size={server.PAGE}")
            body.append(f"<paging><next>{nxt}</next></paging>")
        body.append("</queryResult>")
        self._send(200, "".join(body).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        self.wfile.write(body)
