"""``liveforge check``: ruff, mypy and the layer contracts (import-linter) over liveforge
itself in its own repository; in a workspace, each component's ``check`` target and the
manifest lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from liveforge.build.config import PLATFORM_FILE
from liveforge.build.kinds import known_kinds
from liveforge.build.scheduler import each_component
from liveforge.build.workspace import Workspace
from liveforge.util.events import Reporter


def _tool(name: str) -> list[str]:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", name]


def check_self(root: Path, reporter: Reporter) -> int:
    status = 0
    for argv in (_tool("ruff") + ["check", "src", "tests", "bench"], _tool("mypy"),
                 _tool("lint-imports")):
        reporter.step(" ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)))
        status |= subprocess.call(argv, cwd=root)
    return 1 if status else 0


def check_workspace(ws: Workspace, reporter: Reporter) -> int:
    """Each component's ``check`` target, then the manifest lint; like ``status`` and
    ``manifest``, it writes nothing in the workspace (the logs are kept while it runs)."""
    _, failed = each_component(ws, reporter, "check", "check",
                               lambda kind, ctx: kind.check(ctx), keep_logs=False)
    failures = len(failed)
    if ws.manifest_d.is_dir():
        failures += not lint_workspace(ws, reporter)
    return 1 if failures else 0


def lint_workspace(ws: Workspace, reporter: Reporter) -> bool:
    """The manifest lint of the built workspace; True when it found no error."""
    from liveforge.build.image.lint import format_lint
    from liveforge.build.verbs.manifest import lint_manifests

    report = lint_manifests(ws, reporter)
    text = format_lint(report).rstrip("\n")
    if text:
        print(text)
    return report.ok


def check(root: Path, reporter: Reporter) -> int:
    if (root / "pyproject.toml").is_file() and (root / "src" / "liveforge").is_dir():
        return check_self(root, reporter)
    if not (root / PLATFORM_FILE).is_file():
        reporter.warn(f"{root} is neither liveforge's repository nor a workspace")
        return 2
    return check_workspace(Workspace(root, known_kinds()), reporter)
