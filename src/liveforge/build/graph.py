"""The component graph: build steps, their order, their inputs and staleness."""

from __future__ import annotations

from dataclasses import dataclass

from liveforge.build.kinds import get_kind
from liveforge.build.kinds.base import MAIN
from liveforge.build.stamps import Inputs, read_stamp, settings_hash, why_stale
from liveforge.util.depgraph import DependencyCycle, topo_order
from liveforge.util.errors import InputError
from liveforge.util.fileio import write_atomic

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from pathlib import Path

    from liveforge.build.config import ComponentSpec
    from liveforge.build.kinds.base import Kind
    from liveforge.build.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Step:
    """One stamped unit of building: a phase of a component."""

    name: str
    spec: ComponentSpec
    kind: Kind
    phase: str
    deps: tuple[str, ...]

    @property
    def stamp_name(self) -> str:
        return self.spec.name if self.phase == MAIN else f"{self.spec.name}-{self.phase}"

    @property
    def log_name(self) -> str:
        return self.stamp_name


def step_name(component: str, phase: str) -> str:
    return component if phase == MAIN else f"{component}:{phase}"


def make_steps(ws: Workspace) -> dict[str, Step]:
    """Every step of every component. Non-main phases (the strap phase) of all components come
    before every main step, as the bootstrap phase comes before the rest of the world."""
    phases = {name: list(get_kind(spec.kind).phases(spec)) for name, spec in ws.components.items()}
    early = [step_name(c, p) for c, ps in phases.items() for p in ps if p != MAIN]
    steps: dict[str, Step] = {}
    for cname, spec in ws.components.items():
        kind = get_kind(spec.kind)
        for phase in phases[cname]:
            if phase == MAIN:
                deps = [d for d in spec.depends] + early
            else:
                deps = [step_name(d, phase) for d in spec.depends if phase in phases[d]]
            steps[step_name(cname, phase)] = Step(
                name=step_name(cname, phase), spec=spec, kind=kind, phase=phase,
                deps=tuple(dict.fromkeys(deps)))
    return steps


def topological(ws: Workspace, steps: dict[str, Step]) -> list[str]:
    """Steps in dependency order; a cycle is an error naming it."""
    try:
        return topo_order(dependencies(steps))
    except DependencyCycle as exc:
        cycle = [c.split(":")[0] for c in exc.cycle]
        first = ws.components[cycle[0]]
        raise InputError("dependency cycle: " + " -> ".join(cycle), ws.toml_path,
                         first.line) from None


def dependencies(steps: dict[str, Step]) -> dict[str, tuple[str, ...]]:
    """The steps' graph: each step's name -> the names of the steps it depends on."""
    return {name: step.deps for name, step in steps.items()}


PROTO_ID = ".liveforge-proto"


def proto_identity(area: Path) -> str:
    """A staging area's identity: a random id kept inside it, so stamps of what was installed
    into a removed (or recreated) area are stale."""
    try:
        return (area / PROTO_ID).read_text().strip()
    except OSError:
        return "absent"


def ensure_proto(area: Path) -> str:
    identity = proto_identity(area)
    if identity == "absent":
        area.mkdir(parents=True, exist_ok=True)
        import uuid

        identity = uuid.uuid4().hex
        write_atomic(area / PROTO_ID, identity + "\n")
    return identity


def prepare_areas(ws: Workspace) -> None:
    """Create the staging areas a build installs into (before planning it)."""
    ensure_proto(ws.proto)
    if any(p != MAIN for spec in ws.components.values()
           for p in get_kind(spec.kind).phases(spec)):
        ensure_proto(ws.proto_strap)


@dataclass(frozen=True, slots=True)
class Plan:
    """Every step, in dependency order, with its inputs and why it is stale."""

    steps: dict[str, Step]
    order: list[str]
    inputs: dict[str, Inputs]
    reasons: dict[str, list[str]]       # empty list: up to date

    def stale(self) -> list[str]:
        return [n for n in self.order if self.reasons[n]]


def plan(ws: Workspace) -> Plan:
    """Compute every step's inputs and whether (and why) it is stale."""
    # git looks at the trees (once per work tree) while the steps are made and ordered
    ws.hasher.planning((spec.path for spec in ws.components.values() if spec.path is not None),
                       remember=True)
    try:
        steps = make_steps(ws)
        order = topological(ws, steps)
        inputs, reasons = assess(ws, steps, order)
    finally:
        ws.hasher.save()
    return Plan(steps=steps, order=order, inputs=inputs, reasons=reasons)


def assess(ws: Workspace, steps: dict[str, Step], order: list[str]
           ) -> tuple[dict[str, Inputs], dict[str, list[str]]]:
    """Every step's inputs, and why it is stale (an empty list: up to date), in ``order``."""
    inputs: dict[str, Inputs] = {}
    reasons: dict[str, list[str]] = {}
    areas = (proto_identity(ws.proto_strap), proto_identity(ws.proto))
    envs: dict[tuple[str, ...], dict[str, str]] = {}  # a component's env list -> its env
    root = str(ws.root)  # stamp paths as ws.stamp_path's, without a Path for each
    recorded = {name: read_stamp(f"{root}/0-{steps[name].stamp_name}-stamp") for name in order}
    settings = {c: settings_hash(spec.settings) for c, spec in ws.components.items()}
    for name in order:
        step = steps[name]
        spec = step.spec
        own = {**step.kind.inputs(ws, spec, step.phase), "proto": areas[step.phase == MAIN]}
        env = envs.get(spec.env)
        if env is None:
            env = envs[spec.env] = ws.component_env(spec)
        inp = Inputs(own=own, env=dict(env), settings=settings[spec.name],
                     deps={d: inputs[d].digest for d in step.deps})
        inputs[name] = inp
        why = why_stale(recorded[name], inp)
        if why != ["never built"]:
            # a dependency rebuilt for another reason (a deleted stamp) is rebuilt first
            why += [f"dependency {d} is rebuilt" for d in step.deps if reasons[d]
                    and f"dependency {d} changed" not in why]
        reasons[name] = why
    return inputs, reasons
