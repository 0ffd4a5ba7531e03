"""A build that dies: SIGKILL, SIGINT/SIGTERM/SIGHUP. No child outlives liveforge, the next run
builds, ``status`` tells a running step from one never built, and every verb removes what a
killed run of it left (and only that)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.debs import build_deb
from tests.support.kernel import STAMP, Bootable
from tests.support.workspaces import built, make_workspace, run

HERE = Path(__file__).parent


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
    proc = subprocess.Popen([sys.executable, "-m", "liveforge.build.cli", "-C", str(root), "world"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: bool(_pids(f"^sleep {nap}$")), 20), "the slow step never started"
    return proc


def unslow(root: Path, nap: str) -> None:
    mk = root / "projects/slow/Makefile"
    mk.write_text(mk.read_text().replace(f"\tsleep {nap}\n", ""))


def status_rows(root: Path) -> dict[str, dict]:
    proc = cli(root, "--json", "status", timeout=60)
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


# -- scratch trees and temporaries ------------------------------------------------------------

def test_replace_tree_beats_a_writer_left_running(tmp_path: Path) -> None:
    """A scratch tree is replaced although a process still writes into the old one."""
    from liveforge.util.scratch import replace_tree

    dest = tmp_path / "build"
    deep = dest / "a/b"
    deep.mkdir(parents=True)
    writer = subprocess.Popen(["sh", "-c", f'cd "{deep}" && i=0; while :; do i=$((i+1)); '
                               ': > f$i; done'])
    try:
        time.sleep(0.2)
        for n in range(20):
            new = tmp_path / f"new{n}"
            (new / "x").mkdir(parents=True)
            replace_tree(new, dest)
            assert sorted(p.name for p in dest.iterdir()) == ["x"]
            deep = dest / "a/b"
            deep.mkdir(parents=True)
    finally:
        writer.kill()
        writer.wait()


def _helper(code: str, *args: str) -> subprocess.Popen[bytes]:
    """A Python process that runs ``code`` and says ``ready`` when it reaches the point where
    it is to be killed."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(HERE)})
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


BLOCK = "def block(*a, **k):\n    print('ready', flush=True); time.sleep(120)\n"

DEB_HELPER = ("import sys, time\nfrom pathlib import Path\nimport liveforge.util.unpack as u\n"
              "def block(tar, dest, label, **k):\n    (Path(dest) / 'partial').write_text('x')\n"
              "    print('ready', flush=True); time.sleep(120)\n"
              "u.extract_tar = block\n"
              "u.install_deb(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n")


def test_deb_unpack_removes_what_a_killed_one_left(tmp_path: Path) -> None:
    from liveforge.util.unpack import install_deb

    deb = build_deb(tmp_path / "t.deb", "t", "1", files={"usr/share/t/big": "x" * 100000})
    proto, work = tmp_path / "proto", tmp_path / "work"
    killed = _helper(DEB_HELPER, str(deb), str(proto), str(work))
    killed.kill()
    killed.wait()
    left = _hidden(work)
    assert left, "the killed unpack left nothing to clean"
    running = _helper(DEB_HELPER, str(deb), str(proto), str(work))
    try:
        theirs = [n for n in _hidden(work) if n not in left]
        install_deb(deb, proto, work)
        assert (proto / "usr/share/t/big").stat().st_size == 100000
        assert _hidden(work) == theirs  # the dead run's are gone, the live one's kept
    finally:
        running.kill()
        running.wait()


MEDIA_HELPER = ("import sys, time\nfrom pathlib import Path\n" + BLOCK +
                "import liveforge.build.media.{mod} as m\nm.{step} = block\n"
                "m.build_{mod}(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), arch='x86_64')\n")


@pytest.mark.parametrize("mod,step,names", [
    ("iso", "run_xorriso", ["platform-{}.iso"]),
    ("usb", "gzip_file", ["partition.map", "platform-{}.usb.gz"]),
])
def test_media_verb_removes_what_a_killed_one_left(tmp_path: Path, mod: str, step: str,
                                                   names: list[str], bootable: Bootable) -> None:
    from liveforge.build import media

    out = tmp_path / f"output-{mod}"
    platform = bootable.platform()
    killed = _helper(MEDIA_HELPER.format(mod=mod, step=step), str(platform), STAMP, str(out))
    killed.kill()
    killed.wait()
    assert _hidden(out), "the killed run left nothing to clean"
    getattr(media, f"build_{mod}")(platform, STAMP, out, arch="x86_64")
    assert sorted(p.name for p in out.iterdir()) == [n.format(STAMP) for n in names]


def test_leftovers_of_this_process_in_progress_are_kept(tmp_path: Path) -> None:
    """Two threads of one run share a work folder: one's cleaning never takes the other's."""
    from liveforge.util.scratch import make_temp_dir, remove_leftovers, remove_temp

    mine = make_temp_dir(tmp_path, "deb")
    done = make_temp_dir(tmp_path, "deb")
    remove_temp(done)
    stale = tmp_path / f".deb.lf-tmp-{os.getpid()}.old"  # this PID's, not in progress
    stale.mkdir()
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: (remove_leftovers(tmp_path),
                                              seen.append(mine.is_dir())))
    thread.start()
    thread.join()
    assert seen == [True] and not stale.exists() and not done.exists()
    remove_temp(mine)
    assert list(tmp_path.iterdir()) == []
