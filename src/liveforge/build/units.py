"""A step's output as a unit: its own staging tree and manifest, delivered into proto.

Each step installs into ``.liveforge/units/<step>/`` (``tree/``, the files, and
``manifest.d/``, the component's manifest) instead of the proto area itself. That folder is
what the build cache stores and restores (:func:`pack`, :func:`unpack`). :func:`deliver` then
merges the tree into proto/ (proto.strap/ for the strap phase) and copies the manifest to
manifest.d/, refusing a file that another step delivered with other content, and records the
paths the step delivered in ``.liveforge/units/<step>.json`` (the owners of proto's files).

:func:`leaks` finds a workspace path inside a unit: such an output would be wrong in any other
workspace, so it is never cached.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from liveforge.build.kinds.base import MAIN, UNIT_MANIFESTS, UNIT_TREE
from liveforge.util.errors import BuildError
from liveforge.util.fileio import read_json, write_atomic
from liveforge.util.scratch import remove_tree
from liveforge.util.unpack import collisions, merge_tree, refuse_collisions, tree_paths

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from liveforge.build.graph import Step
    from liveforge.build.workspace import Workspace

_delivering = threading.Lock()  # one delivery at a time: the owner check, then the merge
CHUNK = 1 << 20


def units_dir(ws: Workspace) -> Path:
    return ws.state_dir / "units"


def fresh_unit(ws: Workspace, step: Step) -> Path:
    """The step's output folder, empty, with its ``tree/`` and ``manifest.d/``."""
    unit = units_dir(ws) / step.stamp_name
    remove_tree(unit)
    (unit / UNIT_TREE).mkdir(parents=True)
    (unit / UNIT_MANIFESTS).mkdir()
    return unit


def _owners_path(ws: Workspace, step: Step) -> Path:
    return units_dir(ws) / f"{step.stamp_name}.json"


def owners(ws: Workspace, step: Step) -> dict[str, str]:
    """The entries of the step's staging area that other steps delivered: path -> step."""
    area = ws.proto if step.phase == MAIN else ws.proto_strap
    mine = _owners_path(ws, step)
    found: dict[str, str] = {}
    for record in sorted(units_dir(ws).glob("*.json")):
        data = read_json(record)
        if record == mine or not isinstance(data, dict) or data.get("area") != area.name:
            continue
        for path in data.get("paths", []):
            found[path] = str(data.get("step"))
    return found


def deliver(ws: Workspace, step: Step, unit: Path) -> None:
    """Merge the unit into its staging area and manifest.d/; an entry another step delivered
    with different content (:func:`~liveforge.util.unpack.collisions`) is an error naming
    both steps (nothing is merged then)."""
    area = ws.proto if step.phase == MAIN else ws.proto_strap
    tree = unit / UNIT_TREE
    paths = tree_paths(tree)
    mine = _owners_path(ws, step)
    with _delivering:
        refuse_collisions(step.name, area, collisions(tree, area, owners(ws, step)))
        merge_tree(tree, area, move=True)
        write_atomic(mine, json.dumps({"step": step.name, "area": area.name, "paths": paths})
                     + "\n")
    if step.phase == MAIN:
        ws.manifest_d.mkdir(parents=True, exist_ok=True)
        name = f"{step.spec.name}.manifest"
        made = unit / UNIT_MANIFESTS / name
        if made.is_file():
            os.replace(made, ws.manifest_d / name)
        else:
            (ws.manifest_d / name).unlink(missing_ok=True)
    remove_tree(unit)


def leaks(unit: Path, needles: list[bytes]) -> list[str]:
    """The files of ``unit`` (relative paths, sorted) whose content or symlink target holds
    any of ``needles`` (the workspace's absolute paths)."""
    needles = [n for n in needles if n]
    if not needles:
        return []
    longest = max(len(n) for n in needles)
    found = []
    for dirpath, dirnames, filenames in os.walk(unit):
        for name in sorted(filenames + [d for d in dirnames
                                        if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                hit = any(n in os.fsencode(os.readlink(full)) for n in needles)
            else:
                hit = _file_holds(full, needles, longest)
            if hit:
                found.append(os.path.relpath(full, unit))
    return sorted(found)


def _file_holds(path: str, needles: list[bytes], longest: int) -> bool:
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            window = tail + chunk
            if any(n in window for n in needles):
                return True
            tail = window[-(longest - 1):] if longest > 1 else b""
    return False


def pack(unit: Path, archive: Path) -> None:
    """The unit as a zstd tar, written by the image archive writer: entries sorted, owners
    root, every mtime 0, so the same output gives the same bytes on any host."""
    from liveforge.build.image.archive import merged_image, write_archives

    write_archives(merged_image([unit]), 0, tar=archive, tar_compression="zstd")


def unpack(archive: Path, unit: Path) -> None:
    """Unpack a packed unit into the empty unit folder (the tar-slip checks apply); every
    file's time is now, as if it had just been installed."""
    import tarfile

    from liveforge.util.archive import open_decompressed
    from liveforge.util.unpack import extract_tar

    try:
        with open_decompressed(archive) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            extract_tar(tar, unit, archive.name, allow_absolute_symlinks=True)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BuildError(f"{archive.name}: not a whole step archive: {exc}") from None
    for name in (UNIT_TREE, UNIT_MANIFESTS):
        (unit / name).mkdir(exist_ok=True)
    for dirpath, _, filenames in os.walk(unit):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), follow_symlinks=False)


def forget(ws: Workspace) -> None:
    """Remove every unit and owner record (clean)."""
    remove_tree(units_dir(ws))
