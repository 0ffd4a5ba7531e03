"""``liveforge update``: pull every cloned project, run each component's update target."""

from __future__ import annotations

from liveforge.build.scheduler import each_component
from liveforge.build.workspace import Workspace
from liveforge.util import git as gitrepo
from liveforge.util.errors import LiveforgeError
from liveforge.util.events import Reporter


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
            why = gitrepo.complaint(proc.stderr or proc.stdout, proc.returncode)
            raise LiveforgeError(f"git pull --rebase failed in projects/{project.path}: {why}")
        after = gitrepo.head(repo)
        if after != before:
            changed.append(f"projects/{project.path}")
            reporter.info(f"projects/{project.path}: {before[:12]} -> {after[:12]}")
    updated, failed = each_component(ws, reporter, "update", f"update.{buildstamp}",
                                     lambda kind, ctx: kind.update(ctx))
    for name, did in updated.items():
        if did:
            changed.append(name)
            reporter.info(f"component {name} updated its sources")
    if failed:
        raise LiveforgeError(f"update failed in {', '.join(sorted(failed))}")
    ws.hasher.save()
    if not changed:
        reporter.info("everything is up to date")
    return changed
