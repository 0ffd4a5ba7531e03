"""``liveforge configure``: clone and check out the projects, write build.env."""

from __future__ import annotations

from dataclasses import dataclass

from liveforge.build.config import BUILD_CONFIG_FILE, BUILD_ENV_FILE, PROJECTS_FILE, Project
from liveforge.build.kinds import get_kind
from liveforge.build.kinds.base import STRAP
from liveforge.build.workspace import Workspace, default_max_jobs, jobs_value
from liveforge.util import git as gitrepo
from liveforge.util.errors import InputError
from liveforge.util.events import Reporter
from liveforge.util.fileio import write_atomic
from liveforge.util.keyvalue import format_keyvalue


@dataclass(frozen=True, slots=True)
class ConfigureOptions:
    debug: bool = False
    force_strap: bool = False
    clobber: bool = False
    refresh_lock: bool = False


# characters of a workspace path that make (``$``) or a quoted shell word (the others) would
# take apart when a recipe writes "$(DESTDIR)"; a space is fine
UNSAFE_PATH_CHARS = "$\"`\\\n"


def configure(ws: Workspace, opts: ConfigureOptions, reporter: Reporter) -> None:
    """The configure recipe: projects, build.env, then each kind's configure step."""
    check_root(ws)
    for project in ws.projects:
        setup_project(ws, project, reporter)
    write_build_env(ws, opts)
    if opts.force_strap:
        # FORCE_STRAP_REBUILD is not an input (it changes no output): drop the strap stamps
        for spec in ws.components.values():
            if STRAP in get_kind(spec.kind).phases(spec):
                ws.stamp_path(f"{spec.name}-{STRAP}").unlink(missing_ok=True)
    if opts.clobber:
        from liveforge.build.verbs.clean import clobber

        clobber(ws, reporter, outputs=False)
    for spec in ws.components.values():
        get_kind(spec.kind).configure(ws, spec, reporter, refresh=opts.refresh_lock)
    reporter.info(f"configured {ws.root} (DEBUG={ws.build_env['DEBUG']}, "
                  f"MAX_JOBS={ws.build_env['MAX_JOBS']})")


def check_root(ws: Workspace) -> None:
    """Refuse a workspace path that make could not pass to a component in DESTDIR."""
    for char in UNSAFE_PATH_CHARS:
        if char in str(ws.root):
            raise InputError(f"the workspace path {ws.root} holds {char!r}, which make or the "
                             "shell would take apart in DESTDIR: move the workspace to a path "
                             "without it")


def setup_project(ws: Workspace, project: Project, reporter: Reporter) -> None:
    dest = ws.root / "projects" / project.path
    where = f"{ws.root / PROJECTS_FILE}:{project.line}"
    url = project.url
    if url in ("", "origin"):
        if not dest.is_dir():
            raise InputError(f"project {project.path!r} is not in projects/ and has no URL to "
                             "clone from", ws.root / PROJECTS_FILE, project.line)
        if not gitrepo.is_repo(dest):
            if url == "origin":
                raise InputError(f"project {project.path!r} is not a git clone, so it has no "
                                 "origin", ws.root / PROJECTS_FILE, project.line)
            return  # an in-place tree: nothing to clone or check out
    elif not dest.exists():
        if "://" not in url and not url.startswith("git@") and not url.startswith("/"):
            url = str((ws.root / url).resolve())
        reporter.info(f"cloning {url} into projects/{project.path}")
        gitrepo.clone(url, dest)
    if gitrepo.is_dirty(dest):
        reporter.warn(f"projects/{project.path} has uncommitted changes")
    gitrepo.checkout(dest, project.branch, f"{where}: project {project.path}")


def write_build_env(ws: Workspace, opts: ConfigureOptions) -> None:
    values = dict(ws.build_config)
    jobs = ws.jobs_override or default_max_jobs()
    if not ws.jobs_override and values.get("MAX_JOBS"):
        jobs = jobs_value(values["MAX_JOBS"], ws.root / BUILD_CONFIG_FILE)
    values.update({
        "DEBUG": "yes" if opts.debug else "no",
        "FORCE_STRAP_REBUILD": "yes" if opts.force_strap else "no",
        "CLOBBER": "yes" if opts.clobber else "no",
        "MAX_JOBS": str(jobs),
    })
    write_atomic(ws.root / BUILD_ENV_FILE, format_keyvalue(values))
    ws.build_env = values
