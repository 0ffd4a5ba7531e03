"""The make contract: local projects, the platform's own src, the core.

``make -C DIR [-f Makefile.joyent] DESTDIR=<stage> PROTO=<proto> MAX_JOBS=<n> DEBUG=.. world
install``, then ``make manifest DESTDIR=<dir> DESTNAME=<name>.manifest``; plus ``update``,
``clean`` and an optional ``check``. ``DESTDIR`` is the step's own staging tree, where it
installs; ``PROTO`` is the proto area holding what its dependencies installed, to build
against (the engine merges the staging tree into it afterwards). Settings in platform.toml
(:data:`FIELDS`): ``path`` (required), ``makefile`` (default: Makefile.joyent when present,
else make's own choice), ``targets`` (default ``["world", "install"]``), ``license`` (an SPDX
expression, for the SBOM; no build input).
"""

from __future__ import annotations

import os

from liveforge.build.config import LICENSE_FIELD
from liveforge.build.kinds.base import MAIN, Kind
from liveforge.util.errors import BuildError
from liveforge.util.fields import Field, read_table

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from liveforge.build.config import ComponentSpec
    from liveforge.build.kinds.base.context import BuildContext
    from liveforge.build.kinds.base.origin import Origin
    from liveforge.build.workspace import Workspace


def _check_makefile(value: str) -> list[tuple[str, str | None]]:
    """``make -f`` reads it in the component's directory: a file inside it."""
    normal = os.path.normpath(value) if value else ".."
    if value.startswith("/") or normal == ".." or normal.startswith("../"):
        return [(f"makefile must be a file inside the component, not {value!r}", None)]
    return []


def _check_targets(value: list[str]) -> list[tuple[str, str | None]]:
    """Each a make target: not empty, no blank, not an option (``-f...``, ``--eval=``)."""
    return [(f"targets must be a list of make targets, not {target!r}", target)
            for target in value if not target or target.startswith("-")
            or any(c.isspace() for c in target)]


# a make component's table (kind, path and env are read by config; named here as known)
FIELDS = (
    Field("kind", "any"),
    Field("path", "any"),
    Field("env", "any"),
    Field("makefile", "str", None, _check_makefile),
    Field("targets", "strlist", ["world", "install"], _check_targets),
    LICENSE_FIELD,
)


class MakeKind(Kind):
    name = "make"

    def validate(self, spec: ComponentSpec) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if spec.path is None:
            problems.append((None, "kind \"make\" needs a path"))

        def report(message: str, key: str, item: object) -> None:
            if message.startswith("unknown key"):
                message = f"unknown setting {key!r} for kind \"make\""
            elif key == "targets" and not message.startswith("targets must be a list of make"):
                message = "targets must be a list of make targets"
            problems.append((key, message))

        read_table(spec.settings, FIELDS, report)
        return problems

    def origins(self, ws: Workspace, spec: ComponentSpec) -> list[Origin]:
        """The project itself: its git commit and remote when it is a checkout, else its tree
        hash as the version; the licence platform.toml declares."""
        from liveforge.build.kinds.base.origin import Origin
        from liveforge.util.git import git_value

        path = ws.component_path(spec)
        inside = git_value(path, "rev-parse", "--is-inside-work-tree") == "true"
        commit = git_value(path, "rev-parse", "HEAD") if inside else ""
        version = git_value(path, "describe", "--always", "--tags") if commit else \
            f"tree-{ws.hasher.hash(path)[:12]}"
        url = git_value(path, "config", "--get", "remote.origin.url") if commit else ""
        return [Origin(name=spec.name, version=version or commit[:12],
                       license=spec.settings.get("license", LICENSE_FIELD.default),
                       source=url, commit=commit)]

    def phases(self, spec: ComponentSpec) -> Sequence[str]:
        return [MAIN]

    def inputs(self, ws: Workspace, spec: ComponentSpec, phase: str) -> dict[str, str]:
        if spec.path is not None:  # the usual case: hash() finds a missing tree itself
            digest = ws.hasher.hash(spec.path)
            if digest != "missing":
                return {"source": digest}
        return {"source": ws.hasher.hash(ws.component_path(spec))}  # the error naming it

    # -- the contract -----------------------------------------------------------------------
    def _make(self, ctx: BuildContext, *args: str | Path) -> list[str | Path]:
        directory = ctx.ws.component_path(ctx.spec)
        argv: list[str | Path] = ["make", "-C", directory]
        makefile = ctx.spec.settings.get("makefile")
        if makefile:
            argv += ["-f", makefile]
        elif (directory / "Makefile.joyent").is_file():
            argv += ["-f", "Makefile.joyent"]
        return argv + list(args)

    def _vars(self, ctx: BuildContext) -> list[str]:
        return [f"{k}={v}" for k, v in ctx.env_vars.items()] + [f"MAX_JOBS={ctx.jobs}"]

    def build(self, ctx: BuildContext) -> None:
        targets = ctx.spec.settings.get("targets", ["world", "install"])
        ctx.stage.mkdir(parents=True, exist_ok=True)
        ctx.run(self._make(ctx, f"DESTDIR={ctx.stage}", f"PROTO={ctx.area}", *self._vars(ctx),
                           *targets),
                what=f"make {' '.join(targets)}")
        self.write_manifest(ctx)

    def write_manifest(self, ctx: BuildContext) -> None:
        dest = ctx.manifest_dir
        dest.mkdir(parents=True, exist_ok=True)
        name = f"{ctx.spec.name}.manifest"
        (dest / name).unlink(missing_ok=True)
        ctx.run(self._make(ctx, f"DESTDIR={dest}", f"DESTNAME={name}", *self._vars(ctx),
                           "manifest"), what="make manifest")
        if not (dest / name).is_file():
            raise BuildError(f"make manifest did not write {dest / name}", ctx.log_path)

    def update(self, ctx: BuildContext) -> bool:
        if not self._has_target(ctx, "update"):
            return False
        before = ctx.ws.hasher.hash(ctx.ws.component_path(ctx.spec))
        ctx.run(self._make(ctx, *self._vars(ctx), "update"), what="make update")
        return ctx.ws.hasher.hash(ctx.ws.component_path(ctx.spec)) != before

    def clean(self, ctx: BuildContext) -> None:
        if self._has_target(ctx, "clean"):
            ctx.run(self._make(ctx, *self._vars(ctx), "clean"), what="make clean")

    def check(self, ctx: BuildContext) -> None:
        if self._has_target(ctx, "check"):
            ctx.run(self._make(ctx, *self._vars(ctx), "check"), what="make check")

    def shell_env(self, ctx: BuildContext) -> dict[str, str]:
        env = ctx.base_env()
        env["DESTDIR"] = str(ctx.ws.proto)
        env["PROTO"] = str(ctx.ws.proto)
        return env

    def _has_target(self, ctx: BuildContext, target: str) -> bool:
        """Whether the makefile defines ``target`` (``make -q`` exits 2 for an unknown one)."""
        import subprocess

        argv = [str(a) for a in self._make(ctx, "-q", target)]
        proc = subprocess.run(argv, capture_output=True, env=ctx.base_env(), check=False)
        if proc.returncode != 2:
            return True
        return b"No rule to make target" not in proc.stderr


KIND = MakeKind()
