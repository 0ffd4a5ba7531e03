"""A build that dies: SIGKILL, SIGINT/SIGTERM/SIGHUP. No child outlives liveforge, the next run
builds, and ``status`` tells a running step from one never built."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wsutil import built, make_workspace, run


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def slow_workspace(tmp_path: Path, capsys, nap: str) -> Path:  # type: ignore[no-untyped-def]
    """Component ``slow`` (``after`` depends on it) whose make runs ``sleep NAP``: make is
    liveforge's child, the sleep its grandchild."""
    root = make_workspace(tmp_path / "ws", {"slow": [], "after": ["slow"]})
    assert run(root, "configure", capsys=capsys)[0] == 0
    mk = root / "projects/slow/Makefile"
    mk.write_text(mk.read_text().replace("\tmkdir -p build\n",
                                         f"\tmkdir -p build\n\tsleep {nap}\n", 1))
    return root


def start_world(root: Path, nap: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "liveforge.cli", "-C", str(root), "world"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: bool(_pids(f"^sleep {nap}$")), 20), "the slow step never started"
    return proc


def unslow(root: Path, nap: str) -> None:
    mk = root / "projects/slow/Makefile"
    mk.write_text(mk.read_text().replace(f"\tsleep {nap}\n", ""))


def status_rows(root: Path) -> dict[str, dict]:
    proc = subprocess.run([sys.executable, "-m", "liveforge.cli", "-C", str(root), "--json",
                           "status"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {r["component"]: r for r in json.loads(proc.stdout)}


def test_sigkill_kills_every_child_and_the_next_run_builds(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    nap = f"61.{os.getpid()}"
    root = slow_workspace(tmp_path, capsys, nap)
    proc = start_world(root, nap)
    make = _pids(f"^make -C {root}/projects/slow ")
    assert make, "make is not running"
    proc.kill()
    proc.wait()
    # make (liveforge's child) and sleep (make's child) end with liveforge
    assert _wait_for(lambda: not _pids(f"^sleep {nap}$") and not _pids(
        f"^make -C {root}/projects/slow "), 5), "children outlived a SIGKILLed liveforge"
    assert not (root / "0-slow-stamp").exists()
    # a killed run's record of its running step is not "building"
    assert status_rows(root)["slow"]["state"] == "never built"
    unslow(root, nap)
    code, events = run(root, "world", capsys=capsys)
    assert code == 0 and built(events) == {"slow", "after"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_termination_signals_stop_children_with_a_clear_message(
        tmp_path: Path, capsys, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    nap = f"62.{os.getpid()}{int(sig)}"
    root = slow_workspace(tmp_path, capsys, nap)
    proc = start_world(root, nap)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"liveforge: interrupted by {sig.name}"
    assert _wait_for(lambda: not _pids(f"^sleep {nap}$"), 5)
    assert not (root / "0-slow-stamp").exists()
    unslow(root, nap)
    code, events = run(root, "world", capsys=capsys)
    assert code == 0 and built(events) == {"slow", "after"}


def test_status_says_building_for_the_running_step(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    nap = f"63.{os.getpid()}"
    root = slow_workspace(tmp_path, capsys, nap)
    proc = start_world(root, nap)
    try:
        rows = status_rows(root)
        assert rows["slow"]["state"] == "building"
        assert rows["after"]["state"] == "never built"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert status_rows(root)["slow"]["state"] == "never built"
