"""The build engine end to end: real git repositories, real make, tmp workspaces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.workspaces import built, commit_all, git, make_workspace, run

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"], "f": []}


@pytest.fixture
def ws(tmp_path: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    root = make_workspace(tmp_path / "ws", DIAMOND, env={"c": ["COLOR"]})
    (root / "configure-build").write_text("COLOR=red\n")
    code, _ = run(root, "configure", capsys=capsys)
    assert code == 0
    return root


def world(root: Path, capsys) -> tuple[int, set[str], list[dict]]:  # type: ignore[no-untyped-def]
    code, events = run(root, "world", capsys=capsys)
    return code, built(events), events


def test_first_build_builds_all_then_noop(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, names, _ = world(ws, capsys)
    assert code == 0 and names == set(DIAMOND)
    assert (ws / "proto/usr/share/e/e.txt").read_text().startswith("e source")
    assert "color=red" in (ws / "proto/usr/share/c/c.txt").read_text()
    assert "color=\n" in (ws / "proto/usr/share/b/b.txt").read_text()  # b does not see COLOR
    assert (ws / "manifest.d/d.manifest").read_text().startswith("d usr 0755")
    stamp = json.loads((ws / "0-d-stamp").read_text())
    assert set(stamp["inputs"]["deps"]) == {"b", "c"}
    assert sorted(p.name for p in (ws / "log").iterdir())[0].startswith("a.")
    code, names, _ = world(ws, capsys)
    assert code == 0 and names == set()


def test_touching_a_middle_source_rebuilds_it_and_dependents(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world(ws, capsys)
    (ws / "projects/b/src/a.txt").write_text("b changed\n")
    code, _ = run(ws, "status", capsys=None)
    rows = {r["component"]: r for r in _status(ws, capsys)}
    assert rows["b"]["why"] == ["source changed"]
    assert rows["d"]["why"] == ["dependency b changed"]
    assert rows["c"]["state"] == "up to date"
    code, names, _ = world(ws, capsys)
    assert code == 0 and names == {"b", "d", "e"}
    assert (ws / "proto/usr/share/b/b.txt").read_text().startswith("b changed")


def test_mtime_only_change_and_commit_of_same_content_are_not_rebuilds(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world(ws, capsys)
    src = ws / "projects/c/src/a.txt"
    os.utime(src, (time.time() + 5, time.time() + 5))
    assert world(ws, capsys)[1] == set()
    (ws / "projects/c/src/new.txt").write_text("new\n")
    assert world(ws, capsys)[1] == {"c", "d", "e"}
    commit_all(ws / "projects/c")
    assert world(ws, capsys)[1] == set()


def test_build_env_key_rebuilds_components_that_see_it(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world(ws, capsys)
    (ws / "configure-build").write_text("COLOR=blue\n")
    assert run(ws, "configure", capsys=capsys)[0] == 0
    rows = {r["component"]: r for r in _status(ws, capsys)}
    assert rows["c"]["why"] == ["build.env COLOR: red -> blue"]
    assert world(ws, capsys)[1] == {"c", "d", "e"}
    assert "color=blue" in (ws / "proto/usr/share/c/c.txt").read_text()
    # DEBUG is seen by every component
    assert run(ws, "configure", "-d", capsys=capsys)[0] == 0
    assert world(ws, capsys)[1] == set(DIAMOND)
    assert "debug=yes" in (ws / "proto/usr/share/a/a.txt").read_text()


def test_deleting_a_stamp_rebuilds_it_and_dependents(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world(ws, capsys)
    (ws / "0-c-stamp").unlink()
    rows = {r["component"]: r for r in _status(ws, capsys)}
    assert rows["c"]["state"] == "never built"
    assert world(ws, capsys)[1] == {"c", "d", "e"}


def test_failure_leaves_no_stamp_and_independent_work_completes(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mk = ws / "projects/b/Makefile"
    # b fails after a second, so c (running beside it) finishes and f gets its turn
    mk.write_text(mk.read_text().replace('test "$(FAIL)" != yes', "sleep 1; test yes != yes"))
    code, events = run(ws, "world", capsys=capsys)
    assert code == 1
    names = built(events)
    assert "b" not in names and "d" not in names and "e" not in names
    assert {"a", "c", "f"} <= names
    fail = [e for e in events if e["event"] == "fail"]
    assert [e["component"] for e in fail] == ["b"]
    assert "deliberate failure of b" in fail[0]["tail"]
    assert Path(fail[0]["log"]).is_file()
    assert not (ws / "0-b-stamp").exists() and not (ws / "0-d-stamp").exists()
    assert (ws / "0-c-stamp").exists()
    # fixing it continues where it stopped
    mk.write_text(mk.read_text().replace("sleep 1; test yes != yes", "true"))
    assert world(ws, capsys)[1] == {"b", "d", "e"}


def test_failure_output_names_component_and_log(ws: Path) -> None:
    mk = ws / "projects/f/Makefile"
    mk.write_text(mk.read_text().replace('test "$(FAIL)" != yes', "test yes != yes"))
    proc = cli(ws, "world", timeout=None)
    assert proc.returncode == 1
    assert "f FAILED" in proc.stderr and "deliberate failure of f" in proc.stderr
    assert "log/f." in proc.stderr
    assert "Traceback" not in proc.stderr


def test_build_one_component_does_not_rebuild_dependents(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world(ws, capsys)
    (ws / "projects/b/src/a.txt").write_text("b again\n")
    code, events = run(ws, "build", "b", capsys=capsys)
    assert code == 0 and built(events) == {"b"}
    rows = {r["component"]: r for r in _status(ws, capsys)}
    assert rows["d"]["why"] == ["dependency b changed"]
    code, events = run(ws, "build", "--no-deps", "a", capsys=capsys)
    assert built(events) == {"a"}


def test_build_pulls_in_stale_dependencies(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, events = run(ws, "build", "d", capsys=capsys)
    assert code == 0 and built(events) == {"a", "b", "c", "d"}


def test_concurrent_run_is_refused(ws: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path\n"
        "from liveforge.build.kinds import known_kinds\n"
        "from liveforge.build.workspace import Workspace\n"
        f"ws = Workspace(Path({str(ws)!r}), known_kinds())\n"
        "with ws.lock():\n    print('locked', flush=True); time.sleep(30)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = cli(ws, "world", timeout=30)
        assert proc.returncode == 1
        assert f"in use by liveforge PID {holder.pid}" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    proc = cli(ws, "--wait", "world", timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_update_pulls_and_only_changed_component_is_stale(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world(ws, capsys)
    upstream = ws.parent / "ws-upstream" / "c"
    (upstream / "src" / "a.txt").write_text("c from upstream\n")
    commit_all(upstream, "upstream change")
    code, events = run(ws, "update", capsys=capsys)
    assert code == 0
    changed = [e for e in events if e["event"] == "updated"][0]["changed"]
    assert changed == ["projects/c"]
    rows = {r["component"]: r for r in _status(ws, capsys)}
    assert {n for n, r in rows.items() if r["state"] != "up to date"} == {"c", "d", "e"}
    assert rows["c"]["why"] == ["source changed"]


def test_update_failure_names_the_repo(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from liveforge.build.cli import main

    git(ws / "projects/b", "remote", "set-url", "origin", str(ws / "nowhere"))
    capsys.readouterr()
    code = main(["-C", str(ws), "update"])
    err = capsys.readouterr().err
    assert code == 1 and "projects/b" in err


def test_interrupt_stops_children_and_writes_no_stamp(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = make_workspace(tmp_path / "ws", {"slow": [], "after": ["slow"]})
    assert run(root, "configure", capsys=capsys)[0] == 0
    mk = root / "projects/slow/Makefile"
    nap = f"60.{os.getpid()}"  # a sleep no other test runs
    mk.write_text(mk.read_text().replace("\tmkdir -p build\n", f"\tmkdir -p build\n\tsleep {nap}\n",
                                         1))
    proc = subprocess.Popen([sys.executable, "-m", "liveforge.build.cli", "-C", str(root), "world"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline and not _has_child_sleep(nap):
        time.sleep(0.1)
    assert _has_child_sleep(nap)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not (root / "0-slow-stamp").exists()
    assert not _has_child_sleep(nap)
    mk.write_text(mk.read_text().replace(f"\tsleep {nap}\n", ""))
    code, events = run(root, "world", capsys=capsys)
    assert code == 0 and built(events) == {"slow", "after"}


def _has_child_sleep(nap: str) -> bool:
    out = subprocess.run(["pgrep", "-f", f"^sleep {nap}$"], capture_output=True,
                         text=True).stdout
    return bool(out.strip())


def test_parallel_builds_respect_max_jobs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = make_workspace(tmp_path / "ws", {"p": [], "q": [], "r": []})
    assert run(root, "configure", "-j", "2", capsys=capsys)[0] == 0
    assert (root / "build.env").read_text().count("MAX_JOBS=2") == 1
    for name in "pqr":
        mk = root / f"projects/{name}/Makefile"
        mk.write_text(mk.read_text().replace("\tmkdir -p build\n",
                                             "\tmkdir -p build\n\tsleep 0.5\n", 1))
    code, events = run(root, "world", capsys=capsys)
    assert code == 0
    live, peak = 0, 0
    for e in events:
        if e["event"] == "start":
            live += 1
            peak = max(peak, live)
        elif e["event"] in ("finish", "fail"):
            live -= 1
    assert peak == 2


def _status(root: Path, capsys) -> list[dict]:  # type: ignore[no-untyped-def]
    from liveforge.build.cli import main

    capsys.readouterr()
    assert main(["-C", str(root), "--json", "status"]) == 0
    return json.loads(capsys.readouterr().out)


def test_removed_proto_area_makes_everything_stale(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    world(ws, capsys)
    shutil.rmtree(ws / "proto")
    rows = {r["component"]: r for r in _status(ws, capsys)}
    assert rows["a"]["why"] == ["the staging area was removed or recreated"]
    assert world(ws, capsys)[1] == set(DIAMOND)
    assert (ws / "proto/usr/share/e/e.txt").is_file()
    assert world(ws, capsys)[1] == set()


def test_every_kind_has_every_hook() -> None:
    """Each registered kind is a Kind: the engine calls its hooks (configure too) directly."""
    from liveforge.build.kinds import known_kinds
    from liveforge.build.kinds.base import Kind

    assert sorted(known_kinds()) == ["deb", "extra", "make"]
    for name, kind in known_kinds().items():
        assert isinstance(kind, Kind) and kind.name == name
        for hook in ("validate", "phases", "inputs", "configure", "build", "update", "clean",
                     "check", "shell_env"):
            assert callable(getattr(kind, hook))
