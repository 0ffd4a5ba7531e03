"""The source-tree hasher (liveforge.util.treehash): the hash is a function of content alone,
the same for the same content committed, staged, untracked, in any work-tree state, and
outside git. The verdicts of workspaces built on it are tested in
tests/build/test_source_changes.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from liveforge.util.treehash import TreeHasher
from tests.support.workspaces import GIT_ENV, commit_all, git, make_repo

BAD = os.fsdecode(b"bad\xffname")  # not UTF-8: a name the file system has, as bytes


# -- one record format: the hash is a function of content alone ----------------------------------

def fill(tree: Path) -> None:
    (tree / "src").mkdir(parents=True)
    (tree / "src/a.c").write_text("int a;\n")
    (tree / "src/empty").write_bytes(b"")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "src" / BAD).write_bytes(b"\xff\n")
    os.symlink("a.c", tree / "src/link")
    (tree / ".gitignore").write_text("*.o\n")
    (tree / "src/a.o").write_text("object\n")


def test_hash_is_the_same_committed_staged_untracked_and_outside_git(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    fill(plain)
    expected = TreeHasher(None).hash(plain)
    repo = tmp_path / "repo"
    fill(repo)
    git(repo, "init", "-q")
    hasher = TreeHasher(tmp_path / "cache.json")
    assert hasher.hash(repo) == expected                    # untracked
    git(repo, "add", "-A")
    assert hasher.hash(repo) == expected                    # staged
    git(repo, "commit", "-q", "-m", "all")
    assert hasher.hash(repo) == expected                    # committed
    hasher.save()
    assert TreeHasher(tmp_path / "cache.json").hash(repo) == expected  # from the cache
    (repo / "src/a.c").write_text("int b;\n")
    assert hasher.hash(repo) != expected
    (repo / "src/a.c").write_text("int a;\n")
    assert hasher.hash(repo) == expected
    (repo / "run.sh").chmod(0o644)
    assert hasher.hash(repo) != expected


def test_git_failure_is_one_liveforge_error(tmp_path: Path) -> None:
    from liveforge.util.errors import LiveforgeError

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").write_text("gitdir: /nonexistent\n")
    with pytest.raises(LiveforgeError, match=str(repo)):
        TreeHasher(None).hash(repo)


def test_work_tree_states_hash_as_their_content(tmp_path: Path) -> None:
    """A conflict, a staged rename, a type change, a directory become a file: the hash in git
    is the hash of a copy of the work tree outside git."""
    repo = tmp_path / "repo"
    hasher = TreeHasher(tmp_path / "cache.json")

    def same_as_a_copy() -> None:
        copy = tmp_path / "copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(repo, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        assert hasher.hash(repo) == TreeHasher(None).hash(copy)

    make_repo(repo, "r")
    (repo / "d").mkdir()
    (repo / "d/x").write_text("x\n")
    commit_all(repo)
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "src/a.txt").write_text("side\n")
    commit_all(repo)
    git(repo, "checkout", "-q", "main")
    (repo / "src/a.txt").write_text("main\n")
    commit_all(repo)
    assert subprocess.run(["git", "-C", str(repo), "merge", "-q", "side"], capture_output=True,
                          env={**os.environ, **GIT_ENV}).returncode != 0
    same_as_a_copy()                                        # unmerged: the conflict markers
    git(repo, "checkout", "-q", "--theirs", "src/a.txt")
    same_as_a_copy()
    commit_all(repo, "merged")
    git(repo, "mv", "src/a.txt", "d/moved.txt")
    same_as_a_copy()                                        # a staged rename
    (repo / "d/moved.txt").unlink()
    os.symlink("x", repo / "d/moved.txt")
    same_as_a_copy()                                        # a file become a symlink
    shutil.rmtree(repo / "d")
    (repo / "d").write_text("a file now\n")
    same_as_a_copy()                                        # a directory become a file


@pytest.mark.parametrize("in_git", [False, True])
def test_a_hash_without_a_file_ignores_only_that_file(tmp_path: Path, in_git: bool) -> None:
    """``without``: a file directly in the tree that the caller hashes itself (an extra
    package's package.toml) changes nothing; every other file still does; the hash with it
    stays what it was, each kept in the cache apart."""
    tree = tmp_path / "pkg"
    fill(tree)
    (tree / "package.toml").write_text('name = "p"\nlicense = "MIT"\n')
    if in_git:
        git(tree, "init", "-q", "-b", "main")
        commit_all(tree)
    cache = tmp_path / "cache.json"
    hasher = TreeHasher(cache)
    full, part = hasher.hash(tree), hasher.hash(tree, without=["package.toml"])
    assert full != part
    (tree / "package.toml").write_text('name = "p"\nlicense = "Zlib"\n')
    again = TreeHasher(cache)  # through the cache file, as the next run
    assert again.hash(tree, without=["package.toml"]) == part
    assert again.hash(tree) != full
    (tree / "src/a.c").write_text("int b;\n")
    assert TreeHasher(cache).hash(tree, without=["package.toml"]) != part
    assert TreeHasher(None).hash(tree, without=["package.toml"]) == \
        TreeHasher(cache).hash(tree, without=["package.toml"])
