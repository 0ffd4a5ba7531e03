"""The workspace: its paths, its definition (config.py), build.env and the lock."""

from __future__ import annotations

import os
from pathlib import Path

from liveforge.build.config import (
    BUILD_CONFIG_FILE,
    BUILD_ENV_FILE,
    PLATFORM_FILE,
    PROJECTS_FILE,
    UNHASHED_KEYS,
    ComponentSpec,
    load_platform,
    load_projects,
)
from liveforge.util.errors import InputError, LockError
from liveforge.util.fileio import optional_file
from liveforge.util.keyvalue import parse_keyvalue
from liveforge.util.toml import Lines
from liveforge.util.treehash import TreeHasher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from liveforge.build.config import Kind

LOCK_FILE = ".liveforge.lock"


def jobs_value(text: str, where: Path | None) -> int:
    """MAX_JOBS's value ``text``, as ``where`` (a file, or None: the environment) gives it."""
    try:
        return max(1, int(text))
    except ValueError:
        raise InputError(f"MAX_JOBS={text!r} is not a number", where) from None


def default_max_jobs() -> int:
    """Parallel jobs when neither -j nor MAX_JOBS says: one per CPU, at most one per 2 GiB."""
    cpus = os.cpu_count() or 1
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = 2.0 * cpus
    return max(1, min(cpus, int(mem_gib // 2)))



class Workspace:
    """A platform's definition and build state, rooted at ``root``."""

    def __init__(self, root: Path, kinds: Mapping[str, Kind], *, jobs: int | None = None,
                 offline: bool = False, cache_mode: str | None = None,
                 plan_ahead: bool = False):
        """``kinds``: the known kinds (``liveforge.build.kinds.known_kinds()``), which check
        their components' settings as platform.toml is loaded. The run's settings from the
        command line: ``jobs`` (``-j``: parallel jobs, over MAX_JOBS) and ``offline``
        (``--offline``: any download is an error) and ``cache_mode`` (the build cache:
        ``readonly`` with ``--cache-readonly``, ``off`` with ``--no-cache``; None: as
        CACHE_MODE says). ``plan_ahead``: a plan of the build follows at once (``world``,
        ``status``...), so git is asked about the source trees now, while the rest loads (see
        :meth:`TreeHasher.ask_ahead`)."""
        self.root = root.resolve()
        self.toml_path = self.root / PLATFORM_FILE
        if not self.toml_path.is_file():
            raise InputError(f"no {PLATFORM_FILE} here: not a liveforge workspace", self.root)
        self._hasher: TreeHasher | None = None
        if plan_ahead:
            self.hasher.ask_ahead()
        try:
            self.platform, self.components = load_platform(self.toml_path, kinds)
            self.projects = load_projects(self.root / PROJECTS_FILE)
            config = self.root / BUILD_CONFIG_FILE
            self.build_config = parse_keyvalue(config) if optional_file(config) else {}
            env_file = self.root / BUILD_ENV_FILE
            self.build_env = parse_keyvalue(env_file) if optional_file(env_file) else {}
        except BaseException:
            if self._hasher is not None:
                self._hasher.forget_ahead()
            raise
        self.jobs_override = jobs
        self.offline = offline
        self.cache_mode = cache_mode

    @property
    def hasher(self) -> TreeHasher:
        """The shared source-tree hasher (stat-cached in .liveforge/treecache.json)."""
        if self._hasher is None:
            self._hasher = TreeHasher(self.state_dir / "treecache.json")
        return self._hasher

    # -- paths ------------------------------------------------------------------------------
    @property
    def proto(self) -> Path:
        return self.root / "proto"

    @property
    def proto_strap(self) -> Path:
        return self.root / "proto.strap"

    @property
    def manifest_d(self) -> Path:
        return self.root / "manifest.d"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def state_dir(self) -> Path:
        return self.root / ".liveforge"

    @property
    def cache_dir(self) -> Path:
        explicit = self.env_value("LIVEFORGE_CACHE") or os.environ.get("LIVEFORGE_CACHE")
        if explicit:
            return Path(explicit)
        xdg = os.environ.get("XDG_CACHE_HOME")
        if xdg:
            return Path(xdg) / "liveforge"
        return self.root / "cache"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def iso_dir(self) -> Path:
        return self.root / "output-iso"

    @property
    def usb_dir(self) -> Path:
        return self.root / "output-usb"

    def stamp_path(self, name: str) -> Path:
        return self.root / f"0-{name}-stamp"

    def overlay_dirs(self) -> list[Path]:
        return [self.root / o for o in self.platform.overlays]

    def component_path(self, spec: ComponentSpec) -> Path:
        """The component's tree; an error naming platform.toml's line when it is missing."""
        if spec.path is None:
            raise InputError(f"component {spec.name!r} has no path", self.toml_path, spec.line)
        if not spec.path.is_dir():
            line = Lines(self.toml_path).key(f"components.{spec.name}", "path")
            hint = " (run 'liveforge configure' to clone it)" if any(
                self.root / "projects" / p.path == spec.path for p in self.projects) else ""
            raise InputError(f"component {spec.name!r}: path {spec.settings.get('path')!r} "
                             f"is not a directory{hint}", self.toml_path, line)
        return spec.path

    # -- build settings ---------------------------------------------------------------------
    def env_value(self, key: str, default: str = "") -> str:
        return self.build_env.get(key, self.build_config.get(key, default))

    @property
    def debug(self) -> bool:
        return self.env_value("DEBUG", "no").lower() in ("yes", "1", "true")

    @property
    def max_jobs(self) -> int:
        if self.jobs_override:
            return self.jobs_override
        for source, where in ((os.environ.get("MAX_JOBS"), None),
                              (self.build_env.get("MAX_JOBS"), self.root / BUILD_ENV_FILE)):
            if source:
                return jobs_value(source, where)
        return default_max_jobs()

    def platform_dirname(self, stamp: str) -> str:
        return f"platform-debug-{stamp}" if self.debug else f"platform-{stamp}"

    def component_env(self, spec: ComponentSpec) -> dict[str, str]:
        """The build.env keys this component sees: DEBUG plus those in its ``env`` list."""
        keys = {"DEBUG"}
        if "*" in spec.env:
            keys |= set(self.build_env) | set(self.build_config)
        else:
            keys |= set(spec.env)
        keys -= UNHASHED_KEYS
        return {k: self.env_value(k, "no" if k == "DEBUG" else "") for k in sorted(keys)}

    # -- the lock ---------------------------------------------------------------------------
    def lock(self, wait: bool = False) -> WorkspaceLock:
        """Hold the workspace lock (``with ws.lock():``); fail at once naming the holder's PID
        unless ``wait``. When another run holds it, what git was asked ahead is not used: the
        run ends, or its answer is no longer fresh when the wait ends (git is asked again)."""
        return WorkspaceLock(self.root, wait,
                             self._hasher.forget_ahead if self._hasher is not None else None)


class WorkspaceLock:
    """The workspace lock as a context manager (a class: contextlib is not imported for it)."""

    __slots__ = ("root", "wait", "when_busy", "fd")

    def __init__(self, root: Path, wait: bool, when_busy: Callable[[], None] | None = None):
        """``when_busy``: called when another run holds the lock (before failing or waiting)."""
        self.root = root
        self.wait = wait
        self.when_busy = when_busy
        self.fd = -1

    def __enter__(self) -> None:
        import errno
        import fcntl
        import stat

        path = self.root / LOCK_FILE
        try:  # never through a link: the PID is written into the file
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.EISDIR):
                raise
            fd = -1
        if fd < 0 or not stat.S_ISREG(os.fstat(fd).st_mode):
            if fd >= 0:
                os.close(fd)
            raise LockError(f"{path}: the workspace lock is not a plain file")
        self.fd = fd
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.when_busy is not None:
                    self.when_busy()
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                if not self.wait:
                    raise LockError(
                        f"workspace {self.root} is in use by liveforge PID {holder} "
                        "(use --wait to wait for it)") from None
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            self.fd = -1
            os.close(fd)
            raise

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

