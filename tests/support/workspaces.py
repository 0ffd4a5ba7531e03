"""Helpers that make real workspaces: git repositories of make-contract components, and the
workspaces that use them."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Sequence
from pathlib import Path

from liveforge.build.cli import main
from tests.support.cli import cli

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}

MAKEFILE = textwrap.dedent("""\
    NAME := {name}
    world:
    \t@test "$(FAIL)" != yes || {{ echo "deliberate failure of $(NAME)"; exit 1; }}
    \tmkdir -p build
    \tcat src/*.txt > build/$(NAME).txt
    \techo "debug=$(DEBUG) color=$(COLOR)" >> build/$(NAME).txt
    install:
    \tmkdir -p $(DESTDIR)/usr/share/$(NAME)
    \tcp build/$(NAME).txt $(DESTDIR)/usr/share/$(NAME)/
    manifest:
    \t( echo 'd usr 0755 root root'; echo 'd usr/share 0755 root root'; \\
    \t  echo 'd usr/share/$(NAME) 0755 root root'; \\
    \t  echo 'f usr/share/$(NAME)/$(NAME).txt 0644 root root' ) > $(DESTDIR)/$(DESTNAME)
    update:
    \t@true
    clean:
    \trm -rf build
    check:
    \ttest -f src/a.txt
    """)


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def make_repo(path: Path, name: str, makefile: str | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "src").mkdir()
    (path / "src" / "a.txt").write_text(f"{name} source\n")
    (path / "Makefile").write_text(makefile or MAKEFILE.format(name=name))
    (path / ".gitignore").write_text("build/\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", f"initial {name}")
    return path


def commit_all(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def make_workspace(root: Path, deps: dict[str, Sequence[str]], env: dict[str, Sequence[str]]
                   | None = None, upstream: Path | None = None) -> Path:
    """A workspace whose components are cloned (by configure) from repos under ``upstream``."""
    upstream = upstream or root.parent / f"{root.name}-upstream"
    root.mkdir(parents=True)
    lines = ["[platform]", 'name = "test"', ""]
    projects = []
    for name, needs in deps.items():
        if not (upstream / name).exists():
            make_repo(upstream / name, name)
        lines += [f"[components.{name}]", 'kind = "make"', f'path = "projects/{name}"',
                  f"depends = {json.dumps(list(needs))}"]
        if env and name in env:
            lines.append(f"env = {json.dumps(list(env[name]))}")
        lines.append("")
        projects.append(f"{name}:main:{upstream / name}")
    (root / "platform.toml").write_text("\n".join(lines))
    (root / "configure-projects").write_text("# test projects\n" + "\n".join(projects) + "\n")
    return root


LIVE_STAMP = "20240102T030405Z"  # the stamp live_workspace configures with
LIVE_OVERLAY_MANIFEST = """\
d boot 0755 root root
f boot/vmlinuz 0644 root root
d etc 0755 root root
f etc/passwd 0644 root root
f etc/group 0644 root root
d etc/version 0755 root root
f etc/version/platform 0444 root root
"""


def live_workspace(root: Path, upstream: Path) -> Path:
    """A configured workspace that ``live`` can build: a git component cloned from
    ``upstream``, a component that is a plain directory (not a git checkout), and an overlay
    with the accounts and a stand-in kernel."""
    make_workspace(root, {"comp": []}, upstream=upstream)
    plain = root / "plain"
    (plain / "src").mkdir(parents=True)
    (plain / "src" / "a.txt").write_text("plain source\n")
    (plain / "Makefile").write_text(MAKEFILE.format(name="plain"))
    overlay = root / "overlay"
    (overlay / "boot").mkdir(parents=True)
    (overlay / "boot" / "vmlinuz").write_bytes(b"not really a kernel\n" * 100)
    (overlay / "etc").mkdir()
    (overlay / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (overlay / "etc" / "group").write_text("root:x:0:\n")
    (overlay / "manifest").write_text(LIVE_OVERLAY_MANIFEST)
    toml = (root / "platform.toml").read_text()
    toml = toml.replace('name = "test"', 'name = "test"\noverlays = ["overlay"]\n'
                        'kernel = "boot/vmlinuz"')
    (root / "platform.toml").write_text(toml + '\n[components.plain]\nkind = "make"\n'
                                        'path = "plain"\n')
    configured = cli(root, "configure", stamp=LIVE_STAMP, pythonpath=True, timeout=300)
    assert configured.returncode == 0
    return root


def run(root: Path, *args: str, capsys=None) -> tuple[int, list[dict]]:  # type: ignore[no-untyped-def]
    """Run the CLI with --json; return the exit code and the JSON events."""
    code = main(["-C", str(root), "--json", *args])
    events: list[dict] = []
    if capsys is not None:
        out = capsys.readouterr().out
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return code, events


def built(events: list[dict]) -> set[str]:
    return {e["component"] for e in events if e["event"] == "finish"}
