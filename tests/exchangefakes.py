"""Loopback fakes of the clearing houses' APIs, built to ../shared/EXCHANGES.md: each holds
a ground truth (records with timestamps, deletions) and answers as the real API would,
with a script of misbehaviours for the next requests."""
from __future__ import annotations

import base64
import http.server
import json
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

    def window(self, start_ts: int, end_ts: int) -> list[tuple]:
        """The records of [start, end), in a fixed shuffled order (not by timestamp), kept
        while the records do not change (a 1M-record fake pages without rescanning)."""
        key = (start_ts, end_ts, len(self.records), id(self.records))
        if getattr(self, "_window_key", None) != key:
            window = [r for r in self.records if start_ts <= r[0] < end_ts]
            random.Random(start_ts).shuffle(window)
            self._window_key, self._window = key, window
        return self._window

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
        if step == "bomb":  # billion laughs: entity expansion a plain parser would follow
            entities = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10 if i else "lol"}">' for i in range(9))
            return self._send(200, f'<?xml version="1.0"?><!DOCTYPE q [{entities}]><queryResult>&l8;</queryResult>'
                              .encode())
        query = parse_qs(urlsplit(self.path).query)
        start_ts, end_ts = _parse(query["from"][0]), _parse(query["to"][0])
        start = int(query.get("start", ["1"])[0])
        window = server.window(start_ts, end_ts)
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


class JsonFake(FakeServer):
    """A JSON API fake: `pages(handler, query)` answers a GET (status, document); POST
    `token` answers token-auth with `tokens` (TAT)."""

    def __init__(self):
        super().__init__(JsonHandler)
        self.records: list[dict] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.page_size = 100

    def answer(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> tuple[int, object]:
        raise NotImplementedError


class JsonHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _handle(self, method: str) -> None:
        server: JsonFake = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.requests.append((self.path, dict(self.headers)))
        step = server.script.pop(0) if server.script else "ok"
        if step in ("429", "500"):
            self.send_response(int(step))
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        parts = urlsplit(self.path)
        status, document = server.answer(method, parts.path, parse_qs(parts.query), dict(self.headers), body)
        data = b"{not json" if step == "malformed" else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")


class StopNciiFake(JsonFake):
    """records: {"lastModtimestamp", "hashValue", "hashStatus", "signalType", "CSPFeedbacks"}."""

    def answer(self, method, path, query, headers, body):
        if headers.get("x-functions-key") != "fk" or headers.get("Ocp-Apim-Subscription-Key") != "sk":
            return 401, {"error": "unauthorized"}
        start = int(query["startTimestamp"][0])
        offset = int(query.get("nextPageToken", ["0"])[0])
        matching = sorted((r for r in self.records if r["lastModtimestamp"] >= start),
                          key=lambda r: r["lastModtimestamp"])
        page = matching[offset:offset + self.page_size]
        more = offset + self.page_size < len(matching)
        newest = max((r["lastModtimestamp"] for r in matching), default=start)
        return 200, {"count": len(page), "nextSetTimestamp": newest + 1, "hasMoreRecords": more,
                     "nextPageToken": str(offset + self.page_size) if more else None, "hashRecords": page}


class TatFake(JsonFake):
    """records: {"id", "hash_digest", "algorithm", "ideology", "file_type", "deleted", "updated_on"}; the
    checkpoint is "updated_on,id" of a page's last record."""

    def answer(self, method, path, query, headers, body):
        if method == "POST":
            if parse_qs(body.decode()) != {"username": ["user"], "password": ["pw"]}:
                return 400, {"non_field_errors": ["bad credentials"]}
            self.tokens_issued += 1
            token = f"tok{self.tokens_issued}"
            self.valid_tokens.add(token)
            return 200, {"token": token}
        if headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return 401, {"detail": "expired"}
        ordered = sorted(self.records, key=lambda r: (r["updated_on"], r["id"]))
        if "after" in query:
            stamp, rid = query["after"][0].split(",")
            ordered = [r for r in ordered if (r["updated_on"], r["id"]) > (float(stamp), int(rid))]
        offset = int(query.get("offset", ["0"])[0])
        page = ordered[offset:offset + self.page_size]
        more = offset + self.page_size < len(ordered)
        after = f"&after={query['after'][0]}" if "after" in query else ""
        last = page[-1] if page else None
        return 200, {"count": len(ordered), "previous": None, "unknown_new_field": {"x": 1},
                     "next": f"/api/hash-list/v2/all?order=asc{after}&limit={self.page_size}&offset="
                             f"{offset + self.page_size}" if more else None,
                     "checkpoint": f"{last['updated_on']},{last['id']}" if last else (query.get("after") or [None])[0],
                     "results": [{**r, "created_on": "2024-01-01", "surprise": True} for r in page]}


class ThreatExchangeFake(JsonFake):
    """records: {"indicator", "type", "last_updated", "should_delete", "descriptors": {"data": [...]}}."""

    def answer(self, method, path, query, headers, body):
        if query.get("access_token") != ["app|secret"]:
            return 400, {"error": {"message": "Invalid OAuth access token"}}
        start, stop = int(query["start_time"][0]), int(query["stop_time"][0])
        offset = int(query.get("after", ["0"])[0])
        matching = [r for r in self.records if start <= r["last_updated"] < stop]
        page = matching[offset:offset + self.page_size]
        paging = {}
        if offset + self.page_size < len(matching):
            paging = {"next": f"{self.base}{path}?access_token=app|secret&start_time={start}&stop_time={stop}"
                              f"&after={offset + self.page_size}"}
        return 200, {"data": [{"id": str(i), **r} for i, r in enumerate(page)], "paging": paging}
