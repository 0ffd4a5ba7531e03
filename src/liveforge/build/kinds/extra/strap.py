"""The strap cache: a finished proto.strap contribution stored as a tarball, keyed by content.

The key is the hash of every strap package's inputs (package folder, patches, variants, the
build.env keys the component sees, the host compiler), so any workspace whose strap packages
are the same reuses the tarball instead of building. Entries live in the shared cache as
``<cache>/strap/<key>.<sha256>.tar.gz``: the tarball's own checksum is part of its name, so an
entry appears whole, under one rename of a hidden temporary (``.<key>...lf-tmp-<pid>``), and a
reader never sees an entry without its checksum. An entry whose content does not match its name
(or that cannot be read) is deleted and the strap packages are built again; a killed writer's
temporary is removed by the next store.
"""

from __future__ import annotations

import os
import re
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from liveforge.util.hashing import file_digest, json_digest
from liveforge.util.scratch import make_temp_dir, remove_leftovers, remove_temp, tmp_name
from liveforge.util.unpack import UnsafeArchiveError, extract_tar, merge_tree

FORMAT = 1
SUFFIX = ".tar.gz"


def strap_key(hashes: Mapping[str, str]) -> str:
    """The cache key of a set of strap packages (name -> package input hash)."""
    return json_digest({"format": FORMAT, "packages": dict(hashes)})


def entries(cache_dir: Path, key: str) -> list[tuple[Path, str]]:
    """The entries stored for ``key``, newest first, each with the checksum its name records."""
    pattern = re.compile(rf"{re.escape(key)}\.([0-9a-f]{{64}}){re.escape(SUFFIX)}")
    found = []
    try:
        names = os.listdir(cache_dir / "strap")
    except FileNotFoundError:
        return []
    for name in names:
        m = pattern.fullmatch(name)
        if m:
            path = cache_dir / "strap" / name
            try:
                found.append((path.stat().st_mtime_ns, path, m.group(1)))
            except FileNotFoundError:  # replaced meanwhile
                continue
    return [(path, digest) for _, path, digest in sorted(found, reverse=True)]


def restore(cache_dir: Path, key: str, dest: Path, workdir: Path,
            note: Callable[[str], None]) -> bool:
    """Unpack the cached entry for ``key`` into ``dest``; False when there is no good one."""
    remove_leftovers(workdir)
    for tarball, expected in entries(cache_dir, key):
        try:
            actual = file_digest(tarball)
        except FileNotFoundError:  # replaced by a writer meanwhile
            continue
        if actual != expected:
            note(f"strap cache entry {tarball} is corrupt (sha256 {actual}): deleting it and "
                 "building")
            tarball.unlink(missing_ok=True)
            continue
        try:
            handle = open(tarball, "rb")
        except FileNotFoundError:  # replaced by a newer entry meanwhile
            continue
        tmp = make_temp_dir(workdir, "strap")
        try:
            with handle, tarfile.open(fileobj=handle, mode="r:gz") as tar:
                extract_tar(tar, tmp, str(tarball))
            merge_tree(tmp, dest, move=True)
        except (tarfile.TarError, EOFError, OSError, UnsafeArchiveError) as exc:
            note(f"strap cache entry {tarball} is unusable ({exc}): deleting it and building")
            tarball.unlink(missing_ok=True)
            return False
        finally:
            remove_temp(tmp)
        note(f"proto.strap restored from the strap cache ({tarball})")
        return True
    note(f"no strap cache entry {key}.*{SUFFIX}")
    return False


def store(cache_dir: Path, key: str, stages: Iterable[Path],
          note: Callable[[str], None]) -> Path:
    """Pack the staging folders (merged, later ones win) as the cache entry for ``key``: a
    gzipped tarball from the image archive writer, owners root, every mtime the time of
    storing."""
    from liveforge.build.image.archive import merged_image, write_archives  # only when storing

    strap = cache_dir / "strap"
    strap.mkdir(parents=True, exist_ok=True)
    remove_leftovers(strap)
    partial = strap / tmp_name(f"{key}{SUFFIX}")
    try:
        write_archives(merged_image(stages), int(time.time()), tar=partial,
                       tar_compression="gzip")
        tarball = strap / f"{key}.{file_digest(partial)}{SUFFIX}"
        os.replace(partial, tarball)
    finally:
        partial.unlink(missing_ok=True)
    for other, _ in entries(cache_dir, key):  # older entries of the key
        if other != tarball:
            other.unlink(missing_ok=True)
    note(f"stored proto.strap in the strap cache ({tarball})")
    return tarball
