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


def boot_sector(text: str) -> bytes:
    """A 512-byte boot sector (a disk's MBR, or a CD's no-emulation boot image) whose real-mode
    code writes ``COM1 <text>`` to the first serial port and ``COM2 <text>`` to the second,
    again and again (a reader that connects late still sees it)."""
    base = 0x7C00  # where the BIOS loads it; the code runs with DS = 0
    messages = [f"COM{n} {text}\r\n".encode() + b"\0" for n in (1, 2)]
    # layout: main (36 bytes), print (9 bytes), then the messages
    main_len, print_len = 36, 9
    msg1 = base + main_len + print_len
    msg2 = msg1 + len(messages[0])

    def le(value: int) -> bytes:
        return (value & 0xFFFF).to_bytes(2, "little")

    code = b"\x31\xc0\x8e\xd8"                                  # xor ax,ax; mov ds,ax
    again = len(code)
    for msg, port in ((msg1, 0x3F8), (msg2, 0x2F8)):
        code += b"\xbe" + le(msg) + b"\xba" + le(port)          # mov si,msg; mov dx,port
        code += b"\xe8" + le(main_len - (len(code) + 3))        # call print
    code += b"\xb9\x00\x01"                                     # mov cx,0x100
    outer = len(code)
    code += b"\x51\xb9\xff\xff\xe2\xfe\x59"                     # push cx; mov cx,-1; loop $; pop cx
    code += b"\xe2" + bytes([(outer - (len(code) + 2)) & 0xFF])  # loop outer
    code += b"\xeb" + bytes([(again - (len(code) + 2)) & 0xFF])  # jmp again
    assert len(code) == main_len, len(code)
    code += b"\xac\x84\xc0\x74\x03\xee\xeb\xf8\xc3"              # print: lodsb; test al,al;
    code += messages[0] + messages[1]                           # jz ret; out dx,al; jmp print
    assert len(code) <= 510
    return code.ljust(510, b"\0") + b"\x55\xaa"


def boot_disk(path: Path, text: str) -> Path:
    """A 1 MiB raw disk whose MBR is ``boot_sector(text)``."""
    with open(path, "wb") as handle:
        handle.write(boot_sector(text))
        handle.truncate(MIB)
    return path


def boot_cd(path: Path, text: str) -> Path:
    """An El Torito CD image (no emulation) whose boot image is ``boot_sector(text)``."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tree:
        Path(tree, "boot.img").write_bytes(boot_sector(text).ljust(2048, b"\0"))
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(path), "-b", "boot.img",
                        "-no-emul-boot", "-boot-load-size", "4", tree],
                       check=True, capture_output=True)
    return path
