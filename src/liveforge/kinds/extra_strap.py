"""The strap cache: a finished proto.strap contribution stored as a tarball, keyed by content.

The key is the hash of every strap package's inputs (package folder, patches, variants, the
build.env keys the component sees, the host compiler), so any workspace whose strap packages
are the same reuses the tarball instead of building. Entries live in the shared cache:
``<cache>/strap/<key>.tar.gz`` beside ``<key>.tar.gz.sha256``; an entry whose checksum does not
match (or that cannot be read) is deleted and the strap packages are built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ..keyvalue import write_atomic
from ..scratch import remove_tree
from ..sources import sha256_file
from ..unpack import UnsafeArchiveError, extract_tar, merge_tree

FORMAT = 1


def strap_key(hashes: Mapping[str, str]) -> str:
    """The cache key of a set of strap packages (name -> package input hash)."""
    blob = json.dumps({"format": FORMAT, "packages": dict(sorted(hashes.items()))},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    tarball = cache_dir / "strap" / f"{key}.tar.gz"
    return tarball, tarball.with_name(tarball.name + ".sha256")


def _drop(paths: Iterable[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def restore(cache_dir: Path, key: str, dest: Path, workdir: Path,
            note: Callable[[str], None]) -> bool:
    """Unpack the cached entry for ``key`` into ``dest``; False when there is no good one."""
    tarball, sumfile = entry_paths(cache_dir, key)
    if not tarball.is_file():
        note(f"no strap cache entry {tarball.name}")
        return False
    try:
        expected = sumfile.read_text().split()[0]
    except (OSError, IndexError):
        expected = ""
    actual = sha256_file(tarball)
    if actual != expected:
        note(f"strap cache entry {tarball} is corrupt (sha256 {actual}, recorded "
             f"{expected or 'nothing'}): deleting it and building")
        _drop([tarball, sumfile])
        return False
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".strap.", dir=workdir))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            extract_tar(tar, tmp, str(tarball))
        merge_tree(tmp, dest, move=True)
    except (tarfile.TarError, EOFError, OSError, UnsafeArchiveError) as exc:
        note(f"strap cache entry {tarball} is unusable ({exc}): deleting it and building")
        _drop([tarball, sumfile])
        return False
    finally:
        remove_tree(tmp)
    note(f"proto.strap restored from the strap cache ({tarball})")
    return True


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def store(cache_dir: Path, key: str, stages: Iterable[Path],
          note: Callable[[str], None]) -> Path:
    """Pack the staging folders (merged, later ones win) as the cache entry for ``key``."""
    tarball, sumfile = entry_paths(cache_dir, key)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(f"{tarball.name}.{os.getpid()}.partial")
    try:
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            for stage in stages:
                for dirpath, dirnames, filenames in os.walk(stage):
                    dirnames.sort()
                    rel = os.path.relpath(dirpath, stage)
                    for name in [*dirnames, *sorted(filenames)]:
                        full = os.path.join(dirpath, name)
                        arc = name if rel == "." else f"{rel}/{name}"
                        tar.add(full, arcname=arc, recursive=False, filter=_normalize)
        digest = sha256_file(partial)
        os.replace(partial, tarball)
        write_atomic(sumfile, f"{digest}  {tarball.name}\n")
    finally:
        partial.unlink(missing_ok=True)
    note(f"stored proto.strap in the strap cache ({tarball})")
    return tarball
