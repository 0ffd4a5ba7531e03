"""Temporaries named after the process that owns them, and scratch trees made fresh.

A temporary is hidden beside its final place and carries its owner's process id:
``.<name>.lf-tmp-<pid>`` (a file written and renamed into place) or
``.<name>.lf-tmp-<pid>.<n>`` (a folder from :func:`make_temp_dir`). A run killed at any
point leaves only such names; :func:`remove_leftovers` removes those whose owner is dead, at the
start of the next run of the verb that writes there. A live process's temporaries are kept, and
so are those of this process that are still in progress (another thread's unpack, say).

:func:`replace_tree` puts a fresh tree in place of an old one by renaming the old one aside
first, so nothing a dead run left in it (or a process still writing there) can make it fail.
"""

from __future__ import annotations

import itertools
import os

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from pathlib import Path

TMP_MARK = ".lf-tmp-"

_in_progress: set[str] = set()  # names of this process's temporary folders still in use
_serial = itertools.count(1)


def tmp_name(name: str) -> str:
    """The hidden name of a temporary for ``name``, owned by this process."""
    return f".{name}{TMP_MARK}{os.getpid()}"


def owner(name: str) -> int | None:
    """The process id a temporary's name carries, None when it is no temporary's."""
    if not name.startswith(".") or TMP_MARK not in name:
        return None
    pid = name.rsplit(TMP_MARK, 1)[1].split(".", 1)[0]
    return int(pid) if pid.isdigit() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_temp_dir(parent: Path, name: str) -> Path:
    """A new, empty, hidden folder in ``parent`` (created if need be) for building ``name``;
    remove it (or rename it away) with :func:`remove_temp`."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        # registered before it exists: a cleaning thread never takes it for a leftover
        base = f"{tmp_name(name)}.{next(_serial)}"
        _in_progress.add(base)
        try:
            os.mkdir(parent / base, 0o700)
        except FileExistsError:  # a dead process's that had this process id
            _in_progress.discard(base)
            continue
        except BaseException:
            _in_progress.discard(base)
            raise
        return parent / base


def remove_temp(path: Path) -> None:
    """Remove a folder from :func:`make_temp_dir` if it is still there."""
    try:
        if os.path.lexists(path):
            remove_tree(path)
    finally:
        _in_progress.discard(path.name)


def remove_leftovers(directory: Path) -> None:
    """Remove the temporaries in ``directory`` whose owner is dead (this process's too, but
    for those in progress). What cannot be removed now is left for a later run."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    me = os.getpid()
    for name in names:
        pid = owner(name)
        if pid is None or (pid != me and alive(pid)):
            continue
        if pid == me and name in _in_progress:
            continue
        try:
            remove_tree(os.path.join(directory, name))
        except OSError:
            pass


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a file or a tree, even where directory modes forbid writing."""
    import shutil

    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    os.chmod(path, 0o700)
    for dirpath, dirnames, _files in os.walk(path):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path)


def replace_tree(new: Path, dest: Path) -> None:
    """Put the finished tree ``new`` at ``dest``. An old tree there is renamed aside first and
    then removed; should removing it fail (a process a killed run left still writes into it),
    it is left, hidden, for the next run's :func:`remove_leftovers`."""
    if not os.path.lexists(dest):
        os.rename(new, dest)
        return
    aside = make_temp_dir(dest.parent, f"{dest.name}.old")
    os.rename(dest, aside / dest.name)
    os.rename(new, dest)
    try:
        remove_temp(aside)
    except OSError:
        pass
