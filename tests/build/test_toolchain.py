"""The host identity in every cache key: the C library is part of it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from liveforge.build.graph import plan
from liveforge.build.kinds import known_kinds
from liveforge.build.stepcache import step_keys
from liveforge.build.toolchain import host_identity
from liveforge.build.workspace import Workspace
from tests.support.workspaces import make_workspace, run


def test_the_host_names_the_c_library_ldd_reports() -> None:
    ldd = subprocess.run(["ldd", "--version"], capture_output=True, text=True,
                         check=True).stdout.splitlines()[0]
    libc = host_identity()["libc"]
    assert libc.startswith("glibc ") and ldd.endswith(" " + libc.split()[1])


def test_another_c_library_gives_other_cache_keys(tmp_path: Path, capsys,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(tmp_path / "ws", {"a": [], "b": ["a"]})
    assert run(root, "configure", capsys=capsys)[0] == 0
    ws = Workspace(root, known_kinds())
    planned = plan(ws)
    here = step_keys(ws, planned)
    assert step_keys(ws, planned) == here  # the same host: the same keys
    real = os.confstr
    # this host has one C library: another host's is what confstr would say there
    monkeypatch.setattr(os, "confstr", lambda name: "glibc 2.99" if name ==
                        "CS_GNU_LIBC_VERSION" else real(name))
    there = step_keys(ws, planned)
    assert set(there) == set(here) and all(there[s] != here[s] for s in here)
