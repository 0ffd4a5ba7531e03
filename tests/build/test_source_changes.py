"""Source-tree hashes as stamps see them: content only, file names as bytes, in git and out.

The tests read the verdict from ``status --json`` and the shipped content from proto/. The
hasher itself (liveforge.util.treehash) is tested in tests/util/test_treehash.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from liveforge.build.cli import main
from tests.support.workspaces import GIT_ENV, built, commit_all, git, make_repo, make_workspace, run

BAD = os.fsdecode(b"bad\xffname")  # not UTF-8: a name the file system has, as bytes


def status(root: Path, capsys) -> dict[str, tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["-C", str(root), "--json", "status"]) == 0
    return {r["component"]: (r["state"], r["why"]) for r in json.loads(capsys.readouterr().out)}


def world(root: Path, capsys) -> set[str]:  # type: ignore[no-untyped-def]
    code, events = run(root, "world", capsys=capsys)
    assert code == 0
    return built(events)


UP = ("up to date", [])
CHANGED = ("stale", ["source changed"])


@pytest.fixture
def ws(tmp_path: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    """A built workspace of two components, each its own git clone."""
    root = make_workspace(tmp_path / "ws", {"a": [], "b": []})
    assert run(root, "configure", capsys=capsys)[0] == 0
    assert world(root, capsys) == {"a", "b"}
    return root


@pytest.fixture
def plain(ws: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    """The same workspace with trees outside git (in place: no .git), built."""
    for name in ("a", "b"):
        shutil.rmtree(ws / "projects" / name / ".git")
    world(ws, capsys)
    assert status(ws, capsys)["a"] == UP
    return ws


def same_size_same_mtime(path: Path, old: str, new: str) -> None:
    """Rewrite ``path`` with other bytes of the same length, and put its mtime back."""
    st = path.stat()
    assert len(old) == len(new)
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


# -- D7: file names are bytes ------------------------------------------------------------------

def test_non_utf8_name_in_a_git_tree(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = ws / "projects/a"
    (tree / "src" / BAD).write_text("x\n")                  # untracked
    assert status(ws, capsys) == {"a": CHANGED, "b": UP}
    assert world(ws, capsys) == {"a"}
    commit_all(tree)                                        # tracked: git names it with -z
    assert status(ws, capsys)["a"] == UP
    (tree / "src" / BAD).write_text("y\n")                  # tracked and modified
    assert status(ws, capsys)["a"] == CHANGED


def test_non_utf8_name_outside_git(plain: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = plain / "projects/a"
    (tree / ".liveforgeignore").write_bytes(b"*.tmp\nskip\xff*\n")
    assert world(plain, capsys) == {"a"}
    (tree / "src" / os.fsdecode(b"x\xfe.tmp")).write_text("ignored\n")
    (tree / "src" / os.fsdecode(b"skip\xffme")).write_text("ignored\n")
    assert status(plain, capsys)["a"] == UP
    (tree / "src" / BAD).write_text("x\n")
    assert status(plain, capsys) == {"a": CHANGED, "b": UP}
    assert world(plain, capsys) == {"a"}
    assert status(plain, capsys)["a"] == UP


# -- D15: a change behind an unchanged size and mtime --------------------------------------------

def test_same_size_and_mtime_change_in_a_git_tree(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    same_size_same_mtime(ws / "projects/a/src/a.txt", "source", "SOURCE")
    assert status(ws, capsys)["a"] == CHANGED
    assert world(ws, capsys) == {"a"}
    assert (ws / "proto/usr/share/a/a.txt").read_text().startswith("a SOURCE\n")


def test_same_size_and_mtime_change_outside_git(plain: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    same_size_same_mtime(plain / "projects/a/src/a.txt", "source", "SOURCE")
    assert status(plain, capsys)["a"] == CHANGED
    assert world(plain, capsys) == {"a"}
    assert (plain / "proto/usr/share/a/a.txt").read_text().startswith("a SOURCE\n")


def test_same_size_and_mtime_change_of_a_modified_file(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A file git already reports as modified is hashed by liveforge itself (its stat cache)."""
    src = ws / "projects/a/src/a.txt"
    src.write_text("a modified\n")
    assert world(ws, capsys) == {"a"}
    same_size_same_mtime(src, "modified", "MODIFIED")
    assert status(ws, capsys)["a"] == CHANGED


# -- what git knows, and what it does not decide ------------------------------------------------

def test_the_index_changing_under_a_clean_tree_is_a_change(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = ws / "projects/a"
    git(tree, "checkout", "-q", "-b", "other")
    (tree / "src/a.txt").write_text("other branch\n")
    commit_all(tree)
    assert world(ws, capsys) == {"a"}
    git(tree, "checkout", "-q", "main")                     # clean before and after
    assert git(tree, "status", "--porcelain") == ""
    assert status(ws, capsys)["a"] == CHANGED
    assert world(ws, capsys) == {"a"}
    assert (ws / "proto/usr/share/a/a.txt").read_text().startswith("a source\n")
    git(tree, "checkout", "-q", "other")
    assert status(ws, capsys)["a"] == CHANGED


def test_staging_and_committing_built_content_rebuilds_nothing(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = ws / "projects/a"
    (tree / "src/a.txt").write_text("changed\n")
    (tree / "src/new.txt").write_text("new\n")
    (tree / "tool.sh").write_text("#!/bin/sh\n")
    (tree / "tool.sh").chmod(0o755)
    os.symlink("a.txt", tree / "src/link")
    assert world(ws, capsys) == {"a"}
    git(tree, "add", "src/a.txt")                           # staged
    assert status(ws, capsys)["a"] == UP
    git(tree, "add", "-N", "src/new.txt")                   # intent to add
    assert status(ws, capsys)["a"] == UP
    commit_all(tree)                                        # committed, all of it
    assert status(ws, capsys)["a"] == UP
    os.utime(tree / "src/a.txt", (1, 1))                    # touched, not changed
    assert status(ws, capsys)["a"] == UP


def test_staged_change_taken_back_in_the_work_tree(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The work tree is what builds: a staged change whose file was put back is no change."""
    src = ws / "projects/a/src/a.txt"
    old = src.read_text()
    src.write_text("staged\n")
    git(ws / "projects/a", "add", "src/a.txt")
    src.write_text(old)
    assert status(ws, capsys)["a"] == UP


def test_mode_link_target_and_deletion_are_changes(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = ws / "projects/a"
    (tree / "tool.sh").write_text("#!/bin/sh\n")
    os.symlink("a.txt", tree / "src/link")
    commit_all(tree)
    assert world(ws, capsys) == {"a"}
    (tree / "tool.sh").chmod(0o755)
    assert status(ws, capsys)["a"] == CHANGED
    assert world(ws, capsys) == {"a"}
    (tree / "src/link").unlink()
    os.symlink("b.txt", tree / "src/link")
    assert status(ws, capsys)["a"] == CHANGED
    assert world(ws, capsys) == {"a"}
    (tree / "src/link").unlink()                            # deleted, still in the index
    assert status(ws, capsys)["a"] == CHANGED
    assert world(ws, capsys) == {"a"}
    git(tree, "rm", "-q", "--cached", "src/link")           # the deletion staged
    assert status(ws, capsys)["a"] == UP


def test_ignored_files_never_count(ws: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = ws / "projects/a"
    (tree / "build" / "deep").mkdir(parents=True, exist_ok=True)
    (tree / "build/deep/product.o").write_text("object\n")
    (tree / ".git/info/exclude").write_text("*.log\n")
    (tree / "src/run.log").write_text("log\n")
    assert status(ws, capsys)["a"] == UP
    (tree / "src/untracked.txt").write_text("u\n")
    assert status(ws, capsys)["a"] == CHANGED


def test_submodule_and_nested_repository_contents_count(ws: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    tree = ws / "projects/a"
    sub_upstream = make_repo(tmp_path / "subup", "sub")
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "-C", str(tree), "-c", "protocol.file.allow=always", "submodule",
                    "add", "-q", str(sub_upstream), "vendor/sub"], check=True, env=env,
                   capture_output=True)
    commit_all(tree, "add a submodule")
    make_repo(tree / "nested", "nested")                    # a repository git does not track
    assert world(ws, capsys) == {"a"}
    assert status(ws, capsys)["a"] == UP
    (tree / "vendor/sub/src/a.txt").write_text("sub changed\n")
    assert status(ws, capsys)["a"] == CHANGED
    assert world(ws, capsys) == {"a"}
    commit_all(tree / "vendor/sub")                         # the submodule's commit moves
    commit_all(tree, "move the submodule")
    assert status(ws, capsys)["a"] == UP
    (tree / "nested/src/a.txt").write_text("nested changed\n")
    assert status(ws, capsys)["a"] == CHANGED


def test_components_sharing_one_repository(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Trees that are directories of one work tree: each sees only its own files, even a
    staged rename from one into the other."""
    root = tmp_path / "ws"
    repo = root / "projects"
    for name in ("a", "b"):
        make_repo(tmp_path / "up" / name, name)
        shutil.copytree(tmp_path / "up" / name, repo / name, ignore=shutil.ignore_patterns(".git"))
    git(repo.parent, "init", "-q", str(repo))
    commit_all(repo, "both")
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.a]\nkind = "make"\npath = "projects/a"\n\n'
        '[components.b]\nkind = "make"\npath = "projects/b"\n')
    (root / "configure-projects").write_text("")
    assert run(root, "configure", capsys=capsys)[0] == 0
    assert world(root, capsys) == {"a", "b"}
    (repo / "b/src/b.txt").write_text("b more\n")
    assert status(root, capsys) == {"a": UP, "b": CHANGED}
    assert world(root, capsys) == {"b"}
    git(repo, "mv", "a/src/a.txt", "b/src/moved.txt")
    assert status(root, capsys) == {"a": CHANGED, "b": CHANGED}
