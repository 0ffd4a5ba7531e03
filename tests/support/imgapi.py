"""The real ``imgapi`` server on loopback for tests, and images put straight into its directory."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "test-token"
URL_RE = re.compile(r"imgapi: serving .* on (http://\S+)")


@dataclass
class Server:
    url: str
    log: Path
    directory: Path
    proc: subprocess.Popen[bytes]

    def requests(self) -> list[str]:
        """The server's request log lines so far (``GET /path range=... -> 206 123``)."""
        return [line.removeprefix("imgapi: ") for line in self.log.read_text().splitlines()
                if " -> " in line]

    def file_requests(self, uuid: str, at_least: int = 0) -> list[str]:
        """The log lines of downloads of an image's file, once there are ``at_least`` (a
        download the client gave up on is logged when the server notices)."""
        deadline = time.monotonic() + 10
        while True:
            found = [r for r in self.requests() if r.startswith(f"GET /images/{uuid}/file")]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def put_image(directory: Path, manifest: dict[str, Any], data: bytes | Path,
              compression: str = "none") -> dict[str, Any]:
    """Write an image the way the server stores it: ``<uuid>/manifest.json`` (its ``files``
    computed from ``data``, its state active unless it says otherwise) and ``<uuid>/file``."""
    folder = directory / manifest["uuid"]
    folder.mkdir(parents=True)
    target = folder / "file"
    if isinstance(data, Path):
        try:
            os.link(data, target)
        except OSError:
            shutil.copyfile(data, target)
    else:
        target.write_bytes(data)
    digest = hashlib.sha1()
    with open(target, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    full = {"v": 2, "state": "active", **manifest,
            "files": [{"sha1": digest.hexdigest(), "size": target.stat().st_size,
                       "compression": compression}]}
    (folder / "manifest.json").write_text(json.dumps(full, indent=2))
    return full


@contextmanager
def imgapi(directory: Path, config: dict[str, Any] | None = None,
           token: str | None = TOKEN) -> Iterator[Server]:
    """``imgapi`` serving ``directory`` on 127.0.0.1 (a free port), with ``token`` and the
    rest of ``config`` (faults) in its configuration; stopped when the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    work = directory.parent / f".{directory.name}.imgapi"
    work.mkdir(exist_ok=True)
    conf = work / "config.json"
    conf.write_text(json.dumps({**({"token": token} if token else {}), **(config or {})}))
    log = work / "log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.server.cli", "--port", "0",
                                 "-c", str(conf), str(directory)], stdout=handle, stderr=handle)
    try:
        url = ""
        deadline = time.monotonic() + 20
        while not url:
            m = URL_RE.search(log.read_text())
            if m:
                url = m.group(1)
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"imgapi did not start:\n{log.read_text()}")
            else:
                time.sleep(0.02)
        yield Server(url, log, directory, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
