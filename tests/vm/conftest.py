"""Fixtures of the vmadm tests: vmadm and json in a subprocess, on a VM root and an image
store of their own (installed images written as the store's records and layers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ZONE_IMAGE = "11111111-1111-4111-8111-111111111111"
LX_IMAGE = "22222222-2222-4222-8222-222222222222"
ZVOL_IMAGE = "33333333-3333-4333-8333-333333333333"
ZVOL_SIZE = 10240

Run = Callable[..., subprocess.CompletedProcess[str]]


def install_image(img_root: Path, uuid: str, type: str, **extra: Any) -> None:
    """An installed image as imgadm's store keeps it: its record and its layer (a tree
    image's directory, a zvol's disk file)."""
    manifest = {"v": 2, "uuid": uuid, "name": f"test-{type}", "version": "1.0", "type": type,
                "os": "linux", "state": "active", **extra,
                "files": [{"sha1": "0" * 40, "size": 1, "compression": "none"}]}
    db = img_root / "var" / "imgadm" / "images"
    db.mkdir(parents=True, exist_ok=True)
    (db / f"zones-{uuid}.json").write_text(json.dumps(
        {"manifest": manifest, "zpool": "zones", "source": None}))
    pool = img_root / "zones"
    pool.mkdir(parents=True, exist_ok=True)
    if type == "zvol":
        (pool / f"{uuid}.img").write_bytes(b"\0" * 512)
    else:
        (pool / uuid / "etc").mkdir(parents=True, exist_ok=True)


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """(VMADM_ROOT, IMGADM_ROOT) with three images installed: a zone-dataset, an lx-dataset
    and a zvol."""
    vm_root, img_root = tmp_path / "zones", tmp_path / "img"
    vm_root.mkdir()
    install_image(img_root, ZONE_IMAGE, "zone-dataset")
    install_image(img_root, LX_IMAGE, "lx-dataset")
    install_image(img_root, ZVOL_IMAGE, "zvol", image_size=ZVOL_SIZE)
    return vm_root, img_root


def _runner(module: str, env: dict[str, str]) -> Run:
    def run(*args: str, input: str | None = None, check: bool = False
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", module, *args], input=input,
                              capture_output=True, text=True, env=env, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc
    return run


@pytest.fixture
def vmadm(roots: tuple[Path, Path]) -> Run:
    """``vmadm ARGS`` (``python -m liveforge.vm.cli``) on the test's roots."""
    env = dict(os.environ, VMADM_ROOT=str(roots[0]), IMGADM_ROOT=str(roots[1]))
    return _runner("liveforge.vm.cli", env)


@pytest.fixture
def jsoncheck() -> Run:
    """``json ARGS`` (``python -m liveforge.vm.jsoncheck``)."""
    return _runner("liveforge.vm.jsoncheck", dict(os.environ))
