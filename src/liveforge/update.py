"""``liveforge update``: pull every cloned project, run each component's update target."""

from __future__ import annotations

from . import gitrepo
from .errors import LiveforgeError
from .events import Reporter
from .graph import make_steps
from .kinds.base import MAIN, ProcessGroup
from .scheduler import context_for
from .workspace import Workspace


def update(ws: Workspace, reporter: Reporter, buildstamp: str) -> list[str]:
    """Returns what changed: project paths and component names."""
    changed: list[str] = []
    for project in ws.projects:
        repo = ws.root / "projects" / project.path
        if not gitrepo.is_repo(repo):
            continue
        before = gitrepo.head(repo)
        proc = gitrepo.git(repo, "pull", "--rebase", "--quiet", check=False)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise LiveforgeError(f"git pull --rebase failed in projects/{project.path}: "
                                 f"{detail[-1] if detail else 'exit ' + str(proc.returncode)}")
        after = gitrepo.head(repo)
        if after != before:
            changed.append(f"projects/{project.path}")
            reporter.info(f"projects/{project.path}: {before[:12]} -> {after[:12]}")
    ws.log_dir.mkdir(parents=True, exist_ok=True)
    for name, step in make_steps(ws).items():
        if step.phase != MAIN:
            continue
        log_path = ws.log_dir / f"{step.log_name}.update.{buildstamp}.log"
        with open(log_path, "wb") as log:
            ctx = context_for(ws, step, reporter, log, log_path, ProcessGroup())
            if step.kind.update(ctx):
                changed.append(name)
                reporter.info(f"component {name} updated its sources")
    ws.hasher.save()
    if not changed:
        reporter.info("everything is up to date")
    return changed
