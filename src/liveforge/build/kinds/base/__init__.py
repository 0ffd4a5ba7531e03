"""The one small interface every component kind implements (:class:`Kind`), the phase names,
and what kinds share. The context a step builds in is :mod:`.context`; what a component is made
of, for the SBOM, :mod:`.origin` (each imported where it is used: a run that builds nothing
needs neither).

A kind turns a component spec into *phases* (most have one, ``main``; ``extra`` adds ``strap``,
built before every other component). For each phase the engine asks the kind for its named
input hashes (the stamp combines them with build.env keys, settings and dependency hashes), then
calls :meth:`Kind.build` with a :class:`BuildContext` whose :meth:`BuildContext.run` logs output,
honours cancellation and raises :class:`~liveforge.util.errors.BuildError` on failure.
"""

from __future__ import annotations

import os

from liveforge.util.errors import BuildError

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from typing import Protocol

    from liveforge.build.config import ComponentSpec
    from liveforge.build.kinds.base.context import BuildContext
    from liveforge.build.kinds.base.origin import Origin
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


def make_fetcher(ws: Workspace, note: Callable[[str], None] | None = None) -> Fetcher:
    """The one way a kind gets a :class:`~liveforge.util.fetch.Fetcher`: the workspace's
    download cache and build settings (mirrors, trust), and its offline setting."""
    from liveforge.util.fetch import Fetcher

    return Fetcher(ws.cache_dir, offline=ws.offline,
                   config={**ws.build_config, **ws.build_env}, note=note)


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
    has_packages: bool = False  # a build may be narrowed to one package (COMPONENT:PACKAGE)

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
        from liveforge.build.kinds.base.origin import Origin

        return [Origin(name=spec.name, version="NOASSERTION", license="NOASSERTION",
                       note="its kind says nothing of its origin")]
