"""Content hashes of source trees, with a stat cache so a no-op run reads no file twice.

A tree's hash covers every file that would be built from: its relative path, whether it is
executable or a symlink, and its content (a symlink's target text). In a git work tree the file
list is git's (tracked plus untracked, minus ignored), so ignored build products never make a
tree stale; committing or rebasing to the same content is not a change. Outside git every file
counts except those matched by the patterns of the tree's own ``.gitignore`` and
``.liveforgeignore`` files.

The cache maps a tree to the *stat signature* of everything under it (paths, sizes, mtimes,
inodes) and the hash computed then; when the signature is unchanged the hash is reused, and when
it changed only files whose stat changed are read again.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from stat import S_ISDIR

from .keyvalue import read_bytes, write_atomic

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from hashlib import sha256
    from typing import Any
else:
    try:  # CPython's own SHA-256: the same digests, without loading OpenSSL (hashlib: ~4 ms)
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256


def _scan(root: str) -> tuple[list[tuple[str, int, int, int, int]], bool] | None:
    """:func:`_walk_stats` of ``root``, and whether ``root`` has an entry ``.git``; None when
    ``root`` is not a directory."""
    out: list[tuple[str, int, int, int, int]] = []
    append = out.append
    try:
        entries = os.scandir(root)
    except OSError as exc:
        if not os.path.isdir(root):
            return None
        if not isinstance(exc, PermissionError):
            raise
        return out, False
    stack: list[str] = []

    def add(entries: os._ScandirIterator[str], rel: str) -> bool:
        """Record one directory's entries; True when it holds ``.git``."""
        prefix = f"{rel}/" if rel else ""
        git = False
        with entries:
            for entry in entries:
                name = entry.name
                if name == ".git":
                    git = True
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                append((prefix + name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
                if S_ISDIR(st.st_mode):
                    stack.append(prefix + name)
        return git

    has_git = add(entries, "")
    while stack:
        rel = stack.pop()
        try:
            entries = os.scandir(f"{root}/{rel}")
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        add(entries, rel)
    out.sort()
    return out, has_git


def _walk_stats(root: str) -> list[tuple[str, int, int, int, int]]:
    """(relative path, mode, size, mtime_ns, inode) of every entry under root, .git excluded."""
    scan = _scan(root)
    return scan[0] if scan is not None else []


def _git_top(where: str, known: dict[str, bool] | None) -> str | None:
    """:func:`git_toplevel` on strings."""
    while True:  # path, then each of its parents
        found = known.get(where) if known is not None else None
        if found is None:
            found = os.path.exists(os.path.join(where, ".git"))
            if known is not None:
                known[where] = found
        if found:
            return where
        parent = os.path.dirname(where) or "."
        if parent == where or where == ".":
            return None
        where = parent


def git_toplevel(path: Path, known: dict[str, bool] | None = None) -> Path | None:
    """The git work tree holding ``path``, found by looking for ``.git`` upwards. ``known``
    remembers, per directory, whether it holds a ``.git``."""
    top = _git_top(str(path), known)
    return None if top is None else Path(top)


def _git_extra_stats(top: str | Path) -> list[tuple[str, int, int, int, int]]:
    """Files outside the tree that change git's idea of what is ignored."""
    out = []
    where = str(top)
    for name in (".gitignore", ".git/info/exclude"):
        try:
            st = os.stat(os.path.join(where, name))
        except OSError:
            continue
        out.append((f"@{name}", st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def _git_files(tree: Path) -> list[str]:
    import subprocess  # only when a tree changed

    proc = subprocess.run(
        ["git", "-C", str(tree), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
         "--", "."],
        capture_output=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"git ls-files failed in {tree}: {proc.stderr.decode(errors='replace')}")
    return sorted(set(p for p in proc.stdout.decode().split("\0") if p))


def _ignore_patterns(tree: Path) -> list[str]:
    """Patterns of the tree's own ``.gitignore`` and ``.liveforgeignore`` (outside git)."""
    patterns: list[str] = []
    for name in (".gitignore", ".liveforgeignore"):
        try:
            text = (tree / name).read_text()
        except OSError:
            continue
        patterns += [line.strip().lstrip("/") for line in text.splitlines()
                     if line.strip() and not line.startswith(("#", "!"))]
    return patterns


def _ignored(path: str, patterns: list[str]) -> bool:
    import fnmatch

    parts = path.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(path, pattern) or any(fnmatch.fnmatch(p, pattern) for p in parts):
            return True
    return False


def _file_digest(full: str, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "l:" + sha256(os.readlink(full).encode()).hexdigest()
    h = sha256()
    with open(full, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    kind = "x" if mode & 0o111 else "f"
    return f"{kind}:{h.hexdigest()}"


class TreeHasher:
    """Hash source trees, caching results in a JSON file (``.liveforge/treecache.json``)."""

    def __init__(self, cache_file: Path | None):
        self.cache_file = cache_file
        self.cache: dict[str, Any] = {}
        self.dirty = False
        # directory -> holds a .git; kept until save(), the end of one plan
        self._git_dirs: dict[str, bool] = {}
        # work tree -> stats of its ignore files, while planning (see planning()); else None
        self._git_extra: dict[str, list[tuple[str, int, int, int, int]]] | None = None
        if cache_file is not None:
            try:
                self.cache = json.loads(read_bytes(cache_file))
            except (OSError, ValueError):
                self.cache = {}

    def planning(self) -> None:
        """Until save(): the stats of a work tree's ignore files are looked up once (one plan
        hashes many trees of one work tree)."""
        self._git_extra = {}

    def save(self) -> None:
        self._git_dirs.clear()
        self._git_extra = None
        if self.cache_file is None or not self.dirty:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.cache_file, json.dumps(self.cache, separators=(",", ":")))
        self.dirty = False

    def hash(self, tree: Path) -> str:
        """The content hash of ``tree`` (a missing tree hashes as ``missing``)."""
        key = os.fspath(tree)
        scan = _scan(key)
        if scan is None:
            return "missing"
        stats, has_git = scan
        if not has_git:  # no entry .git: known without looking again
            self._git_dirs.setdefault(key, False)
        top = _git_top(key, self._git_dirs)
        if top is not None:
            memo = self._git_extra
            if memo is None:
                stats += _git_extra_stats(top)
            else:
                extra = memo.get(top)
                if extra is None:
                    extra = memo[top] = _git_extra_stats(top)
                stats += extra
        signature = sha256(repr(stats).encode()).hexdigest()
        entry = self.cache.get(key)
        if entry and entry.get("sig") == signature:
            return str(entry["hash"])
        old_files: dict[str, list[Any]] = entry.get("files", {}) if entry else {}
        by_path = {s[0]: s for s in stats}
        if top is not None:
            names = _git_files(tree)
        else:
            patterns = _ignore_patterns(tree)
            names = [s[0] for s in stats if not stat.S_ISDIR(s[1]) and not s[0].startswith("@")
                     and not _ignored(s[0], patterns)]
        files: dict[str, list[Any]] = {}
        total = sha256()
        for name in names:
            st = by_path.get(name)
            if st is None or stat.S_ISDIR(st[1]):
                continue  # deleted tracked file, or a submodule directory
            sig = [st[1], st[2], st[3], st[4]]
            old = old_files.get(name)
            if old is not None and old[:4] == sig:
                digest = old[4]
            else:
                try:
                    digest = _file_digest(os.path.join(key, name), st[1])
                except OSError:
                    continue
            files[name] = [*sig, digest]
            total.update(f"{name}\0{digest}\n".encode())
        result = total.hexdigest()
        self.cache[key] = {"sig": signature, "hash": result, "files": files}
        self.dirty = True
        return result
