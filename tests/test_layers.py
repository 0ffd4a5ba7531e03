"""The layer contracts of pyproject.toml hold: util at the bottom, no circles (import-linter)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed: tools/install-deps installs it")
    return found


def test_layer_contracts_are_kept() -> None:
    proc = subprocess.run([lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports over a copy of the package in which ``module`` (a path under
    src/liveforge) ends with ``line``."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "liveforge", copy / "liveforge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    changed = copy / "liveforge" / module
    changed.write_text(changed.read_text() + f"\n{line}  # noqa\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return subprocess.run([lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})


def test_an_upward_import_breaks_a_contract(tmp_path: Path) -> None:
    """The contracts can fail: a copy of the package whose util imports build is refused."""
    proc = lint_with(tmp_path, "util/errors.py", "from liveforge.build import cli")
    assert proc.returncode != 0
    assert "liveforge.util.errors -> liveforge.build.cli" in proc.stdout


def test_a_kind_importing_another_kind_breaks_a_contract(tmp_path: Path) -> None:
    proc = lint_with(tmp_path, "build/kinds/deb.py", "from liveforge.build.kinds.extra import kind")
    assert proc.returncode != 0
    assert "a kind never imports another kind" in proc.stdout
    assert "liveforge.build.kinds.deb -> liveforge.build.kinds.extra.kind" in proc.stdout
