"""The context a build step runs in: what one step of one component may use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from liveforge.build.kinds.base import MAIN, UNIT_MANIFESTS, UNIT_TREE, Cancelled, make_fetcher
from liveforge.util.errors import BuildError
from liveforge.util.fileio import text_bytes
from liveforge.util.proc import ProcessGroup

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import IO

    from liveforge.build.config import ComponentSpec
    from liveforge.build.kinds.base import PartCache
    from liveforge.build.workspace import Workspace
    from liveforge.util.events import Reporter
    from liveforge.util.fetch import Fetcher


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
    owners: Callable[[], Mapping[str, str]] | None = None  # the engine's: see owned()

    @property
    def area(self) -> Path:
        """The staging area the step builds against: proto/, or proto.strap/ in the strap
        phase. A step reads its dependencies' files there and never installs into it."""
        return self.ws.proto if self.phase == MAIN else self.ws.proto_strap

    def owned(self) -> Mapping[str, str]:
        """The entries of :attr:`area` that other steps delivered (path -> step): what a kind
        that installs into the area during its build must not replace with something else
        (the engine refuses it when it delivers the step's own staging tree)."""
        return self.owners() if self.owners is not None else {}

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
        self.log.write(text_bytes(f"==> {text}\n"))
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
