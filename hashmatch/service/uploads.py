"""Request bodies under the service's caps, with bounded memory: a body is read as it
arrives, held in memory up to a small bound and spooled beyond it to a private file
(0600, in the service's spool folder inside the store folder, never a shared /tmp), so
the bytes a server holds at once are at most (requests admitted) x (the in-memory bound)
whatever the clients send. A multipart upload is parsed as it streams (python-multipart):
only its `file` part is kept. The spool folder is swept of files a killed server left.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

SPOOL_PREFIX = ".hashmatch-upload-"
MAX_PARTS = 16  # parts of a multipart upload (one is the file)
MAX_PART_HEADERS = 16 << 10  # bytes of one part's headers


class BodyError(Exception):
    """A body the service refuses: `status` 413 (over the cap) or 400 (malformed)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def prepare_spool(folder: str | os.PathLike) -> Path:
    """The spool folder (0700), emptied of the upload files an earlier, killed server left."""
    path = Path(folder)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    for stale in path.glob(SPOOL_PREFIX + "*"):
        with contextlib.suppress(OSError):
            stale.unlink()
    return path


class Body:
    """Bytes written in order: kept in memory up to `in_memory` bytes, then in a spool file."""

    def __init__(self, spool: Path, in_memory: int):
        self.spool, self.in_memory = spool, in_memory
        self.size = 0
        self._chunks: list[bytes] = []
        self._file: Any = None
        self.path: str | None = None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is None and self.size > self.in_memory:
            fd, self.path = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=".tmp", dir=self.spool)  # 0600
            self._file = os.fdopen(fd, "wb")
            for held in self._chunks:
                self._file.write(held)
            self._chunks = []
        if self._file is not None:
            self._file.write(chunk)
        else:
            self._chunks.append(chunk)

    def source(self) -> bytes | str:
        """What to hash or read: the bytes, or the spool file's path."""
        if self._file is not None:
            self._file.close()
            assert self.path is not None
            return self.path
        return b"".join(self._chunks)

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self._chunks = []


async def read_body(request: Request, cap: int, spool: Path, in_memory: int, timeout: float) -> Body:
    """The raw body, refused beyond `cap` bytes (declared or read) or `timeout` seconds."""
    _check_declared(request, cap)
    body = Body(spool, in_memory)
    try:
        with _deadline(timeout):
            async for chunk in request.stream():
                if body.size + len(chunk) > cap:
                    raise BodyError(413, "too_large", f"the body exceeds the cap of {cap} bytes")
                body.write(chunk)
    except BaseException:
        body.close()
        raise
    return body


@contextlib.contextmanager
def _deadline(timeout: float) -> Iterator[None]:
    """A body not received within `timeout` seconds is a 408 (a client trickling bytes
    must not hold a connection and a queue slot for as long as it likes)."""
    try:
        with anyio.fail_after(timeout):
            yield
    except TimeoutError:
        raise BodyError(408, "timeout", f"the body was not received within {timeout:g} s") from None


async def read_upload(request: Request, cap: int, spool: Path, in_memory: int,
                      timeout: float) -> tuple[Body, str]:
    """The upload: the raw body, or the multipart part named `file`; and a name for the row."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        body = await read_body(request, cap, spool, in_memory, timeout)
        if not body.size:
            body.close()
            raise BodyError(400, "bad_request", "the upload is the request body (or the multipart part 'file')")
        return body, "upload"
    boundary = params.get(b"boundary")
    if not boundary:
        raise BodyError(400, "bad_request", "a multipart body needs a boundary")
    _check_declared(request, cap)
    upload = _MultipartUpload(spool, in_memory)
    parser = MultipartParser(boundary, upload.callbacks())  # type: ignore[arg-type]  # a TypedDict of callbacks
    received = 0
    try:
        with _deadline(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > cap:
                    raise BodyError(413, "too_large", f"the body exceeds the cap of {cap} bytes")
                try:
                    parser.write(chunk)
                except BodyError:
                    raise
                except Exception as exc:  # python-multipart's parse errors
                    raise BodyError(400, "bad_request", f"malformed multipart body: {exc}") from None
        try:
            parser.finalize()
        except Exception as exc:  # noqa: BLE001 - a cut-short body
            raise BodyError(400, "bad_request", f"malformed multipart body: {exc}") from None
        if upload.file is None or not upload.complete:
            raise BodyError(400, "bad_request", "the multipart body has no complete part named 'file'")
    except BaseException:
        upload.close()
        raise
    return upload.file, upload.filename


def _check_declared(request: Request, cap: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyError(413, "too_large", f"the body of {declared} bytes exceeds the cap of {cap}")


class _MultipartUpload:
    """Collects the part named `file` of a streaming multipart body into a Body."""

    def __init__(self, spool: Path, in_memory: int):
        self.spool, self.in_memory = spool, in_memory
        self.file: Body | None = None
        self.filename = "upload"
        self.complete = False
        self.parts = 0
        self._header_field = b""
        self._header_value = b""
        self._header_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._current: Body | None = None

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end,
                "on_header_field": self._field, "on_header_value": self._value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done}

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BodyError(400, "bad_request", f"a multipart upload has at most {MAX_PARTS} parts")
        self._headers, self._header_bytes, self._current = {}, 0, None

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._header_value += data[start:end]

    def _grow(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_PART_HEADERS:
            raise BodyError(400, "bad_request", "a multipart part's headers are too long")

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and self.file is None:
            self.file = self._current = Body(self.spool, self.in_memory)
            name = options.get(b"filename")
            if name:
                self.filename = os.path.basename(name.decode("utf-8", "replace")) or "upload"

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.write(data[start:end])

    def _end(self) -> None:
        if self._current is not None:
            self.complete = True
        self._current = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
