"""The build cache: what one workspace (or machine) built, another restores instead of building.

A step's *cache key* is its input hash made independent of the workspace (the staging areas'
random identities left out, each dependency by its own key), plus the host toolchain's identity
(:mod:`liveforge.build.toolchain`), the kind's name and version, and the step's name. Its entry
is the step's unit (:mod:`liveforge.build.units`) as a zstd tar, in two content-addressed stores
(:mod:`liveforge.util.blobstore`): the local one (``CACHE_DIR``, by default
``$LIVEFORGE_CACHE_DIR`` or ``~/.cache/liveforge/steps``) and, with ``CACHE_URL``, a shared one
over HTTP.

Settings come from configure-build (so build.env), each overridden by an environment variable
of the same name: ``CACHE_MODE`` (``on``; ``readonly``: restore but store nothing; ``off``;
``--cache-readonly`` and ``--no-cache`` say it for one run), ``CACHE_URL``, ``CACHE_DIR``
(``LIVEFORGE_CACHE_DIR`` too), ``CACHE_MAX_SIZE`` (the local store's limit, default 10G),
``CACHE_TIMEOUT`` (seconds a read of the shared store may wait, default 10) and
``CACHE_PUSH_DIRTY`` (``yes``: push steps of dirty trees too).

Trust: nothing from a store is used before its digest matched; anything wrong with an entry
(missing, corrupt, truncated, slow, refused) is a warning, and the step is built. A step whose
output holds the workspace's path is never stored; a step built from a work tree with
uncommitted changes is stored locally but pushed only with ``CACHE_PUSH_DIRTY=yes``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.toolchain import host_identity, tool_versions
from liveforge.build.units import leaks, pack, unpack
from liveforge.util.blobstore import HttpStore, LocalStore, StoreError, credentials
from liveforge.util.errors import InputError, LiveforgeError
from liveforge.util.hashing import json_digest

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from liveforge.build.graph import Plan, Step
    from liveforge.build.workspace import Workspace
    from liveforge.util.events import Reporter

KEY_FORMAT = 1
MODES = ("on", "readonly", "off")
SETTINGS = ("CACHE_MODE", "CACHE_URL", "CACHE_DIR", "CACHE_MAX_SIZE", "CACHE_TIMEOUT",
            "CACHE_PUSH_DIRTY")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, what: str) -> int:
    """``10G``, ``500M``, ``123`` (bytes) -> bytes; an error naming ``what``."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (value[:-1], value[-1]) if value[-1:] in SIZE_UNITS else (value, "")
    try:
        size = float(number) * SIZE_UNITS[unit]
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a size (like 10G, 500M or 123456)") from None
    if size < 0:
        raise InputError(f"{what}: {text!r} is negative")
    return int(size)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    local: Path
    max_size: int
    url: str
    timeout: float
    push_dirty: bool
    mode: str            # on, readonly (no writes anywhere), off


def cache_settings(ws: Workspace | None, mode: str | None = None) -> CacheSettings:
    """The cache settings of a workspace (or, with None, of the environment alone): each the
    environment's, else build.env's (configure-build's), else the default."""

    def value(key: str, default: str = "") -> str:
        if key in os.environ:
            return os.environ[key]
        return ws.env_value(key, default) if ws is not None else default

    local = os.environ.get("LIVEFORGE_CACHE_DIR") or value("CACHE_DIR") or \
        str(Path.home() / ".cache" / "liveforge" / "steps")
    timeout_text = value("CACHE_TIMEOUT", "10")
    try:
        timeout = float(timeout_text)
        if not timeout > 0:
            raise ValueError
    except ValueError:
        raise InputError(f"CACHE_TIMEOUT: {timeout_text!r} is not a number of seconds "
                         "above 0") from None
    cache_mode = mode or (ws.cache_mode if ws is not None else None) or \
        value("CACHE_MODE", "on").strip().lower()
    if cache_mode not in MODES:
        raise InputError(f"CACHE_MODE: {cache_mode!r} is not one of {', '.join(MODES)}")
    url = value("CACHE_URL").strip()
    if url and not url.startswith(("http://", "https://")):
        raise InputError(f"CACHE_URL: {url!r} is not an http:// or https:// URL")
    return CacheSettings(
        local=Path(local).expanduser(),
        max_size=parse_size(value("CACHE_MAX_SIZE", "10G"), "CACHE_MAX_SIZE"),
        url=url, timeout=timeout,
        push_dirty=value("CACHE_PUSH_DIRTY", "no").lower() in ("yes", "1", "true"),
        mode=cache_mode)


# -- keys -------------------------------------------------------------------------------------
def step_keys(ws: Workspace, plan: Plan, memo: Path | None = None,
              scopes: dict[str, str] | None = None) -> dict[str, str]:
    """Every step's cache key (see the module's text); ``scopes`` gets each step's key
    without its own inputs (the scope of its parts' keys: :class:`StepParts`)."""
    host = host_identity()
    tools: dict[tuple[str, ...], dict[str, str]] = {}
    keys: dict[str, str] = {}
    for name in plan.order:
        step = plan.steps[name]
        inputs = plan.inputs[name]
        wanted = tuple(step.kind.toolchain(ws, step.spec))
        if wanted not in tools:
            tools[wanted] = tool_versions(list(wanted), memo)
        scope = {
            "format": KEY_FORMAT, "step": name, "kind": step.kind.name,
            "kind_version": getattr(step.kind, "version", 1),
            "env": inputs.env, "settings": inputs.settings,
            "deps": {d: keys[d] for d in step.deps},
            "host": host, "tools": tools[wanted]}
        keys[name] = json_digest({**scope, "own": {k: v for k, v in inputs.own.items()
                                                   if k != "proto"}})
        if scopes is not None:
            scopes[name] = json_digest(scope)
    return keys


def workspace_needles(ws: Workspace) -> list[bytes]:
    """The workspace's absolute path as written and as resolved: what no cached output may
    hold."""
    paths = {str(ws.root), os.path.realpath(ws.root)}
    return sorted(os.fsencode(p) for p in paths if len(p) > 1)


# -- the cache --------------------------------------------------------------------------------
class StepCache:
    """The stores of one run, as the settings say; warnings go to ``reporter``."""

    def __init__(self, ws: Workspace, settings: CacheSettings, reporter: Reporter):
        self.ws = ws
        self.settings = settings
        self.reporter = reporter
        self.local = LocalStore(settings.local)
        self.shared: HttpStore | None = None
        if settings.url and not ws.offline:
            auth = None if settings.mode == "readonly" else credentials(settings.url,
                                                                        os.environ)
            self.shared = HttpStore(settings.url, auth, settings.timeout)
        self.needles = workspace_needles(ws)
        self.scopes: dict[str, str] = {}

    @property
    def writes(self) -> bool:
        return self.settings.mode == "on"

    def keys(self, plan: Plan) -> dict[str, str]:
        return step_keys(self.ws, plan, self.settings.local / "toolchain.json", self.scopes)

    def parts(self, step: Step) -> StepParts:
        """The cache of the step's parts (after :meth:`keys`)."""
        return StepParts(self, step, self.scopes[step.name])

    def cacheable(self, step: Step) -> bool:
        return step.kind.cacheable(self.ws, step.spec, step.phase)

    # -- restoring ---------------------------------------------------------------------------
    def restore(self, step: Step, key: str, unit: Path, part: str = "") -> str | None:
        """Unpack the entry of ``key`` into the empty folder ``unit`` (the step's unit, or a
        ``part`` of it): from the local store, else from the shared one (kept locally then).
        Returns the store's name, or None (a miss, or an entry that is unusable: a warning
        says why; the folder is empty again)."""
        what = f"{step.name} {part}".strip()
        record = self.local.record(key)
        if record is not None:
            try:
                unpack(self.local.archive(record), unit)
                self.local.touch(key)
                self.local.count(local_hits=1)
                self._restored(step, key, "local", part)
                return "local"
            except LiveforgeError as exc:
                self.reporter.warn(f"{what}: the local cache entry {key[:16]} is "
                                   f"unusable ({exc}); trying further")
                _empty(unit)
        shared = self.shared  # another thread may give up on it meanwhile
        if shared is not None:
            try:
                found = self._from_shared(shared, key, unit)
            except LiveforgeError as exc:
                self.reporter.warn(f"{what}: the shared cache entry {key[:16]} is "
                                   f"unusable ({exc}); building it")
                self._give_up(exc)
                _empty(unit)
                found = False
            if found:
                self._restored(step, key, "shared", part)
                return "shared"
        self.local.count(misses=1)
        return None

    def _restored(self, step: Step, key: str, store: str, part: str) -> None:
        """The ``restored`` event of a step (the scheduler emits it) or of a part."""
        if part:
            self.reporter.emit("restored", component=step.name, part=part, key=key,
                               store=store)

    def _from_shared(self, shared: HttpStore, key: str, unit: Path) -> bool:
        record = shared.record(key)
        if record is None:
            return False
        partial = self.local.temp(record.archive)
        try:
            shared.download(record, partial)
            self.local.count(shared_hits=1, bytes_downloaded=record.size)
            if self.writes:
                self.local.add(key, partial, record.archive)
                unpack(self.local.archive(record), unit)
            else:
                unpack(partial, unit)
        finally:
            partial.unlink(missing_ok=True)
        return True

    def _give_up(self, exc: BaseException) -> None:
        """After a server that does not answer at all, ask it nothing more in this run."""
        if getattr(exc, "unreachable", False) and self.shared is not None:
            self.reporter.warn(f"the shared cache {self.shared.url} does not answer: not "
                               "asked again in this run")
            self.shared = None

    def lookup(self, key: str) -> str | None:
        """Which store has an entry for ``key`` (``local``, ``shared``), None for neither;
        a shared store that does not answer counts as not having it."""
        if self.local.record(key) is not None:
            return "local"
        shared = self.shared
        if shared is not None:
            try:
                if shared.has(f"ac/{key}"):
                    return "shared"
            except StoreError as exc:
                self._give_up(exc)
                return None
        return None

    # -- storing -----------------------------------------------------------------------------
    def store(self, step: Step, key: str, unit: Path, part: str = "") -> None:
        """Pack the unit (or a ``part`` of it) into the local store and push it to the shared
        one when allowed. Nothing is stored when it holds the workspace's path (a warning
        names the files); a failure to store is a warning."""
        if not self.writes:
            return
        what = f"{step.name} {part}".strip()
        extra = {"part": part} if part else {}
        leaked = leaks(unit, self.needles)
        if leaked:
            more = f" and {len(leaked) - 3} more" if len(leaked) > 3 else ""
            self.reporter.warn(f"{what}: its output holds the workspace path "
                               f"{self.ws.root} ({', '.join(leaked[:3])}{more}): not cached")
            self.reporter.emit("uncacheable", component=step.name, key=key,
                               why="workspace path", files=leaked, **extra)
            return
        partial = self.local.temp(key)
        try:
            pack(unit, partial)
            record = self.local.add(key, partial)
        except (LiveforgeError, OSError) as exc:
            self.reporter.warn(f"{what}: cannot store it in the local cache "
                               f"{self.settings.local}: {exc}")
            return
        finally:
            partial.unlink(missing_ok=True)
        self.local.count(stored=1)
        self.reporter.emit("stored", component=step.name, key=key, store="local",
                           size=record.size, **extra)
        self.push(step, key, part)
        removed, freed = self.local.prune(self.settings.max_size)
        if removed:
            self.reporter.info(f"cache: pruned {removed} entries ({freed} bytes) to stay "
                               f"under {self.settings.max_size} bytes")

    def push(self, step: Step, key: str, part: str = "") -> bool:
        """Upload the local entry of ``key`` to the shared store, when there is one that
        takes writes and the step's tree is clean (or CACHE_PUSH_DIRTY=yes). True when it
        was uploaded."""
        shared = self.shared
        if shared is None or not shared.writable or not self.writes:
            return False
        if not self.settings.push_dirty and self.dirty(step):
            self.reporter.info(f"{step.name}{f' {part}' if part else ''}: {step.spec.path} has "
                               "uncommitted changes: not pushed to the shared cache "
                               "(CACHE_PUSH_DIRTY=yes pushes it)")
            return False
        record = self.local.record(key)
        if record is None:
            return False
        try:
            archive = self.local.archive(record)
            uploaded = shared.upload(key, record, archive)
        except LiveforgeError as exc:
            self.reporter.warn(f"{step.name}: not pushed to the shared cache: {exc}")
            self._give_up(exc)
            return False
        if uploaded:
            self.local.count(pushed=1, bytes_uploaded=record.size)
            self.reporter.emit("stored", component=step.name, key=key, store="shared",
                               size=record.size, **({"part": part} if part else {}))
        return uploaded

    def dirty(self, step: Step) -> bool:
        from liveforge.util.git import tree_is_dirty

        path = step.spec.path
        return path is not None and path.is_dir() and tree_is_dirty(path)


def _empty(folder: Path) -> None:
    from liveforge.util.scratch import remove_tree

    remove_tree(folder)
    folder.mkdir(parents=True)


class StepParts:
    """The build cache of the parts of one step's output (the extra kind's package variants):
    each part's key is its own description under the step's *scope*, the step's key without
    the step's own inputs (its dependencies' keys, the toolchain, the kind's version)."""

    def __init__(self, cache: StepCache, step: Step, scope: str):
        self.cache = cache
        self.step = step
        self.scope = scope

    def key(self, part: Mapping[str, str]) -> str:
        return json_digest({"format": KEY_FORMAT, "scope": self.scope, "part": dict(part)})

    def restore(self, part: Mapping[str, str], dest: Path) -> bool:
        """Put the part's cached tree at ``dest`` (replacing what is there); False when it
        is not cached (or unusable: a warning says why)."""
        from liveforge.util.scratch import make_temp_dir, remove_temp, replace_tree

        tmp = make_temp_dir(dest.parent, dest.name)
        try:
            if self.cache.restore(self.step, self.key(part), tmp, _label(part)) is None:
                return False
            replace_tree(tmp, dest)
            return True
        finally:
            remove_temp(tmp)

    def store(self, part: Mapping[str, str], src: Path) -> None:
        self.cache.store(self.step, self.key(part), src, _label(part))


def _label(part: Mapping[str, str]) -> str:
    """How warnings and events name a part: its description without its inputs' hash."""
    return "/".join(str(v) for k, v in part.items() if k != "inputs")


def open_cache(ws: Workspace, reporter: Reporter) -> StepCache | None:
    """The run's cache, None when it is off (``--no-cache``, ``CACHE_MODE=off``)."""
    if ws.cache_mode == "off":
        return None
    settings = cache_settings(ws)
    return None if settings.mode == "off" else StepCache(ws, settings, reporter)
