"""What ``imgadm create`` knows of a VM: the one place on imgadm's side that does.

imgadm may not import liveforge.vm (layers), so it reaches a VM the way SmartOS's imgadm does:
it runs ``vmadm get UUID`` (the VM object with its live ``state`` and its ``zonepath``, as
vmadm's runtime reads them) and relies on two facts of a container's directory, the file
contract docs/architecture.md states:

``<zonepath>/disk/upper``  the VM's own overlayfs upper layer (liveforge/vm/brands/rootfs.py),
                           mounted from install to destroy, whatever the VM's state;
``<zonepath>/lock``        the VM's lock (liveforge/vm/store.py): every vmadm verb that changes
                           a VM holds an exclusive ``flock`` on it, so while imgadm holds it the
                           VM cannot start, and its upper layer does not change.

``vmadm`` is the one on ``PATH``, else the one beside this Python (a virtualenv's ``bin``);
``IMGADM_VMADM`` names another.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from liveforge.img.config import DEFAULT_POOL
from liveforge.img.errors import ImgadmError

UPPER = ("disk", "upper")  # under the zonepath: the container's own layer
LOCK = "lock"  # under the zonepath: vmadm's per-VM lock
# brands whose VMs are containers on a tree image (vmadm's brand families: vm/brands)
OS_BRANDS = frozenset({"joyent", "joyent-minimal", "lx"})
GET_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Vm:
    """The fields of ``vmadm get`` that imgadm create reads."""

    uuid: str
    brand: str
    state: str
    image_uuid: str | None
    pool: str
    zonepath: Path

    @property
    def upper(self) -> Path:
        return self.zonepath.joinpath(*UPPER)


def vmadm_command() -> str:
    """The vmadm to run."""
    named = os.environ.get("IMGADM_VMADM")
    if named:
        return named
    found = shutil.which("vmadm") or shutil.which("vmadm", path=os.path.dirname(sys.executable))
    if found is None:
        raise ImgadmError("VmadmNotFound", "vmadm is not on PATH (set IMGADM_VMADM)")
    return found


def get(uuid: str) -> Vm:
    """The VM ``uuid`` as ``vmadm get`` tells it; ``VmNotFound`` when there is none."""
    argv = [vmadm_command(), "get", uuid]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=GET_TIMEOUT)
    except OSError as exc:
        raise ImgadmError("VmadmNotFound", f"{argv[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ImgadmError("VmadmFailed", f"vmadm get {uuid}: no answer in {GET_TIMEOUT:.0f} "
                          "seconds") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        detail = lines[0] if lines else f"exit status {proc.returncode}"
        if detail.startswith("No such VM"):
            raise ImgadmError("VmNotFound", f"VM {uuid} does not exist")
        raise ImgadmError("VmadmFailed", f"vmadm get {uuid}: {detail}")
    try:
        data = json.loads(proc.stdout)
        return Vm(uuid=str(data["uuid"]), brand=str(data["brand"]), state=str(data["state"]),
                  image_uuid=data.get("image_uuid"), pool=str(data.get("zpool") or DEFAULT_POOL),
                  zonepath=Path(data["zonepath"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ImgadmError("VmadmFailed", f"vmadm get {uuid}: not a VM object ({exc})") from None


@contextmanager
def locked(vm: Vm) -> Iterator[None]:
    """Hold the VM's lock (waiting for a vmadm that holds it): no vmadm verb changes the VM
    meanwhile."""
    try:
        fd = os.open(vm.zonepath / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ImgadmError("VmNotFound", f"VM {vm.uuid}: {vm.zonepath}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
