"""git asked ahead: a run that plans starts ``git status`` on the work trees the last plan
asked about before it loads the platform, and uses the answer only while it is fresh.

A wrapper named ``git`` first on PATH logs each git command (and when it ends) before and after
running the real git, so the tests see which questions were asked and when they were answered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.workspaces import built, make_workspace, run

COMPONENTS = {"a": [], "b": ["a"], "c": []}


@pytest.fixture
def ws(tmp_path: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    root = make_workspace(tmp_path / "ws", COMPONENTS)
    assert run(root, "configure", capsys=capsys)[0] == 0
    assert run(root, "world", capsys=capsys)[0] == 0
    return root


@pytest.fixture
def git_log(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """(environment with the logging git first on PATH, the log folder: a file per git command
    and event, so that commands running side by side never mix their lines)."""
    real = shutil.which("git")
    assert real is not None
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "git.log"
    log.mkdir()
    wrapper = bindir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" > {log}/$$.start\n"{real}" "$@"\nrc=$?\n'
                       f'echo "$*" > {log}/$$.done\nexit $rc\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}, log


def statuses(log: Path, what: str = "start") -> list[str]:
    """The work trees ``git status`` was started (or ended) in."""
    commands = [f.read_text() for f in log.glob(f"*.{what}")]
    return [c.split()[1] for c in commands if " status " in c]


@pytest.fixture
def locked(ws: Path) -> Iterator[Callable[[], None]]:
    """Another process holds the workspace lock; the test gets the function that lets go
    (called at the end of the test at the latest)."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path\n"
        "from liveforge.build.kinds import known_kinds\n"
        "from liveforge.build.workspace import Workspace\n"
        f"ws = Workspace(Path({str(ws)!r}), known_kinds())\n"
        "with ws.lock():\n    print('locked', flush=True); sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def release() -> None:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=30)

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield release
    finally:
        release()


def waits_for_a_lock(pid: int) -> bool:
    """Whether process ``pid`` is blocked waiting for a file lock (``/proc/locks`` lists a
    blocked request as ``N: -> FLOCK ADVISORY WRITE <pid> ...``)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "->" and fields[5] == str(pid):
            return True
    return False


def finished(json_lines: str) -> set[str]:
    """The components a ``--json`` run built."""
    return built([json.loads(line) for line in json_lines.splitlines()])


def asked(root: Path) -> list[list[str]]:
    return json.loads((root / ".liveforge" / "treecache.json").read_text())["asked"]


def test_a_build_remembers_its_questions_and_a_noop_asks_each_once(
        ws: Path, git_log: tuple[dict[str, str], Path]) -> None:
    trees = sorted(str(ws / "projects" / n) for n in COMPONENTS)
    assert asked(ws) == [[t, ""] for t in trees]  # each component is a clone of its own
    env, log = git_log
    proc = cli(ws, "world", env=env, check=True)
    assert "all 3 components are up to date" in proc.stderr + proc.stdout
    assert sorted(statuses(log)) == trees  # asked ahead, answered, never asked twice
    assert sorted(statuses(log, "done")) == trees


def test_a_change_is_seen_by_the_run_started_after_it(ws: Path) -> None:
    (ws / "projects" / "a" / "src" / "a.txt").write_text("a, changed\n")
    proc = cli(ws, "--json", "world", check=True)
    assert finished(proc.stdout) == {"a", "b"}
    assert (ws / "proto" / "usr/share/a/a.txt").read_text().startswith("a, changed\n")


def test_a_run_that_waited_for_the_lock_asks_git_again(
        ws: Path, git_log: tuple[dict[str, str], Path], locked: Callable[[], None]) -> None:
    """What git said before the wait is stale: a change made while the run waited for the
    lock is built (with the answer from before the wait, ``a`` would look unchanged)."""
    env, _ = git_log
    waiting = subprocess.Popen(
        [sys.executable, "-m", "liveforge.build.cli", "-C", str(ws), "--wait", "--json",
         "world"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while not waits_for_a_lock(waiting.pid):  # having asked its questions ahead
        assert time.monotonic() < deadline and waiting.poll() is None
        time.sleep(0.05)
    time.sleep(1.5)  # git would have answered them (in milliseconds) by now
    (ws / "projects" / "a" / "src" / "a.txt").write_text("a, changed while it waited\n")
    time.sleep(0.2)
    assert waiting.poll() is None  # still waiting for the lock
    locked()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert finished(out) == {"a", "b"}
    assert (ws / "proto" / "usr/share/a/a.txt").read_text().startswith("a, changed while")


def test_a_busy_workspace_fails_at_once_and_leaves_no_git_behind(
        ws: Path, git_log: tuple[dict[str, str], Path], locked: Callable[[], None]) -> None:
    env, _ = git_log
    proc = cli(ws, "world", env=env)
    assert proc.returncode == 1 and "in use by liveforge PID" in proc.stderr
    assert "Traceback" not in proc.stderr
    locked()
    # the questions asked ahead were stopped and reaped before the run ended
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if "status" in line and str(ws) in line]


@pytest.mark.parametrize("kept", [
    "not a list", [["relative/tree", ""]], [[1, 2]], [["/nonexistent/tree", ""]], [["/"]],
])
def test_questions_kept_wrongly_are_not_asked(
        ws: Path, git_log: tuple[dict[str, str], Path], kept: object) -> None:
    cache = ws / ".liveforge" / "treecache.json"
    data = json.loads(cache.read_text())
    data["asked"] = kept
    cache.write_text(json.dumps(data))
    env, log = git_log
    cli(ws, "world", env=env, check=True)
    trees = sorted(str(ws / "projects" / n) for n in COMPONENTS)
    assert sorted(statuses(log)) == trees  # the plan's own questions, once each
    assert asked(ws) == [[t, ""] for t in trees]  # and kept for the next run


def test_a_broken_platform_toml_is_reported_and_stops_the_questions(
        ws: Path, git_log: tuple[dict[str, str], Path]) -> None:
    toml = ws / "platform.toml"
    toml.write_text(toml.read_text() + "\n[components.d]\nkind = \"nosuchkind\"\n")
    env, log = git_log
    proc = cli(ws, "world", env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "platform.toml:" in proc.stderr and "unknown kind 'nosuchkind'" in proc.stderr
    # asked ahead (a question may be stopped before its git even started), then no plan
    assert len(list(log.glob("*.start"))) <= len(COMPONENTS)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if "status" in line and str(ws) in line]
