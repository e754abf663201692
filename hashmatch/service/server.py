"""Running the service's app under uvicorn with the limits a server facing untrusted
clients needs beyond uvicorn's own: a client gets `header_timeout` seconds from the first
byte of a request (or from connecting) to the end of its headers, after which the
connection is closed (uvicorn has no such limit: six clients trickling a header byte a
second held their connections for as long as they liked). Bodies have their own limit in
uploads.py (`body_timeout`, a 408), idle keep-alive connections uvicorn's
`timeout_keep_alive`, and shutdown `timeout_graceful_shutdown`.
"""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def protocol_with_header_timeout(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers take longer
    than `header_timeout` seconds."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()

    return HeaderTimeoutProtocol
