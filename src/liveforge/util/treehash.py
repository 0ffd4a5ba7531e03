"""Content hashes of source trees: what a build reads, never how it got there.

A tree's hash covers one record per file that would be built from: its path (bytes, as the
file system names it), its git mode (``100644``, ``100755`` when executable, ``120000`` for a
symlink, ``160000`` for a repository inside the tree) and its object id: the git blob id,
``sha1(b"blob <size>\\0" + content)`` as ``git hash-object`` computes it (a symlink's content is
its target), or for a repository inside the tree, that tree's own hash. The records are the same
in git and out of it, so the hash is a function of content alone: committing, staging or leaving
a file untracked, or copying the tree out of git, changes nothing.

In a git work tree the files are git's (tracked plus untracked, never ignored) and so is most of
the work. The index holds the blob id of every tracked file; ``git status`` names the files
whose work-tree content differs from it (git's own stat check: size, mtime, ctime, inode) and the
untracked ones; only those are read here. The cache keeps, per tree, git's answer under it
(with HEAD, which with that answer fixes the index), the stat signatures of the files it named
and the hash: when all are unchanged the hash is reused, so a no-op asks git one question.
A submodule or a nested repository is hashed as a tree of its own.

Outside git every file counts except those matched by the patterns of the tree's own
``.gitignore`` and ``.liveforgeignore`` files. The cache keeps the stat signature of everything
under the tree, and each file's signature and blob id: when the tree's signature changed, only
files whose signature changed are read again.

A stat signature is (mode, size, mtime, ctime, inode), as git's index keeps it: rewriting a file
and setting its mtime back still changes its ctime.
"""

from __future__ import annotations

import json
import os
from _thread import RLock
from bisect import bisect_left
from pathlib import Path
from stat import S_ISDIR, S_ISLNK, S_ISREG

from liveforge.util.errors import LiveforgeError
from liveforge.util.fileio import read_bytes, write_atomic
from liveforge.util.hashing import sha256

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from liveforge.util.git import GitQuery

CACHE_FORMAT = 2
GITLINK = "160000"

# (relative path, mode, size, mtime_ns, ctime_ns, inode)
Stat = tuple[str, int, int, int, int, int]
# path relative to the tree -> (git mode, object id)
Records = dict[bytes, tuple[str, str]]


GONE = (FileNotFoundError, NotADirectoryError)  # a path (or a directory on it) was removed


class TreeError(LiveforgeError):
    """A source file that cannot be read."""


def _signature(path: str) -> list[int]:
    """The stat signature of ``path`` (not following a symlink); [] when it does not exist."""
    try:
        st = os.lstat(path)
    except GONE:
        return []
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _object(path: str, mode: int) -> tuple[str, str]:
    """The git mode and blob id of a file or symlink, as ``git hash-object`` gives them."""
    from hashlib import sha1  # only when a file is read

    try:
        if S_ISLNK(mode):
            target = os.readlink(os.fsencode(path))
            return "120000", sha1(b"blob %d\0%s" % (len(target), target)).hexdigest()
        for _ in range(3):  # a file written while it is read: read it again
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                blob = sha1(b"blob %d\0" % size)
                read = 0
                while chunk := handle.read(1 << 20):
                    blob.update(chunk)
                    read += len(chunk)
            if read == size:
                return ("100755" if mode & 0o100 else "100644"), blob.hexdigest()
    except GONE:
        raise
    except OSError as exc:
        raise TreeError(f"cannot read {path}: {exc.strerror}") from None
    raise TreeError(f"cannot read {path}: it keeps changing while it is read")


def _digest(records: Records, without: frozenset[bytes] = frozenset()) -> str:
    """The tree hash: sha256 over the records in path order, those of ``without`` left out."""
    total = sha256()
    for path in sorted(records):
        if path in without:
            continue
        mode, oid = records[path]
        total.update(b"%s %s %s\0" % (mode.encode(), oid.encode(), path))
    return total.hexdigest()


def _git_top(where: str, tops: dict[str, str | None] | None) -> str | None:
    """The git work tree holding directory ``where``, found by looking for ``.git`` upwards;
    None outside git. ``tops`` remembers the answer for every directory looked at."""
    seen: list[str] = []
    top: str | None = None
    while True:  # where, then each of its parents
        if tops is not None and where in tops:
            top = tops[where]
            break
        seen.append(where)
        if os.path.exists(os.path.join(where, ".git")):
            top = where
            break
        parent = os.path.dirname(where) or "."
        if parent == where or where == ".":
            break
        where = parent
    if tops is not None:
        for directory in seen:
            tops[directory] = top
    return top


# -- in git -----------------------------------------------------------------------------------

class _GitAnswer:
    """What git says about a directory ``where`` of work tree ``top`` ("": all of it):
    ``git status``, parsed, and, asked only when needed, the index (``git ls-files -s``)."""

    __slots__ = ("top", "where", "_specs", "head", "changes", "_paths", "_renamed", "_index")

    def __init__(self, top: str, where: str, query: GitQuery | None = None):
        """``query``: the status query already started (see :func:`_ask`), else asked now."""
        self.top = top
        self.where = where
        self._specs = [where] if where else []  # pathspecs (literal), relative to top
        out = (query or _ask(top, where)).output()
        self.head = b""
        # (path, path it was renamed from or b"", work tree differs from the index, raw entry)
        self.changes: list[tuple[bytes, bytes, bool, bytes]] = []
        fields = out.split(b"\0")
        fields.reverse()
        while fields:
            entry = fields.pop()
            kind = entry[:1]
            if kind == b"1":  # 1 XY sub mH mI mW hH hI path
                self.changes.append((entry.split(b" ", 8)[8], b"", entry[3:4] != b".", entry))
            elif kind == b"2":  # 2 XY sub mH mI mW hH hI score path, then the original path
                orig = fields.pop()
                self.changes.append((entry.split(b" ", 9)[9], orig, entry[3:4] != b".",
                                     entry + b"\0" + orig))
            elif kind == b"u":  # unmerged: u XY sub m1 m2 m3 mW h1 h2 h3 path
                self.changes.append((entry.split(b" ", 10)[10], b"", True, entry))
            elif kind == b"?":  # untracked; a repository inside the tree ends with a slash
                self.changes.append((entry[2:], b"", True, entry))
            elif entry.startswith(b"# branch.oid "):
                self.head = entry
        self.changes.sort()
        self._paths = [c[0] for c in self.changes]
        self._renamed = [c for c in self.changes if c[1]]
        self._index: tuple[list[bytes], list[tuple[bytes, bytes, bytes]]] | None = None

    def covers(self, prefix: str) -> bool:
        """Whether the answer is about directory ``prefix`` (all of it)."""
        where = self.where
        return not where or prefix == where or prefix.startswith(where + "/")

    def changed(self, pre: bytes) -> list[tuple[bytes, bytes, bool, bytes]]:
        """The changes whose path (or path renamed from) starts with ``pre``."""
        first, last = _span(self._paths, pre)
        return self.changes[first:last] + [c for c in self._renamed
                                           if c[1].startswith(pre) and not c[0].startswith(pre)]

    def index(self, pre: bytes) -> list[tuple[bytes, bytes, bytes, bytes]]:
        """(path, mode, object id, stage) of the index entries whose path starts with ``pre``."""
        if self._index is None:
            from liveforge.util.git import git_bytes

            out = git_bytes(self.top, "--literal-pathspecs", "ls-files", "-s", "-z", "--",
                            *self._specs)
            paths: list[bytes] = []
            meta: list[tuple[bytes, bytes, bytes]] = []
            for entry in out.split(b"\0"):
                if entry:
                    info, path = entry.split(b"\t", 1)
                    mode, oid, stage = info.split(b" ")
                    paths.append(path)
                    meta.append((mode, oid, stage))
            self._index = (paths, meta)  # in git's order: by path, as bytes
        paths, meta = self._index
        first, last = _span(paths, pre)
        return [(paths[i], *meta[i]) for i in range(first, last)]


def _ask(top: str, where: str) -> GitQuery:
    """Start ``git status`` about directory ``where`` ("": all) of work tree ``top``."""
    from liveforge.util.git import GitQuery

    # no optional locks: a look at the tree never writes the repository's index
    return GitQuery(top, "--no-optional-locks", "--literal-pathspecs", "status",
                    "--porcelain=v2", "-z", "--untracked-files=all", "--branch",
                    "--no-ahead-behind", "--ignore-submodules=dirty", "--",
                    *([where] if where else []))


def _pairs(value: Any) -> list[list[str]]:
    """The questions a cache keeps (see :meth:`TreeHasher.ask_ahead`): [work tree, directory]
    pairs of strings; anything else is none."""
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in value):
        return []
    return value


def _entry_ok(entry: Any) -> bool:
    """Whether a cached tree entry has the shape this module writes: its hash, and each file's
    record: its stat signature and then its mode and object id (only the signature of what is
    not source, nothing for a file deleted)."""
    return (isinstance(entry, dict) and isinstance(entry.get("hash"), str)
            and isinstance(entry.get("subs"), dict) and isinstance(entry.get("files"), dict)
            and all(type(r) is list and (len(r) in (0, 5) or len(r) == 7 and type(r[5]) is str
                                             and type(r[6]) is str)
                    for r in entry["files"].values()))


def _span(paths: list[bytes], pre: bytes) -> tuple[int, int]:
    """The slice of the sorted ``paths`` that start with ``pre`` (empty, or ending in "/")."""
    if not pre:
        return 0, len(paths)
    return bisect_left(paths, pre), bisect_left(paths, pre[:-1] + b"0")  # "/" + 1 is "0"


def _plain_patterns(tree: str) -> list[str]:
    """Patterns of the tree's own ``.gitignore`` and ``.liveforgeignore`` (outside git), as
    file names are: bytes, decoded as :func:`os.fsdecode` does."""
    patterns: list[str] = []
    for name in (".gitignore", ".liveforgeignore"):
        try:
            text = os.fsdecode(read_bytes(os.path.join(tree, name)))
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


def _scan(root: str) -> tuple[list[Stat], list[str]]:
    """(relative path, mode, size, mtime_ns, ctime_ns, inode) of every entry under ``root``,
    sorted, and the directories holding a ``.git`` (repositories of their own: not entered)."""
    out: list[Stat] = []
    repos: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        prefix = f"{rel}/" if rel else ""
        found: list[Stat] = []
        try:
            entries = os.scandir(f"{root}/{rel}" if rel else root)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            for entry in entries:
                if entry.name == ".git":
                    if not rel:
                        continue
                    repos.append(rel)
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                found.append((prefix + entry.name, st.st_mode, st.st_size, st.st_mtime_ns,
                              st.st_ctime_ns, st.st_ino))
            else:
                out += found
                stack += [s[0] for s in found if S_ISDIR(s[1])]
    out.sort()
    return out, repos


class TreeHasher:
    """Hash source trees, caching results in a JSON file (``.liveforge/treecache.json``).

    One hasher serves a workspace: its components' trees and the trees inside them (an extra
    component's packages). It may be used from several threads (steps building side by side)."""

    def __init__(self, cache_file: Path | None):
        self.cache_file = cache_file
        self._lock = RLock()
        self.trees: dict[str, Any] = {}
        self.dirty = False
        # directory -> the git work tree holding it; kept until save(), the end of one plan
        self._git_tops: dict[str, str | None] = {}
        # while planning (see planning()): work tree -> git's answers, and the trees to ask for
        self._answers: dict[str, list[_GitAnswer]] | None = None
        self._hints: list[str] = []
        # work tree -> the directory asked about and git's status query, started by planning()
        self._pending: dict[str, tuple[str, GitQuery]] = {}
        # the questions (work tree, directory) the last plan asked, as the cache keeps them, and
        # those asked again ahead of this plan (see ask_ahead())
        self.asked: list[list[str]] = []
        self._ahead: dict[tuple[str, str], GitQuery] = {}
        if cache_file is not None:
            try:
                cache = json.loads(read_bytes(cache_file))
                if cache.get("format") == CACHE_FORMAT and isinstance(cache["trees"], dict):
                    self.trees = cache["trees"]
                    self.asked = _pairs(cache.get("asked"))
            except (OSError, ValueError, AttributeError, KeyError):
                self.trees = {}

    def ask_ahead(self) -> None:
        """Ask git now the questions the last plan asked (the cache keeps them): git then works
        while the caller loads what it needs to plan, and the next plan that asks the same
        question takes its answer. Only for a plan that follows at once (see
        :meth:`forget_ahead`)."""
        with self._lock:
            for top, where in self.asked:
                if (top, where) not in self._ahead and os.path.isabs(top) and os.path.isdir(top):
                    self._ahead[(top, where)] = _ask(top, where)

    def forget_ahead(self) -> None:
        """Stop the questions asked ahead and not yet taken: their answers are no longer fresh
        (the caller waited) or not needed."""
        with self._lock:
            for query in self._ahead.values():
                query.close()
            self._ahead = {}

    def planning(self, trees: Iterable[Path] = (), remember: bool = False) -> None:
        """Until save(): git is asked once per work tree, about all of ``trees`` in it and the
        trees inside them (one plan hashes many trees, and nothing changes them meanwhile).
        The questions are asked at once: git answers while the caller does other work.
        ``remember``: the cache keeps the questions, for :meth:`ask_ahead` (the plan of a
        build, which the next run makes again)."""
        with self._lock:
            self._answers = {}
            self._hints = [os.fspath(t) for t in trees]
            self._pending = {}
            for hint in self._hints:
                top = _git_top(hint, self._git_tops) if os.path.isdir(hint) else None
                if top is not None and top not in self._pending:
                    where = self._common(top, hint[len(top) + 1:])
                    query = self._ahead.pop((top, where), None)
                    self._pending[top] = (where, query or _ask(top, where))
            asked = [[top, where] for top, (where, _) in sorted(self._pending.items())]
            if remember and asked != self.asked:
                self.asked = asked
                self.dirty = True

    def save(self) -> None:
        """End the plan (see planning()) and write the cache if it changed."""
        with self._lock:
            self._git_tops.clear()
            self._answers = None
            self._hints = []
            for _where, query in self._pending.values():  # asked, never needed
                query.close()
            self._pending = {}
            self.forget_ahead()
            if self.cache_file is None or not self.dirty:
                return
            try:  # a cache: one that cannot be written (a full disk) is hashed again
                self.cache_file.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(self.cache_file, json.dumps(
                    {"format": CACHE_FORMAT, "trees": self.trees, "asked": self.asked},
                    separators=(",", ":")))
            except OSError:
                return
            self.dirty = False

    def hash_all(self, trees: Iterable[Path], without: Iterable[str] = ()) -> list[str]:
        """The content hashes of ``trees``. Within a plan, as :meth:`hash`; else they are
        hashed as a plan of their own (git asked once per work tree), saved at the end."""
        trees = list(trees)
        skip = frozenset(without)
        with self._lock:
            if self._answers is not None:
                return [self._hash(tree, skip) for tree in trees]
            self.planning(trees)
            try:
                return [self._hash(tree, skip) for tree in trees]
            finally:
                self.save()

    def hash(self, tree: Path, without: Iterable[str] = ()) -> str:
        """The content hash of ``tree`` (a missing tree hashes as ``missing``). ``without``:
        files directly in the tree left out of the hash (the caller hashes what of them counts,
        as an extra package's ``package.toml`` without its licence)."""
        with self._lock:
            return self._hash(tree, frozenset(without))

    def _hash(self, tree: Path, without: frozenset[str] = frozenset()) -> str:
        key = os.fspath(tree)
        if not os.path.isdir(key):
            return "missing"
        # a hash without some files is an entry of its own: its records are not kept
        entry_key = key if not without else key + "\0without:" + "/".join(sorted(without))
        skip = frozenset(os.fsencode(name) for name in without)
        top = _git_top(key, self._git_tops)
        old = self.trees.get(entry_key)
        if old is not None and not _entry_ok(old):
            old = None  # torn or edited: hashed again, never trusted into a crash
        entry = self._hash_plain(key, old, skip) if top is None else \
            self._hash_git(key, top, old, skip)
        if entry is not old:
            self.trees[entry_key] = entry
            self.dirty = True
        return str(entry["hash"])

    def _same_subs(self, key: str, subs: dict[str, str]) -> bool:
        return all(self._hash(Path(key, name)) == digest for name, digest in subs.items())

    def _read(self, key: str, name: str, sig: list[int], old: dict[str, list[Any]],
              files: dict[str, list[Any]], records: Records) -> None:
        """Record the file ``name`` (stat signature ``sig``), read again only when its
        signature changed."""
        if not (S_ISREG(sig[0]) or S_ISLNK(sig[0])):
            return  # a fifo, socket or device is not source
        prev = old.get(name)
        if prev is not None and prev[:5] == sig:
            mode, oid = prev[5], prev[6]
        else:
            try:
                mode, oid = _object(os.path.join(key, name), sig[0])
            except GONE:
                return  # deleted meanwhile
        files[name] = [*sig, mode, oid]
        records[os.fsencode(name)] = (mode, oid)

    def _hash_plain(self, key: str, entry: dict[str, Any] | None,
                    skip: frozenset[bytes] = frozenset()) -> dict[str, Any]:
        stats, repos = _scan(key)
        signature = sha256(repr((stats, repos)).encode()).hexdigest()  # repr escapes bad names
        if entry and entry.get("sig") == signature and self._same_subs(key, entry["subs"]):
            return entry
        old: dict[str, list[Any]] = entry.get("files", {}) if entry else {}
        patterns = _plain_patterns(key)
        files: dict[str, list[Any]] = {}
        records: Records = {}
        for name, *sig in stats:
            if not _ignored(name, patterns):
                self._read(key, name, sig, old, files, records)
        subs = {name: self._hash(Path(key, name)) for name in repos
                if not _ignored(name, patterns)}
        for name, digest in subs.items():
            records[os.fsencode(name)] = (GITLINK, digest)
        return {"sig": signature, "files": files, "subs": subs, "hash": _digest(records, skip)}

    def _answer(self, top: str, prefix: str) -> _GitAnswer:
        """git's answer about ``prefix`` of work tree ``top``: while planning, one answer about
        every tree of the plan in that work tree."""
        if self._answers is None:
            return _GitAnswer(top, prefix)
        answers = self._answers.setdefault(top, [])
        for answer in answers:
            if answer.covers(prefix):
                return answer
        pending = self._pending.pop(top, None)
        if pending is not None:
            answers.append(_GitAnswer(top, pending[0], pending[1]))
            if answers[-1].covers(prefix):
                return answers[-1]
        answer = _GitAnswer(top, self._common(top, prefix))
        answers.append(answer)
        return answer

    def _common(self, top: str, prefix: str) -> str:
        """The one directory of work tree ``top`` to ask git about: holding ``prefix`` and every
        tree of the plan in ``top`` (git matches many pathspecs slowly)."""
        specs = [prefix]
        for hint in self._hints:
            if hint == top:
                specs.append("")
            elif hint.startswith(top + "/") and _git_top(hint, self._git_tops) == top:
                specs.append(hint[len(top) + 1:])
        return os.path.commonpath(specs) if "" not in specs else ""

    def _hash_git(self, key: str, top: str, entry: dict[str, Any] | None,
                  skip: frozenset[bytes] = frozenset()) -> dict[str, Any]:
        prefix = key[len(top) + 1:] if key != top else ""
        answer = self._answer(top, prefix)
        pre = os.fsencode(prefix) + b"/" if prefix else b""
        under = answer.changed(pre)
        state = sha256(b"\0".join([answer.head, *(c[3] for c in under)])).hexdigest()
        if (entry and entry.get("status") == state
                and all(_signature(os.path.join(key, name)) == value[:5]
                        for name, value in entry["files"].items())
                and self._same_subs(key, entry["subs"])):
            return entry
        old: dict[str, list[Any]] = entry.get("files", {}) if entry else {}
        records: Records = {}
        gitlinks: dict[bytes, str] = {}
        for path, mode, oid, stage in answer.index(pre):
            if stage == b"0":  # an unmerged path's stages: its work-tree file counts
                if mode == GITLINK.encode():
                    gitlinks[path[len(pre):]] = oid.decode()
                else:
                    records[path[len(pre):]] = (mode.decode(), oid.decode())
        files: dict[str, list[Any]] = {}
        nested: list[bytes] = []
        for path, _, differs, _ in under:
            rel = path[len(pre):]
            if not differs or not path.startswith(pre) or rel in gitlinks:
                continue
            records.pop(rel, None)
            if rel.endswith(b"/"):
                nested.append(rel[:-1])
                continue
            name = os.fsdecode(rel)
            sig = _signature(os.path.join(key, name))
            files[name] = sig  # [] when deleted from the work tree: no record
            if sig:
                self._read(key, name, sig, old, files, records)
        subs: dict[str, str] = {}
        for rel, commit in gitlinks.items():
            name = os.fsdecode(rel)
            if os.path.exists(os.path.join(key, name, ".git")):
                nested.append(rel)
            else:  # not checked out: what the index says
                records[rel] = (GITLINK, commit)
        for rel in nested:
            name = os.fsdecode(rel)
            subs[name] = self._hash(Path(key, name))
            records[rel] = (GITLINK, subs[name])
        return {"status": state, "files": files, "subs": subs, "hash": _digest(records, skip)}
