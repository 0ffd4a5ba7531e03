"""``imgapi [-c CONFIG] [--host HOST] [--port PORT] DIR``: serve a directory of images.

The configuration is a JSON object: ``{"token": "...", "faults": {...}}``. ``token`` is the
bearer token publishing needs (without one the server takes no writes); ``faults`` is the
fault-injecting mode (``liveforge.img.server.faults``). The first line on stderr names the URL
(``--port 0`` picks a free port); then one line per request.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from liveforge.img.server.app import ImgapiApp
from liveforge.img.server.faults import Faults
from liveforge.img.server.faults import parse as parse_faults
from liveforge.img.server.images import ImageDir
from liveforge.util.errors import InputError, LiveforgeError
from liveforge.util.fileio import read_text


def log(text: str) -> None:
    for line in text.splitlines():
        print(f"imgapi: {line}", file=sys.stderr, flush=True)


def read_config(path: Path | None) -> tuple[str | None, Faults]:
    """The token and the faults of a configuration file (none: no token, no faults)."""
    if path is None:
        return None, Faults()
    import json

    try:
        data = json.loads(read_text(path))
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", path) from None
    if not isinstance(data, dict):
        raise InputError("must be a JSON object", path)
    unknown = sorted(set(data) - {"token", "faults"})
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} (known: token, faults)", path)
    token = data.get("token")
    if token is not None and (not isinstance(token, str) or not token):
        raise InputError("token must be a non-empty string", path)
    return token, parse_faults(data.get("faults"), str(path))


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LiveforgeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="imgapi", description="Serve a directory of images "
                                 "over the IMGAPI protocol.")
    ap.add_argument("directory", type=Path, help="the images: DIR/<uuid>/{manifest.json,file}")
    ap.add_argument("-c", "--config", type=Path, help="JSON: {\"token\": ..., \"faults\": ...}")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ap.add_argument("--port", type=int, default=8080, help="port (8080; 0 picks a free one)")
    args = ap.parse_args(argv)
    try:
        if not args.directory.is_dir():
            raise InputError("not a directory", args.directory)
        token, faults = read_config(args.config)
        images = ImageDir(args.directory, log)
        sock = listen(args.host, args.port)
    except LiveforgeError as exc:
        print(f"imgapi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    import uvicorn

    app = ImgapiApp(images, token, faults, log)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log(f"serving {args.directory} on http://{shown}:{port}"
        + (" (writes need the token)" if token else " (read-only: no token)")
        + (" (fault mode)" if faults.active else ""))
    config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
