"""The make contract: local projects, the platform's own src, the core.

``make -C DIR [-f Makefile.joyent] DESTDIR=<stage> PROTO=<proto> MAX_JOBS=<n> DEBUG=.. world
install``, then ``make manifest DESTDIR=<dir> DESTNAME=<name>.manifest``; plus ``update``,
``clean`` and an optional ``check``. ``DESTDIR`` is the step's own staging tree, where it
installs; ``PROTO`` is the proto area holding what its dependencies installed, to build
against (the engine merges the staging tree into it afterwards). Settings in platform.toml:
``path`` (required), ``makefile`` (default: Makefile.joyent when present, else make's own
choice), ``targets`` (default ``["world", "install"]``).
"""

from __future__ import annotations

from liveforge.build.kinds.base import MAIN, Kind
from liveforge.util.errors import BuildError

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from liveforge.build.config import ComponentSpec
    from liveforge.build.kinds.base import BuildContext
    from liveforge.build.workspace import Workspace


class MakeKind(Kind):
    name = "make"

    def validate(self, spec: ComponentSpec) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if spec.path is None:
            problems.append((None, "kind \"make\" needs a path"))
        for key in spec.settings:
            if key not in ("kind", "path", "env", "makefile", "targets"):
                problems.append((key, f"unknown setting {key!r} for kind \"make\""))
        targets = spec.settings.get("targets", ["world", "install"])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            problems.append(("targets", "targets must be a list of make targets"))
        return problems

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
