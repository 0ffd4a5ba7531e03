"""Small wrappers over the git command line, with errors that name the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from liveforge.util.errors import LiveforgeError
from liveforge.util.scratch import remove_tree

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class GitError(LiveforgeError):
    pass


def _run(args: Sequence[str], text: bool) -> subprocess.CompletedProcess[Any]:
    """git run to its end: no terminal input, output captured (GitQuery, below, is the same
    started without waiting)."""
    return subprocess.run(["git", *args], capture_output=True, text=text,
                          stdin=subprocess.DEVNULL, check=False)


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = _run(["-C", str(repo), *args], text=True)
    if check and proc.returncode != 0:
        raise _failed(repo, args, proc.returncode, proc.stderr or proc.stdout)
    return proc


def git_bytes(repo: Path | str, *args: str) -> bytes:
    """The standard output of ``git -C repo ARGS``, as bytes: file names are bytes (``-z``)."""
    return GitQuery(repo, *args).output()


class GitQuery:
    """``git -C repo ARGS`` started at once; its output (bytes) is read by :meth:`output`, so
    git works while the caller does something else."""

    def __init__(self, repo: Path | str, *args: str):
        self.repo = repo
        self.args = args
        self._proc = subprocess.Popen(["git", "-C", str(repo), *args], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def output(self) -> bytes:
        """git's standard output; a GitError naming the repository when it failed."""
        out, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise _failed(self.repo, self.args, self._proc.returncode,
                          err.decode(errors="replace"))
        return out

    def close(self) -> None:
        """Stop the query whose answer is not needed, and reap it."""
        self._proc.kill()
        self._proc.communicate()


def git_value(repo: Path, *args: str) -> str:
    """git's answer on one line, "" when it has none (not a repository, no such key)."""
    proc = git(repo, *args, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def complaint(output: str, code: int) -> str:
    """What a failed git command says, on one line: its first ``fatal:`` or ``error:`` line
    (git may add advice after it), else its last line, else its exit status."""
    lines = output.strip().splitlines()
    for line in lines:
        if line.startswith(("fatal: ", "error: ")):
            return line.split(": ", 1)[1]
    return lines[-1] if lines else f"exit status {code}"


def _failed(repo: Path | str, args: tuple[str, ...], code: int, output: str) -> GitError:
    if "--" in args:  # the command, not every path it was given
        args = args[:args.index("--")]
    return GitError(f"git {' '.join(args)} failed in {repo}: {complaint(output, code)}")


def is_repo(path: Path) -> bool:
    return (path / ".git").exists()


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def current_branch(repo: Path) -> str:
    return git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()


def is_dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain").stdout.strip())


def tree_is_dirty(path: Path) -> bool:
    """Whether the work tree holding ``path`` has uncommitted changes (or untracked files)
    under ``path``; False when ``path`` is in no work tree (nothing records a state there)."""
    proc = git(path, "status", "--porcelain", "--", ".", check=False)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def has_ref(repo: Path, ref: str) -> bool:
    return git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0


def clone(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.cloning")
    remove_tree(tmp)
    proc = _run(["clone", "--quiet", url, str(tmp)], text=True)
    if proc.returncode != 0:
        raise GitError(f"cannot clone {url} into {dest}: "
                       f"{complaint(proc.stderr, proc.returncode)}")
    tmp.rename(dest)


def checkout(repo: Path, branch: str, label: str) -> None:
    """Check out ``branch``, creating it from origin (fetching it if absent)."""
    if current_branch(repo) == branch:
        return
    if not has_ref(repo, f"refs/heads/{branch}") and \
            not has_ref(repo, f"refs/remotes/origin/{branch}"):
        if git(repo, "remote", check=False).stdout.strip():
            git(repo, "fetch", "--quiet", "origin",
                f"+refs/heads/{branch}:refs/remotes/origin/{branch}", check=False)
    if has_ref(repo, f"refs/heads/{branch}"):
        git(repo, "checkout", "--quiet", branch)
    elif has_ref(repo, f"refs/remotes/origin/{branch}"):
        git(repo, "checkout", "--quiet", "-b", branch, "--track", f"origin/{branch}")
    else:
        raise GitError(f"{label}: branch {branch!r} does not exist (not local, not on origin)")
