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


def test_an_upward_import_breaks_a_contract(tmp_path: Path) -> None:
    """The contracts can fail: a copy of the package whose util imports build is refused."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "liveforge", copy / "liveforge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    errors = copy / "liveforge" / "util" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom liveforge.build import cli  # noqa\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    proc = subprocess.run([lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert "liveforge.util.errors -> liveforge.build.cli" in proc.stdout
