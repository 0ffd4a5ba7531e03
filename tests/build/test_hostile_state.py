"""What liveforge keeps between runs (``.liveforge/``, the ``0-<step>-stamp`` files), torn,
edited or replaced by something else: a cache is never trusted into a crash, a stamp that is
not one means "build again", and what cannot be used at all is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.workspaces import LIVE_STAMP, live_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace built once (``world``): a git component ``comp`` and a plain one."""
    root = live_workspace(tmp_path / "ws", tmp_path / "upstream")
    (root / "plain" / ".liveforgeignore").write_text("build/\n")   # its make's output
    cli(root, "world", stamp=LIVE_STAMP, check=True)
    return root


def clean_run(root: Path, *args: str) -> str:
    proc = cli(root, *args, stamp=LIVE_STAMP)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# entries of the tree cache whose shapes the hasher never writes
TORN_TREES = [
    [1, 2],                                                       # not a table of trees
    {"ANY": 5},                                                   # an entry that is no table
    {"ANY": {"hash": 7, "files": [], "subs": 3, "sig": None, "status": None}},
    {"ANY": {"hash": "x", "files": {"Makefile": 1, "src/a.txt": "y"}, "subs": {},
             "sig": "s", "status": "s"}},
]


@pytest.mark.parametrize("trees", TORN_TREES, ids=range(len(TORN_TREES)))
def test_a_tree_cache_of_the_wrong_shape_is_hashed_again(ws: Path, trees: object) -> None:
    cache = ws / ".liveforge" / "treecache.json"
    data = json.loads(cache.read_text())
    if isinstance(trees, dict) and "ANY" in trees:
        trees = {key: trees["ANY"] for key in data["trees"]}   # every tree's entry
    data["trees"] = trees
    cache.write_text(json.dumps(data))
    status = clean_run(ws, "status")
    assert [line.split()[2:4] for line in status.splitlines()[1:]] == \
        [["up", "to"], ["up", "to"]]
    clean_run(ws, "world")
    assert json.loads(cache.read_text())["trees"] != trees    # rewritten, the right shape


def test_a_tree_cache_that_is_a_directory_is_not_used(ws: Path) -> None:
    cache = ws / ".liveforge" / "treecache.json"
    cache.unlink()
    (cache / "sub").mkdir(parents=True)
    assert "up to date" in clean_run(ws, "status")
    clean_run(ws, "world")
    assert (cache / "sub").is_dir()                 # not the cache's to remove


# stamps whose shape liveforge never writes
TORN_STAMPS = [
    {"hash": "x", "built": 5, "inputs": 3},
    {"hash": "x", "inputs": {"own": [1], "env": 2, "deps": "d", "settings": 4}},
    {"hash": 7, "inputs": {}},
]


@pytest.mark.parametrize("stamp", TORN_STAMPS, ids=range(len(TORN_STAMPS)))
def test_a_stamp_of_the_wrong_shape_is_no_stamp(ws: Path, stamp: object) -> None:
    (ws / "0-comp-stamp").write_text(json.dumps(stamp))
    status = clean_run(ws, "status")
    assert any(line.split()[:4] == ["comp", "make", "never", "built"]
               for line in status.splitlines()), status
    clean_run(ws, "world")
    assert json.loads((ws / "0-comp-stamp").read_text())["built"] == LIVE_STAMP
    assert "up to date" in clean_run(ws, "status")


def test_a_stamp_that_is_a_directory_is_one_line_naming_it(ws: Path) -> None:
    stamp = ws / "0-comp-stamp"
    stamp.unlink()
    stamp.mkdir()
    proc = cli(ws, "world", stamp=LIVE_STAMP)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1:] == [f"liveforge: error: {stamp}: Is a directory"]
    assert "Traceback" not in proc.stderr


def test_a_state_directory_that_is_a_file_fails_the_step_without_a_traceback(ws: Path) -> None:
    (ws / "plain" / "src" / "a.txt").write_text("plain, changed\n")
    building = ws / ".liveforge" / "building"
    building.rmdir()
    building.write_text("not a directory\n")
    proc = cli(ws, "world", stamp="20250101T000000Z")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"==> plain FAILED: {building}: File exists" in proc.stderr.splitlines()
    assert building.read_text() == "not a directory\n"


RECORDS = ["² 5\n".encode(), b"99999999999999999999 5\n", b"1\n", b"\xff\xfe"]


@pytest.mark.parametrize("record", RECORDS, ids=range(len(RECORDS)))
def test_a_running_record_of_another_shape_is_no_running_step(ws: Path, record: bytes) -> None:
    (ws / ".liveforge" / "building" / "comp").write_bytes(record)
    assert "up to date" in clean_run(ws, "status").splitlines()[1]
    (ws / "projects" / "comp" / "src" / "a.txt").write_text("comp, changed\n")
    clean_run(ws, "world")
    assert not (ws / ".liveforge" / "building" / "comp").exists()   # the next build's


@pytest.mark.parametrize("replace", ["symlink", "fifo", "directory"])
def test_a_lock_file_that_is_not_a_plain_file_is_refused_and_left_alone(
        ws: Path, tmp_path: Path, replace: str) -> None:
    """The lock is opened, truncated and written with the run's PID: through a symbolic link
    that wrote a file outside the workspace."""
    import os

    lock = ws / ".liveforge.lock"
    lock.unlink()
    victim = tmp_path / "precious"
    victim.write_text("precious\n")
    {"symlink": lambda: lock.symlink_to(victim), "fifo": lambda: os.mkfifo(lock),
     "directory": lock.mkdir}[replace]()
    proc = cli(ws, "world", stamp=LIVE_STAMP)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"liveforge: error: {lock}: the workspace lock is not a plain file"]
    assert victim.read_text() == "precious\n"
