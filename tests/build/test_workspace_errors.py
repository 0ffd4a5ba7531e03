"""Bad input: each error is one line naming file and line (or the thing), exit 2/1, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.workspaces import make_repo

GOOD = """\
[platform]
name = "t"

[components.a]
kind = "make"
path = "projects/a"

[components.b]
kind = "make"
path = "projects/b"
depends = ["a"]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_repo(tmp_path / "projects" / "a", "a")
    make_repo(tmp_path / "projects" / "b", "b")
    (tmp_path / "platform.toml").write_text(GOOD)
    return tmp_path


def assert_one_error(proc: subprocess.CompletedProcess[str], expected: str, code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0], proc.stderr


def test_good_workspace_is_fine(root: Path) -> None:
    assert cli(root, "status").returncode == 0


def test_toml_syntax_error(root: Path) -> None:
    (root / "platform.toml").write_text(GOOD.replace('name = "t"', 'name = "t'))
    assert_one_error(cli(root, "status"), f"{root}/platform.toml:2: ")


def test_unknown_kind(root: Path) -> None:
    (root / "platform.toml").write_text(GOOD.replace('kind = "make"\npath = "projects/b"',
                                                     'kind = "rpm"\npath = "projects/b"'))
    assert_one_error(cli(root, "status"),
                     f"{root}/platform.toml:9: component 'b': unknown kind 'rpm'")


def test_unknown_dependency_names_file_and_line(root: Path) -> None:
    (root / "platform.toml").write_text(GOOD.replace('depends = ["a"]', 'depends = ["a",\n'
                                                     '  "zz"]'))
    assert_one_error(cli(root, "status"), f"{root}/platform.toml:12: component 'b' depends on "
                                          "unknown component 'zz'")


def test_dependency_cycle_is_named(root: Path) -> None:
    (root / "platform.toml").write_text(GOOD.replace('path = "projects/a"',
                                                     'path = "projects/a"\ndepends = ["b"]'))
    proc = cli(root, "world")
    assert_one_error(proc, "dependency cycle: ")
    assert "a -> b -> a" in proc.stderr or "b -> a -> b" in proc.stderr


def test_missing_component_path(root: Path) -> None:
    (root / "platform.toml").write_text(GOOD.replace("projects/b", "projects/nothere"))
    assert_one_error(cli(root, "world"), f"{root}/platform.toml:10: component 'b': path "
                                         "'projects/nothere' is not a directory")


def test_unknown_platform_key(root: Path) -> None:
    (root / "platform.toml").write_text(GOOD.replace('name = "t"', 'name = "t"\ncolour = 1'))
    assert_one_error(cli(root, "status"), f"{root}/platform.toml:3: unknown key 'colour'")


def test_bad_configure_projects(root: Path) -> None:
    (root / "configure-projects").write_text("# ok\na:main:\nnonsense line\n")
    assert_one_error(cli(root, "status"), f"{root}/configure-projects:3: expected "
                                          "<path>:<branch>:<url|origin|empty>")


def test_configure_projects_escape(root: Path) -> None:
    (root / "configure-projects").write_text("../x:main:/tmp/x\n")
    assert_one_error(cli(root, "status"), f"{root}/configure-projects:1: project path '../x'")


def test_bad_configure_build(root: Path) -> None:
    (root / "configure-build").write_text("GOOD=1\n\n1BAD=2\n")
    assert_one_error(cli(root, "configure"), f"{root}/configure-build:3: invalid variable name")


def test_not_a_workspace(tmp_path: Path) -> None:
    assert_one_error(cli(tmp_path, "world"), "no platform.toml here")


def test_clone_failure_names_the_url(root: Path) -> None:
    (root / "configure-projects").write_text(f"c:main:{root}/no-such-repo\n")
    proc = cli(root, "configure")
    assert_one_error(proc, f"cannot clone {root}/no-such-repo", code=1)
    assert not (root / "projects" / "c").exists()


def test_missing_branch_is_named(root: Path, tmp_path: Path) -> None:
    upstream = make_repo(tmp_path / "up" / "c", "c")
    (root / "configure-projects").write_text(f"c:release-9:{upstream}\n")
    assert_one_error(cli(root, "configure"), "branch 'release-9' does not exist", code=1)


def test_branch_is_fetched_when_absent(root: Path, tmp_path: Path) -> None:
    from tests.support.workspaces import git

    upstream = make_repo(tmp_path / "up" / "c", "c")
    (root / "configure-projects").write_text(f"c:main:{upstream}\n")
    assert cli(root, "configure").returncode == 0
    git(upstream, "checkout", "-q", "-b", "feature")
    (upstream / "src" / "a.txt").write_text("feature\n")
    git(upstream, "commit", "-qam", "feature")
    (root / "configure-projects").write_text(f"c:feature:{upstream}\n")
    (root / "projects/c/untracked").write_text("x")
    proc = cli(root, "configure")
    assert proc.returncode == 0, proc.stderr
    assert "projects/c has uncommitted changes" in proc.stderr
    assert (root / "projects/c/src/a.txt").read_text() == "feature\n"


def test_bad_jobs(root: Path) -> None:
    proc = cli(root, "-j", "0", "world")
    assert proc.returncode == 2 and "-j must be at least 1" in proc.stderr


def test_debug_configure_names_platform(root: Path) -> None:
    assert cli(root, "configure", "-d").returncode == 0
    env = (root / "build.env").read_text()
    assert "DEBUG=yes" in env and "FORCE_STRAP_REBUILD=no" in env and "CLOBBER=no" in env
    from liveforge.build.kinds import known_kinds
    from liveforge.build.workspace import Workspace

    assert Workspace(root, known_kinds()).platform_dirname("20260101T000000Z") == \
        "platform-debug-20260101T000000Z"


def test_clone_failure_says_what_git_said_first(root: Path) -> None:
    """git ends some complaints with advice ("... and the repository exists."): the error is
    git's first complaint, not the advice's last line."""
    (root / "configure-projects").write_text(f"c:main:file://{root}/no-such-repo\n")
    proc = cli(root, "configure")
    assert_one_error(proc, f"cannot clone file://{root}/no-such-repo into {root}/projects/c: "
                     f"'{root}/no-such-repo' does not appear to be a git repository", code=1)


@pytest.mark.parametrize("jobs", ["x", "1.5", "²"])
def test_max_jobs_that_is_not_a_number_names_its_file(root: Path, jobs: str) -> None:
    (root / "configure-build").write_text(f"MAX_JOBS={jobs}\n")
    assert_one_error(cli(root, "configure"),
                     f"liveforge: error: {root}/configure-build: MAX_JOBS={jobs!r} is not a number")
    (root / "configure-build").unlink()
    cli(root, "configure", check=True)
    (root / "build.env").write_text(f"MAX_JOBS={jobs}\n")
    assert_one_error(cli(root, "world"),
                     f"liveforge: error: {root}/build.env: MAX_JOBS={jobs!r} is not a number")


@pytest.mark.parametrize("makefile", ["/etc/passwd", "../../etc/passwd", "src/../../x", ""])
def test_a_makefile_outside_the_component_is_refused(root: Path, makefile: str) -> None:
    (root / "platform.toml").write_text(GOOD.replace(
        'path = "projects/b"', f'path = "projects/b"\nmakefile = "{makefile}"'))
    assert_one_error(cli(root, "world"), f"{root}/platform.toml:11: component 'b': makefile "
                     f"must be a file inside the component, not {makefile!r}")
    assert not (root / "0-a-stamp").exists()


@pytest.mark.parametrize("target", ["", "-f/etc/passwd", "--eval=x", "two words"])
def test_a_target_that_is_no_make_target_is_refused(root: Path, target: str) -> None:
    (root / "platform.toml").write_text(GOOD.replace(
        'path = "projects/b"', f'path = "projects/b"\ntargets = ["world", "{target}"]'))
    assert_one_error(cli(root, "world"), f"{root}/platform.toml:11: component 'b': targets "
                     f"must be a list of make targets, not {target!r}")


@pytest.mark.parametrize("path", [".", "..", "projects/.."])
def test_a_component_that_holds_the_workspace_is_refused(root: Path, path: str) -> None:
    """Its source would hold the proto area, the logs and the stamps: stale after every
    build, forever."""
    (root / "platform.toml").write_text(GOOD.replace('path = "projects/b"', f'path = "{path}"'))
    for cwd in (None, root):
        proc = cli(Path(".") if cwd else root, "status", cwd=cwd)
        assert_one_error(proc, f"platform.toml:10: component 'b': path {path!r} holds the "
                         "workspace (its build outputs would be the component's source: "
                         "always stale)")


@pytest.mark.parametrize("name", ["build.env", "configure-build", "configure-projects"])
def test_an_input_file_that_is_a_directory_is_named(root: Path, name: str) -> None:
    (root / name).mkdir()
    assert_one_error(cli(root, "status"), f"{root / name}: not a file", code=2)
    (root / name).rmdir()
    (root / name).symlink_to("nowhere")  # a dangling link is no more a file
    assert_one_error(cli(root, "status"), f"{root / name}: not a file", code=2)
