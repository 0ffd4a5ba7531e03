"""``world`` and ``build``: bring components up to date in dependency order."""

from __future__ import annotations

from liveforge.build.graph import Plan, dependencies, plan, prepare_areas
from liveforge.build.workspace import Workspace
from liveforge.util.depgraph import closure
from liveforge.util.errors import BuildError, UsageError
from liveforge.util.events import Reporter

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from liveforge.build.scheduler import RunResult


def world(ws: Workspace, reporter: Reporter, buildstamp: str) -> None:
    """Build every stale step; a failure raises BuildError after running steps finish."""
    prepare_areas(ws)
    p = plan(ws)
    stale = p.stale()
    if not stale:
        reporter.info(f"all {len(p.order)} components are up to date")
        return
    for name in stale:
        reporter.emit("stale", component=name, why=p.reasons[name])
    from liveforge.build.scheduler import run_steps  # only now: a no-op run needs no threads

    finish(run_steps(ws, p, stale, reporter, buildstamp))


def build_one(ws: Workspace, reporter: Reporter, buildstamp: str, target: str,
              no_deps: bool, package: str | None = None,
              variant: str | None = None) -> None:
    """Build one step (always), its stale dependencies first unless ``no_deps``; dependents
    are not rebuilt. ``package`` (of ``COMPONENT:PACKAGE``) and ``variant`` narrow the build
    to one package of the component (see
    :class:`~liveforge.build.kinds.base.context.BuildContext`)."""
    prepare_areas(ws)
    p = plan(ws)
    name = resolve_target(p, target)
    kind = p.steps[name].kind
    if (package is not None or variant) and not kind.has_packages:
        raise UsageError(f"component {p.steps[name].spec.name!r} ({kind.name}) has no packages")
    wanted = {name}
    if not no_deps:
        wanted |= {n for n in closure(dependencies(p.steps), [name]) if p.reasons[n]}
    from liveforge.build.scheduler import run_steps

    finish(run_steps(ws, p, wanted, reporter, buildstamp, package, variant))


def resolve_target(p: Plan, target: str) -> str:
    if target in p.steps:
        return target
    component = target.split(":", 1)[0]
    if ":" in target and component in p.steps:
        step = p.steps[component]
        raise UsageError(f"component {component!r} ({step.kind.name}) has no "
                         f"{target.split(':', 1)[1]} phase")
    raise UsageError(f"no component {target!r} (components: {', '.join(sorted(p.steps))})")


def finish(result: RunResult) -> None:
    if result.failed:
        names = ", ".join(sorted(result.failed))
        first = sorted(result.failed)[0]
        raise BuildError(f"build failed: {names} (log: {result.logs[first]})",
                         result.logs[first])
