"""The routes of ``imgapi``, as a plain ASGI application.

    GET  /ping                          {"ping": "pong", "version", "imgapi": true}
    GET  /images                        manifests (query: the filters of ``query``)
    POST /images                        create an unactivated image from a manifest  (token)
    GET  /images/:uuid                  one manifest
    POST /images/:uuid?action=activate  make an image active                         (token)
    GET  /images/:uuid/file             the file: Content-Length, Content-MD5, Range
    PUT  /images/:uuid/file             upload the file (?sha1, ?size, ?compression)  (token)

HEAD works wherever GET does. Reads are anonymous; writes need ``Authorization: Bearer
<token>`` with the token of the server's configuration (no token configured: no writes).
Errors are ``{"code", "message"[, "errors"]}`` with IMGAPI's codes and statuses. Each request
is logged as one line: method, path, the Range asked for, status and bytes sent.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from liveforge.img.server.errors import ApiError
from liveforge.img.server.faults import Faults
from liveforge.img.server.images import ImageDir, check_compression
from liveforge.img.server.query import parse, select

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CHUNK = 1 << 20
BODY_MAX = 1 << 20  # a posted manifest
RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)\Z")
ROUTE_RE = re.compile(r"/images/([^/]+)(/file)?\Z")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("liveforge")
    except PackageNotFoundError:
        return "0"


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @classmethod
    def of(cls, scope: Scope) -> Request:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                               keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        return cls(scope["method"], scope["path"], query, headers)


class Responder:
    """The response side of one request: tracks whether it started and what was sent."""

    def __init__(self, send: Send):
        self.send = send
        self.status = 0
        self.sent = 0

    async def start(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})

    async def body(self, data: bytes, more: bool = False) -> None:
        self.sent += len(data)
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, value: Any, head: bool = False,
                   extra: dict[str, str] | None = None) -> None:
        data = (json.dumps(value, indent=2) + "\n").encode()
        await self.start(status, {"content-type": "application/json",
                                  "content-length": str(len(data)), **(extra or {})})
        await self.body(b"" if head else data)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes a Range header asks for; None to send the whole file (no header,
    or one this server does not do: several ranges, other units). Unsatisfiable → 416."""
    if header is None:
        return None
    m = RANGE_RE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # the last N bytes
        count = int(m.group(2))
        if count == 0:
            raise ApiError("RequestedRangeNotSatisfiable", f"range {header} is empty")
        return max(0, size - count), size - 1
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ApiError("RequestedRangeNotSatisfiable",
                       f"range {header} is outside the file's {size} bytes")
    return first, last


class ImgapiApp:
    """The ASGI application over an :class:`ImageDir`."""

    def __init__(self, images: ImageDir, token: str | None, faults: Faults | None = None,
                 log: Callable[[str], None] = print):
        self.images = images
        self.token = token
        self.faults = faults or Faults()
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request.of(scope)
        out = Responder(send)
        note = ""
        try:
            if self.faults.next_request():
                raise ApiError("InternalError", "injected fault: error_first")
            note = await self.route(request, receive, out)
        except ApiError as exc:
            if out.status:
                raise
            extra = {"content-range": f"bytes */{self.images.file(self.uuid(request))[1]}"} \
                if exc.status == 416 else {}
            extra.update({"www-authenticate": "Bearer"} if exc.status == 401 else {})
            await out.json(exc.status, exc.body(), request.method == "HEAD", extra)
        except Exception:
            self.log(traceback.format_exc().rstrip())
            if not out.status:
                await out.json(500, ApiError("InternalError", "internal error").body())
        finally:
            where = request.path + (f"?{scope['query_string'].decode()}"
                                    if scope.get("query_string") else "")
            wanted = request.headers.get("range")
            self.log(f"{request.method} {where}" + (f" range={wanted}" if wanted else "")
                     + f" -> {out.status} {out.sent}{note}")

    @staticmethod
    def uuid(request: Request) -> str:
        m = ROUTE_RE.match(request.path)
        return m.group(1) if m else ""

    def authorize(self, request: Request) -> None:
        if self.token is None:
            raise ApiError("UnauthorizedError", "this server takes no writes: it has no token "
                           "in its configuration")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self.token.encode()):
            raise ApiError("UnauthorizedError", "writes need the header "
                           "'Authorization: Bearer <token>' with this server's token")

    async def route(self, request: Request, receive: Receive, out: Responder) -> str:
        """Answer one request; returns a note for the log line."""
        method, path = request.method, request.path.rstrip("/") or "/"
        head = method == "HEAD"
        if method == "HEAD":
            method = "GET"
        m = ROUTE_RE.match(path)
        if path == "/ping" and method == "GET":
            await out.json(200, {"ping": "pong", "version": version(), "imgapi": True}, head)
        elif path == "/images" and method == "GET":
            query = parse(request.query)
            await out.json(200, select(self.images.all(), query), head)
        elif path == "/images" and method == "POST":
            self.authorize(request)
            data = await read_json_body(receive)
            await out.json(200, self.images.create(data))
        elif m and not m.group(2) and method == "GET":
            await out.json(200, self.images.get(m.group(1)), head)
        elif m and not m.group(2) and method == "POST":
            self.authorize(request)
            action = request.query.get("action")
            if action != "activate":
                raise ApiError("InvalidParameter", f"action {action!r} is not one this server "
                               "does (activate)")
            await out.json(200, self.images.activate(m.group(1)))
        elif m and m.group(2) and method == "GET":
            return await self.send_file(m.group(1), request, receive, out, head)
        elif m and m.group(2) and method == "PUT":
            self.authorize(request)
            await out.json(200, await self.receive_file(m.group(1), request, receive))
        elif path in ("/ping", "/images") or m:
            raise ApiError("BadMethod", f"{request.method} is not allowed on {path}")
        else:
            raise ApiError("ResourceNotFound", f"{path} does not exist")
        return ""

    async def receive_file(self, uuid: str, request: Request,
                           receive: Receive) -> dict[str, Any]:
        manifest = self.images.get(uuid)
        sha1 = request.query.get("sha1")
        raw_size = request.query.get("size")
        if raw_size is not None and not raw_size.isdigit():
            raise ApiError("InvalidParameter", "size must be a whole number of bytes")
        compression = check_compression(request.query.get("compression"), manifest)
        upload = self.images.begin_upload(uuid)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ApiError("InternalError", "the client went away during the upload")
                upload.write(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BaseException:
            upload.abandon()
            self.images.uploading.discard(uuid)
            raise
        return self.images.finish_upload(uuid, upload, sha1=sha1,
                                         size=int(raw_size) if raw_size else None,
                                         compression=compression)

    async def send_file(self, uuid: str, request: Request, receive: Receive, out: Responder,
                        head: bool) -> str:
        path, size = self.images.file(uuid)
        faults = self.faults
        wanted = byte_range(request.headers.get("range"), size)
        first, last = wanted if wanted is not None else (0, size - 1)
        headers = {"content-type": "application/octet-stream", "accept-ranges": "bytes"}
        if wanted is None:
            headers["content-md5"] = await asyncio.to_thread(self.images.md5, uuid, path)
        length = last - first + 1
        if faults.wrong_size:
            length += 1
        if not faults.no_content_length:
            headers["content-length"] = str(length)
        if wanted is not None:
            headers["content-range"] = f"bytes {first}-{last}/{size}"
        close_at, stall_at = (None, None) if head else faults.next_download()
        await out.start(206 if wanted is not None else 200, headers)
        if head:
            await out.body(b"")
            return ""
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(watch_disconnect(receive, gone))
        fd = os.open(path, os.O_RDONLY)
        try:
            return await self.stream(fd, first, last, out, gone, close_at, stall_at, size)
        finally:
            os.close(fd)
            watcher.cancel()

    async def stream(self, fd: int, first: int, last: int, out: Responder, gone: asyncio.Event,
                     close_at: int | None, stall_at: int | None, size: int) -> str:
        """Send bytes first..last of the file, with the faults of this download."""
        offset = first
        rate = self.faults.rate
        started = time.monotonic()
        while offset <= last and not gone.is_set():
            count = min(CHUNK if not rate else max(rate // 20, 1), last + 1 - offset)
            if close_at is not None:
                count = min(count, max(close_at - out.sent, 0))
                if count == 0:
                    return " (fault: connection dropped)"
            if stall_at is not None and out.sent + count > stall_at:
                count = stall_at - out.sent
                if count == 0:
                    try:
                        await asyncio.wait_for(gone.wait(), self.faults.stall_seconds)
                    except TimeoutError:
                        pass
                    stall_at = None
                    continue
            data = await asyncio.to_thread(os.pread, fd, count, offset)
            if not data:
                raise OSError(f"the file is shorter than {size} bytes")
            if self.faults.wrong_sha1 and offset <= size // 2 < offset + len(data):
                flipped = bytearray(data)
                flipped[size // 2 - offset] ^= 0xFF
                data = bytes(flipped)
            offset += len(data)
            await out.body(data, more=True)
            if rate:  # the time these bytes take at the rate, less the time they took
                await asyncio.sleep(max(0.0, (offset - first) / rate
                                        - (time.monotonic() - started)))
        if gone.is_set():
            return " (client went away)"
        await out.body(b"\0" if self.faults.wrong_size else b"")
        return ""


async def watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def read_json_body(receive: Receive) -> Any:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError("InvalidParameter", "the client went away")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > BODY_MAX:
            raise ApiError("PayloadTooLarge", f"a manifest must be under {BODY_MAX} bytes")
        if not message.get("more_body", False):
            break
    try:
        return json.loads(b"".join(chunks))
    except ValueError as exc:
        raise ApiError("InvalidParameter", f"the request body is not JSON: {exc}") from None
