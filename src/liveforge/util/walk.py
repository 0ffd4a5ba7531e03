"""One walk of a directory tree: every entry below a root with its path relative to it and its
own ``lstat`` (links are never followed). The callers decide what each kind of entry means."""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator


def walk_tree(root: str | os.PathLike[str], prefix: str = "") -> Iterator[
        tuple[str, os.DirEntry[str], os.stat_result]]:
    """``(relative path, entry, lstat)`` for everything under ``root``, a directory before what
    it holds; relative paths are ``prefix`` + the names joined by ``/``. The order within a
    directory is the file system's: callers that need an order sort."""
    pending = [(os.fspath(root), prefix)]
    while pending:
        directory, base = pending.pop()
        with os.scandir(directory) as listing:
            children = list(listing)
        for child in children:
            path = base + child.name
            st = child.stat(follow_symlinks=False)
            yield path, child, st
            if stat.S_ISDIR(st.st_mode):
                pending.append((child.path, path + "/"))
