"""Fixtures of the img tests (helpers in tests.support.images): a private IMGADM_ROOT, the
busybox base tree and its child tree, and their image files."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import busybox_tree, child_tree, write_image


@pytest.fixture
def imgadm_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh store root (``IMGADM_ROOT``) with no sources configured."""
    root = tmp_path / "root"
    (root / "var" / "imgadm").mkdir(parents=True)
    (root / "var" / "imgadm" / "imgadm.conf").write_text(json.dumps({"sources": []}))
    monkeypatch.setenv("IMGADM_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def trees() -> Iterator[tuple[Path, Path]]:
    """(the busybox base tree, the child tree), made once per session; do not modify."""
    top = Path(tempfile.mkdtemp(prefix="liveforge-img-trees."))
    try:
        base = busybox_tree(top / "base")
        yield base, child_tree(base, top / "child")
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def images(trees: tuple[Path, Path]) -> Iterator[dict[str, tuple[Path, Path, dict]]]:
    """The base image and the child image (its diff against the base): name -> (manifest
    file, image file, manifest). Made once per session; do not modify."""
    base, child = trees
    out = Path(tempfile.mkdtemp(prefix="liveforge-img-images."))
    try:
        made = {"base": write_image(out, base, "base")}
        made["child"] = write_image(out, child, "child", origin_tree=base,
                                    origin=made["base"][2]["uuid"], compression="xz")
        yield made
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def plain_images(trees: tuple[Path, Path]) -> Iterator[dict[str, tuple[Path, Path, dict]]]:
    """As ``images``, both uncompressed (compression none: unpacked while they download)."""
    base, child = trees
    out = Path(tempfile.mkdtemp(prefix="liveforge-img-plain."))
    try:
        made = {"base": write_image(out, base, "base", compression="none")}
        made["child"] = write_image(out, child, "child", origin_tree=base,
                                    origin=made["base"][2]["uuid"], compression="none")
        yield made
    finally:
        shutil.rmtree(out, ignore_errors=True)
