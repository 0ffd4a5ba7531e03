"""HVM test helpers: a disk file installed as a zvol image, a serial console read to a line."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid as uuidlib
from pathlib import Path

from liveforge.img.manifest import validate
from liveforge.img.store import ImageStore
from tests.support.kernel import qemu_processes_mentioning

MIB = 1024 * 1024


def zvol_manifest(file: Path, uuid: str, name: str = "testdisk") -> dict[str, object]:
    size = file.stat().st_size
    return {
        "v": 2, "uuid": uuid, "name": name, "version": "1.0", "type": "zvol", "os": "linux",
        "published_at": "2026-12-01T10:00:00.000Z", "image_size": -(-size // MIB),
        "files": [{"sha1": hashlib.sha1(file.read_bytes()).hexdigest(), "size": size,
                   "compression": "none"}],
    }


def install_zvol(imgadm_root: Path, file: Path, uuid: str | None = None,
                 pool: str = "zones") -> str:
    """Install the disk file ``file`` (raw or qcow2) as a zvol image into the image store at
    ``imgadm_root``; returns its uuid."""
    uuid = uuid or str(uuidlib.uuid4())
    manifest = validate(zvol_manifest(file, uuid))
    ImageStore(imgadm_root).install(manifest, file, None, pool=pool)
    return uuid


def read_until(sock_path: Path, text: bytes, timeout: float) -> bytes:
    """What the unix socket ``sock_path`` sends until ``text`` appears; AssertionError with
    what came when it does not within ``timeout`` seconds or the socket closes."""
    seen = b""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        while text not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s; got:\n"
                                     f"{seen[-3000:].decode(errors='replace')}")
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"console closed before {text!r}; got:\n"
                                     f"{seen[-3000:].decode(errors='replace')}")
            seen += data
    return seen


def vm_object(uuid: str | None = None, **props: object) -> dict[str, object]:
    """A bhyve VM object as vmadm keeps it, ``props`` on top of a 128 MiB, one-vcpu guest."""
    vm: dict[str, object] = {"uuid": uuid or str(uuidlib.uuid4()), "brand": "bhyve", "ram": 128,
                             "vcpus": 1, "vnc_port": -1}
    vm.update(props)
    return vm


def qemu_pids(vmdir: Path) -> list[int]:
    """Pids of QEMU processes whose command line names ``vmdir``."""
    return qemu_processes_mentioning(f"{vmdir}/")
