"""The one small interface every component kind implements, and the context it builds in.

A kind turns a component spec into *phases* (most have one, ``main``; ``extra`` adds ``strap``,
built before every other component). For each phase the engine asks the kind for its named
input hashes (the stamp combines them with build.env keys, settings and dependency hashes), then
calls :meth:`Kind.build` with a :class:`BuildContext` whose :meth:`BuildContext.run` logs output,
honours cancellation and raises :class:`~liveforge.util.errors.BuildError` on failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from liveforge.util.errors import BuildError
from liveforge.util.proc import ProcessGroup

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import IO, Protocol

    from liveforge.build.config import ComponentSpec
    from liveforge.build.workspace import Workspace
    from liveforge.util.events import Reporter
    from liveforge.util.fetch import Fetcher
else:
    Protocol = object  # Kind is a Protocol to mypy, a plain base class at run time

MAIN = "main"
STRAP = "strap"
UNIT_TREE = "tree"            # a step's output folder: its staging tree ...
UNIT_MANIFESTS = "manifest.d"  # ... and its manifest


class Cancelled(BuildError):
    """The run was interrupted; the step writes no stamp."""


@dataclass(slots=True)
class BuildContext:
    """Everything one build step of one component may use. The run's settings come from the
    workspace the command line made (``-j``, ``--offline``: :class:`Workspace`); those of one
    ``liveforge build COMPONENT:PACKAGE [--variant N]`` are ``package`` and ``variant``. The
    engine tells what the step builds against in ``deps``: the input hash of each step it
    depends on, as installed in the staging areas (a kind never reads the engine's stamps)."""

    ws: Workspace
    spec: ComponentSpec
    phase: str
    log: IO[bytes]
    log_path: Path
    jobs: int                    # parallel jobs (MAX_JOBS)
    reporter: Reporter
    procs: ProcessGroup = field(default_factory=ProcessGroup)
    package: str | None = None   # build just this package of the component (forced)
    variant: str | None = None   # and just this variant of it ("32", "64")
    deps: Mapping[str, str] = field(default_factory=dict)  # dependency step -> its input hash
    unit: Path | None = None     # the step's own output folder (see ``stage``)
    parts: PartCache | None = None  # the build cache of parts of the output; None: no cache

    @property
    def area(self) -> Path:
        """The staging area the step builds against: proto/, or proto.strap/ in the strap
        phase. A step reads its dependencies' files there and never installs into it."""
        return self.ws.proto if self.phase == MAIN else self.ws.proto_strap

    @property
    def stage(self) -> Path:
        """Where the step installs (``DESTDIR``): a staging tree of its own, which the engine
        caches and then merges into :attr:`area`. Outside a build (``shell``), the area."""
        return self.area if self.unit is None else self.unit / UNIT_TREE

    @property
    def manifest_dir(self) -> Path:
        """Where a main step writes ``<component>.manifest``: beside its staging tree (the
        engine copies it to manifest.d/), or manifest.d/ outside a build."""
        return self.ws.manifest_d if self.unit is None else self.unit / UNIT_MANIFESTS

    def fetcher(self) -> Fetcher:
        """The step's downloader, noting what it fetches in the log."""
        return make_fetcher(self.ws, self.note)

    @property
    def env_vars(self) -> dict[str, str]:
        """The build.env keys this component sees (DEBUG and its ``env`` list)."""
        return self.ws.component_env(self.spec)

    def base_env(self) -> dict[str, str]:
        """Process environment: the caller's, with proto.strap's tools first on PATH."""
        env = dict(os.environ)
        strap = self.ws.proto_strap
        extra = [str(strap / d) for d in ("usr/bin", "usr/sbin", "bin") if (strap / d).is_dir()]
        env["PATH"] = os.pathsep.join([*extra, env.get("PATH", "/usr/bin:/bin")])
        env["MAX_JOBS"] = str(self.jobs)
        env.update(self.env_vars)
        env.pop("MAKEFLAGS", None)
        env.pop("MFLAGS", None)
        env.pop("MAKELEVEL", None)
        return env

    def note(self, text: str) -> None:
        self.log.write(f"==> {text}\n".encode())
        self.log.flush()

    def run(self, argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None,
            env: Mapping[str, str] | None = None, what: str | None = None) -> None:
        """Run a command with output to the log; raise BuildError (or Cancelled) on failure."""
        if self.procs.cancelled.is_set():
            raise Cancelled("interrupted")
        import subprocess

        args = [str(a) for a in argv]
        self.note(" ".join(args) + (f"   (in {cwd})" if cwd else ""))
        try:
            proc = self.procs.spawn(args, cwd=cwd, env=dict(env) if env is not None
                                    else self.base_env(), stdin=subprocess.DEVNULL,
                                    stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise BuildError(f"cannot run {args[0]}: {exc.strerror}", self.log_path) from None
        status = self.procs.wait(proc)
        if self.procs.cancelled.is_set():
            raise Cancelled("interrupted")
        if status != 0:
            label = what or " ".join(args[:4])
            raise BuildError(f"{label} failed with exit status {status}", self.log_path)


def make_fetcher(ws: Workspace, note: Callable[[str], None] | None = None) -> Fetcher:
    """The one way a kind gets a :class:`~liveforge.util.fetch.Fetcher`: the workspace's
    download cache and build settings (mirrors, trust), and its offline setting."""
    from liveforge.util.fetch import Fetcher

    return Fetcher(ws.cache_dir, offline=ws.offline,
                   config={**ws.build_config, **ws.build_env}, note=note)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where part of what a component ships comes from, for the SBOM: a package of it (the
    project itself, a Debian package, an extra package) with its version, the source it is
    made from (a download URL and its sha256, or a git remote and commit) and its licence (an
    SPDX expression, or NOASSERTION with ``note`` saying why)."""

    name: str
    version: str
    license: str
    source: str = ""        # a download URL or git remote; "" when unknown
    sha256: str = ""        # of the download
    commit: str = ""        # of the git checkout
    note: str = ""          # why the licence is NOASSERTION
    refs: tuple[tuple[str, str], ...] = ()  # each LicenseRef-x in the licence, and its text


class PartCache(Protocol):
    """The build cache of parts of a step's output, for a kind that builds its output in
    parts (the extra kind's package variants). A part is described by its name and its
    inputs (``{"package": .., "variant": .., "inputs": hash}``); the engine adds the step's
    scope: its dependencies, the toolchain, the kind's version."""

    def restore(self, part: Mapping[str, str], dest: Path) -> bool:
        """Put the part's cached tree at ``dest``; False when it has none."""
        ...

    def store(self, part: Mapping[str, str], src: Path) -> None:
        """Keep the tree ``src`` as the part's."""
        ...


class Kind(Protocol):
    """What every component kind implements: each kind subclasses it and defines the hooks
    without a body here; the others have a default."""

    name: str
    version: int = 1  # part of every cache key: raise it when the kind's output changes

    def validate(self, spec: ComponentSpec) -> list[tuple[str | None, str]]:
        """Problems with the component's platform.toml table: (key or None, message)."""
        ...

    def phases(self, spec: ComponentSpec) -> Sequence[str]:
        """The component's build phases, e.g. ``["main"]`` or ``["strap", "main"]``."""
        ...

    def inputs(self, ws: Workspace, spec: ComponentSpec, phase: str) -> dict[str, str]:
        """Named hashes of the step's own inputs (source tree, lock entries, packages...)."""
        ...

    def configure(self, ws: Workspace, spec: ComponentSpec, reporter: Reporter,
                  refresh: bool) -> None:
        """``liveforge configure``, after the projects and build.env: pin what the component
        fetches (``refresh``: ``--refresh-lock``, pin it again). By default nothing."""
        return None

    def build(self, ctx: BuildContext) -> None:
        """Build the step and install into the proto area (and write its manifest)."""
        ...

    def toolchain(self, ws: Workspace, spec: ComponentSpec) -> Sequence[str]:
        """The host commands a build of the component may call whose version can change its
        output (part of the cache key); by default the C and C++ compilers and binutils, as
        build.env or the environment names them."""
        return [ws.env_value("CC") or os.environ.get("CC") or "cc",
                ws.env_value("CXX") or os.environ.get("CXX") or "c++", "ld", "as", "ar"]

    def cacheable(self, ws: Workspace, spec: ComponentSpec, phase: str) -> bool:
        """Whether the step's output may come from (and go to) the build cache. By default
        always: its inputs, the toolchain and the kind's version are its key."""
        return True

    def update(self, ctx: BuildContext) -> bool:
        """Bring sources up to date; True when something changed. By default nothing to
        pull."""
        return False

    def clean(self, ctx: BuildContext) -> None:
        """Remove the component's build products. By default nothing."""
        return None

    def check(self, ctx: BuildContext) -> None:
        """The component's own checks (``liveforge check``)."""
        ...

    def shell_env(self, ctx: BuildContext) -> dict[str, str]:
        """The environment of ``liveforge shell COMPONENT``; by default the build's."""
        return ctx.base_env()

    def origins(self, ws: Workspace, spec: ComponentSpec) -> list[Origin]:
        """What the component is made of, for the SBOM (after a build: a kind may read what
        it installed). By default one origin named after the component, nothing known."""
        return [Origin(name=spec.name, version="NOASSERTION", license="NOASSERTION",
                       note="its kind says nothing of its origin")]
