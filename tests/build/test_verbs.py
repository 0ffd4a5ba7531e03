"""shell, clean, clobber, check, status text, JSON events, the rich display on a TTY."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.workspaces import LIVE_STAMP, built, live_workspace, make_workspace, run


@pytest.fixture
def ws(tmp_path: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    root = make_workspace(tmp_path / "ws", {"a": [], "b": ["a"]})
    assert run(root, "configure", "-j", "3", capsys=capsys)[0] == 0
    return root


def test_shell_has_the_build_environment(ws: Path) -> None:
    (ws / "proto.strap/usr/bin").mkdir(parents=True)
    proc = cli(ws, "shell", "b", "sh", "-c", 'echo "$DESTDIR|$MAX_JOBS|$PWD|$PATH|$DEBUG"')
    assert proc.returncode == 0, proc.stderr
    destdir, jobs, cwd, path, debug = proc.stdout.strip().split("|")
    assert destdir == str(ws / "proto")
    assert jobs == "3"
    assert cwd == str(ws / "projects/b")
    assert path.split(":")[0] == str(ws / "proto.strap/usr/bin")
    assert debug == "no"
    assert cli(ws, "shell", "zz", "true").returncode == 2


def test_shell_exit_status_is_the_commands(ws: Path) -> None:
    assert cli(ws, "shell", "a", "sh", "-c", "exit 7").returncode == 7


def test_clean_and_clobber(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(ws, "world", capsys=capsys)[0] == 0
    assert (ws / "projects/a/build/a.txt").exists()
    (ws / "output").mkdir()
    assert run(ws, "clean", capsys=capsys)[0] == 0
    assert not (ws / "projects/a/build").exists()       # the component's clean target ran
    assert not (ws / "proto").exists() and not list(ws.glob("0-*-stamp"))
    assert (ws / "output").exists()
    code, events = run(ws, "world", capsys=capsys)
    assert built(events) == {"a", "b"}
    assert run(ws, "clobber", capsys=capsys)[0] == 0
    assert not (ws / "output").exists() and not (ws / "proto").exists()


def test_configure_clobber_flag_starts_from_scratch(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(ws, "world", capsys=capsys)[0] == 0
    assert run(ws, "configure", "-c", capsys=capsys)[0] == 0
    assert not list(ws.glob("0-*-stamp"))
    assert "CLOBBER=yes" in (ws / "build.env").read_text()


def test_check_runs_component_check_targets(ws: Path) -> None:
    assert cli(ws, "check").returncode == 0
    (ws / "projects/a/src/a.txt").unlink()
    proc = cli(ws, "check")
    assert proc.returncode == 1 and "check of a failed" in proc.stderr


def test_status_text_and_json_events(ws: Path) -> None:
    proc = cli(ws, "status")
    assert proc.stdout.splitlines()[1].split() == ["a", "make", "never", "built"]
    proc = cli(ws, "--json", "world")
    import json

    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 2 and kinds.count("finish") == 2
    finish = [e for e in events if e["event"] == "finish"][0]
    assert isinstance(finish["duration"], float) and finish["component"] in ("a", "b")


def test_rich_display_on_a_tty(ws: Path) -> None:
    command = f"{sys.executable} -m liveforge.build.cli -C {ws} world"
    proc = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
    assert proc.returncode == 0, proc.stdout
    assert "of 2" in proc.stdout and "✓" in proc.stdout


# -- read-only verbs ------------------------------------------------------------------------

SECOND = "20240203T040506Z"


@pytest.fixture(scope="module")
def built_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with two platforms built (LIVE_STAMP, then SECOND: platform-latest)."""
    top = tmp_path_factory.mktemp("readonly")
    root = live_workspace(top / "ws", top / "upstream")
    for stamp in (LIVE_STAMP, SECOND):
        proc = cli(root, "live", stamp=stamp, pythonpath=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return root


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` but ``.liveforge/`` (liveforge's caches): its type and mode,
    size, modification time and content (a file's digest, a link's text)."""
    import hashlib
    import stat

    state: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        if directory == str(root):
            dirs[:] = [d for d in dirs if d != ".liveforge"]
        for name in [".", *dirs, *files]:
            path = Path(directory) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                content: object = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = None
            state[os.path.normpath(path.relative_to(root))] = (
                st.st_mode, st.st_size, st.st_mtime_ns, content)
    return state


@pytest.mark.parametrize("args", [
    ("status",), ("status", "--json"), ("manifest", "show"), ("manifest", "lint"),
    ("manifest", "diff", f"output/platform-{SECOND}", "output/platform-20240102T030405Z.tgz"),
    ("check",)], ids=" ".join)
def test_read_only_verbs_write_nothing(built_ws: Path, args: tuple[str, ...]) -> None:
    before = snapshot(built_ws)
    proc = cli(built_ws, *args, cwd=built_ws)
    assert proc.returncode == 0, proc.stderr
    after = snapshot(built_ws)
    changed = sorted(path for path in before.keys() | after.keys()
                     if before.get(path) != after.get(path))
    assert changed == [], changed


def test_a_plain_command_line_is_parsed_as_the_whole_parser_would(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The verbs named on the command line get a parser of their own; errors and help still
    come from the whole parser, word for word."""
    from liveforge.build.cli import parse, parser

    for words in (["-C", "x", "-q", "world"], ["--json", "status"], ["boot", "--media", "pxe"],
                  ["shell", "a", "make", "-j", "2"]):
        assert parse(words) == parser().parse_args(words)
    for words in (["bogus", "world"], ["world", "--nope"], ["boot", "--media", "floppy"],
                  ["-h", "world"], ["world", "-j", "x"]):
        with pytest.raises(SystemExit) as narrowed:
            parse(words)
        got = capsys.readouterr()
        with pytest.raises(SystemExit) as whole:
            parser().parse_args(words)
        assert (narrowed.value.code, got) == (whole.value.code, capsys.readouterr())


@pytest.mark.parametrize("args", [("a:strap",), ("a", "--strap"), ("a:pkg",), ("a:",),
                                  ("a", "--variant", "32")])
def test_build_of_what_a_make_component_has_not_is_refused(ws: Path,
                                                           args: tuple[str, ...]) -> None:
    """A make component has one phase and no packages: asking for its strap phase or one of
    its packages built the whole component and said it was done."""
    proc = cli(ws, "build", *args)
    assert proc.returncode == 2, proc.stdout
    what = "no strap phase" if "strap" in " ".join(args) else "no packages"
    assert proc.stderr.splitlines() == [f"liveforge build: component 'a' (make) has {what}"]
    assert not (ws / "0-a-stamp").exists()
