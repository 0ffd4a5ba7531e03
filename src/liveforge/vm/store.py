"""Where VMs live: ``<VMADM_ROOT>/<uuid>/`` (default ``/zones``), each with ``config.json``
(the VM object, written atomically) and a lock; and, while a VM is not installed yet or its
install failed, a ``status`` file naming that state (``configured``, ``provisioning``,
``failed``). An installed VM has no status file: its state is its runtime's to tell.

The root may hold other things (an image pool's layer directories share ``/zones``): a
directory is a VM's when it holds ``config.json``."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from liveforge.util.fileio import read_bytes, write_atomic
from liveforge.vm.errors import BadUuid, NoSuchVm, VmadmError

DEFAULT_ROOT = "/zones"
# 36 characters with dashes at 8, 13, 18 and 23 (vmadm's test of a UUID argument)
UUID_ARG_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                         r"[0-9a-fA-F]{12}\Z")
STATUSES = ("configured", "provisioning", "failed")


def check_uuid(value: str | None, command: str) -> str:
    """A UUID argument of ``command``, or ``BadUuid``."""
    if value is None or UUID_ARG_RE.match(value) is None:
        raise BadUuid(command)
    return value.lower()


class VmStore:
    """The VMs under one root."""

    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def from_env(cls) -> VmStore:
        return cls(Path(os.environ.get("VMADM_ROOT", DEFAULT_ROOT)))

    def vmdir(self, uuid: str) -> Path:
        return self.root / uuid

    def exists(self, uuid: str) -> bool:
        return (self.vmdir(uuid) / "config.json").is_file()

    def uuids(self) -> list[str]:
        """The VMs here, sorted."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names
                      if UUID_ARG_RE.match(n) and (self.root / n / "config.json").is_file())

    def load(self, uuid: str) -> dict[str, Any]:
        """The VM object in ``config.json``; ``NoSuchVm`` when there is none."""
        path = self.vmdir(uuid) / "config.json"
        try:
            data = json.loads(read_bytes(path))
        except FileNotFoundError:
            raise NoSuchVm(uuid) from None
        except (OSError, ValueError) as exc:
            raise VmadmError(f"{path}: unreadable VM configuration: {exc}") from None
        if not isinstance(data, dict):
            raise VmadmError(f"{path}: unreadable VM configuration: not a JSON object")
        return data

    def save(self, vm: dict[str, Any]) -> None:
        """Write the VM object, atomically (a reader sees the old one or the new one)."""
        text = json.dumps(vm, indent=2, sort_keys=True) + "\n"
        write_atomic(self.vmdir(vm["uuid"]) / "config.json", text)

    def make(self, vm: dict[str, Any], status: str = "configured") -> Path:
        """A new VM's directory, its ``config.json`` and ``status`` (``configured``, or
        ``provisioning`` for a create that installs at once); ``VmadmError`` when the UUID
        is taken."""
        vmdir = self.vmdir(vm["uuid"])
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            vmdir.mkdir()
        except FileExistsError:
            raise VmadmError(f"VM {vm['uuid']} already exists") from None
        self.set_status(vm["uuid"], status)
        self.save(vm)
        return vmdir

    def status(self, uuid: str) -> str | None:
        """``configured``, ``provisioning`` or ``failed``; None: installed."""
        try:
            text = read_bytes(self.vmdir(uuid) / "status").decode().strip()
        except FileNotFoundError:
            return None
        return text if text in STATUSES else "failed"

    def set_status(self, uuid: str, status: str | None) -> None:
        path = self.vmdir(uuid) / "status"
        if status is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, status + "\n")

    @contextmanager
    def locked(self, uuid: str) -> Iterator[None]:
        """Hold the VM's lock (``<vmdir>/lock``), waiting for another vmadm holding it; the
        VM must exist (``NoSuchVm``), and still does once the lock is held."""
        vmdir = self.vmdir(uuid)
        try:
            fd = os.open(vmdir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            raise NoSuchVm(uuid) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self.exists(uuid):
                raise NoSuchVm(uuid)
            yield
        finally:
            os.close(fd)
