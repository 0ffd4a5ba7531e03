"""A local flat Debian repository (unsigned, file://) built from generated packages."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def build_deb(out: Path, name: str, version: str, files: dict[str, str] | None = None,
              links: dict[str, str] | None = None, control_extra: str = "",
              modes: dict[str, int] | None = None) -> Path:
    """dpkg-deb --build a package holding ``files`` (path -> text) and ``links``."""
    root = out.parent / f".build-{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
        f"Maintainer: test <t@example.invalid>\nDescription: test package {name}\n"
        f"{control_extra}")
    for path, text in (files or {}).items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod((modes or {}).get(path, 0o644))
    for path, target in (links or {}).items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root),
                    str(out)], check=True, capture_output=True)
    return out


def index_repo(repo: Path) -> None:
    """Write Packages and a Release listing its sha256 (a flat repository, ``./``)."""
    packages = subprocess.run(["dpkg-scanpackages", "-m", "."], cwd=repo, check=True,
                              capture_output=True, text=True).stdout
    (repo / "Packages").write_text(packages)
    data = packages.encode()
    (repo / "Release").write_text(
        "Origin: liveforge-test\nLabel: liveforge-test\nSuite: test\n"
        "Date: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nSHA256:\n"
        f" {hashlib.sha256(data).hexdigest()} {len(data)} Packages\n")


def sample_repo(repo: Path, tool_version: str = "1.0") -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    build_deb(repo / f"lf-tool_{tool_version}_amd64.deb", "lf-tool", tool_version,
              files={"usr/bin/lftool": "#!/bin/sh\necho lftool\n",
                     "usr/share/doc/lf-tool/README": "readme\n",
                     "boot/vmlinuz-9.9-test": "not a kernel\n"},
              links={"usr/bin/lft": "lftool", "usr/bin/abs": "/usr/bin/lftool"},
              modes={"usr/bin/lftool": 0o755})
    build_deb(repo / f"lf-meta_{tool_version}_amd64.deb", "lf-meta", tool_version,
              control_extra=f"Section: metapackages\nDepends: lf-tool (= {tool_version})\n")
    index_repo(repo)
    return repo
