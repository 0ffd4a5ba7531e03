"""``liveforge shell COMPONENT``: a shell with that component's build environment (bldenv)."""

from __future__ import annotations

import os
import subprocess
import sys

from liveforge.build.graph import make_steps
from liveforge.build.scheduler import context_for
from liveforge.build.verbs.world import resolve_target
from liveforge.build.workspace import Workspace
from liveforge.util.events import Reporter
from liveforge.util.proc import ProcessGroup


def shell(ws: Workspace, target: str, reporter: Reporter, command: list[str]) -> int:
    from liveforge.build.graph import plan

    name = resolve_target(plan(ws), target)
    step = make_steps(ws)[name]
    with open(os.devnull, "wb") as log:
        ctx = context_for(ws, step, reporter, log, ws.log_dir / "shell.log", ProcessGroup())
        env = step.kind.shell_env(ctx)
    env["LIVEFORGE_COMPONENT"] = name
    env["LIVEFORGE_WORKSPACE"] = str(ws.root)
    env.setdefault("DESTDIR", str(ws.proto))
    cwd = ws.component_path(step.spec) if step.spec.path else ws.root
    argv = command or [os.environ.get("SHELL", "/bin/sh")]
    if not command and sys.stdin.isatty():
        reporter.info(f"entering {name}'s build environment (DESTDIR={env['DESTDIR']}, "
                      f"MAX_JOBS={env.get('MAX_JOBS')}); exit to leave")
    return subprocess.call(argv, cwd=cwd, env=env)
