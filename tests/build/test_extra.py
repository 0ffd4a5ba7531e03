"""The extra kind end to end: fetch over loopback HTTP, patch, 32/64 build, strap, cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from liveforge.build.cli import main
from tests.support import file_sha256
from tests.support.extras import APP_PATCH, LIB_PATCH, elf_class, extra_state, extra_workspace

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="patch is not installed")


def world(root: Path, *args: str) -> int:
    return main(["-C", str(root), *args, "world"])


def logs(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((root / "log").glob("*.log")))


def run_with_lib(root: Path, program: Path, bits: str = "") -> str:
    libdir = root / "proto" / "usr" / "lib" / bits
    env = {**os.environ, "LD_LIBRARY_PATH": str(libdir)}
    return subprocess.run([str(program)], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_build_variants_patch_strap_manifest(tmp_path: Path, www: tuple[Path, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = extra_workspace(tmp_path / "ws", www)
    assert world(root) == 0
    proto = root / "proto"
    assert elf_class(proto / "usr/lib/libdemo.so.1") == 64
    assert elf_class(proto / "usr/lib/32/libdemo.so.1") == 32
    assert os.readlink(proto / "usr/lib/32/libdemo.so") == "libdemo.so.1"
    assert elf_class(proto / "usr/bin/app") == 64
    assert '"1.0-liveforge"' in (proto / "usr/include/demo.h").read_text()
    # the patch took effect, and app was built against proto's libdemo
    assert run_with_lib(root, proto / "usr/bin/app") == "patched app 1.0-liveforge"
    build = extra_state(root) / "build"
    assert sorted(p.name for p in (build / "libdemo").iterdir()) == [
        "libdemo-1.0-32", "libdemo-1.0-64", "libdemo-1.0-64strap"]
    assert elf_class(extra_state(root) / "stage/libdemo/libdemo-1.0-32/usr/bin/demo") == 32
    # strap phase: built against the host into proto.strap
    assert elf_class(root / "proto.strap/usr/lib/libdemo.so.1") == 64
    assert not (root / "proto.strap/usr/bin/app").exists()
    assert (root / "0-extra-strap-stamp").is_file() and (root / "0-extra-stamp").is_file()
    manifest = (root / "manifest.d/extra.manifest").read_text()
    assert "# 1.0" in manifest and "usr/share/demo-1.0.txt" in manifest
    assert "usr/bin/$UNKNOWN" in manifest
    # a second run builds nothing
    before = {p: p.stat().st_ino for p in (extra_state(root) / "stage").glob("*/*")}
    capsys.readouterr()
    assert world(root) == 0
    assert "all 2 components are up to date" in capsys.readouterr().out
    assert {p: p.stat().st_ino for p in (extra_state(root) / "stage").glob("*/*")} == before


def test_patch_change_rebuilds_that_package_only(tmp_path: Path,
                                                 www: tuple[Path, str]) -> None:
    root = extra_workspace(tmp_path / "ws", www)
    assert world(root) == 0
    stage = extra_state(root) / "stage"
    lib_ino = (stage / "libdemo/libdemo-1.0-64").stat().st_ino
    app_ino = (stage / "app/app-2.0-64").stat().st_ino
    patch = root / "projects/extra/app/Patches/0001-greeting.patch"
    patch.write_text(APP_PATCH.replace("patched app", "repatched app"))
    (root / "proto/usr/lib/libdemo.so.1").unlink()  # redelivered from staging, not rebuilt
    assert world(root) == 0
    assert (stage / "libdemo/libdemo-1.0-64").stat().st_ino == lib_ino
    assert (stage / "app/app-2.0-64").stat().st_ino != app_ino
    assert run_with_lib(root, root / "proto/usr/bin/app") == "repatched app 1.0-liveforge"
    # a change to libdemo's patches rebuilds libdemo and its dependent app
    lib_patch = root / "projects/extra/libdemo/Patches/0001-version-suffix.patch"
    lib_patch.write_text(LIB_PATCH.replace("1.0-liveforge", "1.0-lf2"))
    assert world(root) == 0
    assert (stage / "libdemo/libdemo-1.0-64").stat().st_ino != lib_ino
    assert run_with_lib(root, root / "proto/usr/bin/app") == "repatched app 1.0-lf2"


def test_strap_from_the_build_cache_corrupt_and_forced(
        tmp_path: Path, www: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The strap phase is a step like any: a second workspace restores it from the build
    cache; a corrupt entry is found by its digest and rebuilt; FORCE_STRAP_REBUILD=yes
    builds it locally although the cache has it."""
    monkeypatch.setenv("CACHE_MODE", "on")
    store = Path(os.environ["LIVEFORGE_CACHE_DIR"])
    first = extra_workspace(tmp_path / "ws1", www)
    assert world(first) == 0
    second = extra_workspace(tmp_path / "ws2", www)
    capsys.readouterr()
    assert world(second, "--json") == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["component"] for e in events if e["event"] == "restored"} == {
        "extra:strap", "extra"}
    assert not (extra_state(second) / "build/libdemo/libdemo-1.0-64strap").exists()
    assert elf_class(second / "proto.strap/usr/lib/libdemo.so.1") == 64
    # a corrupt entry is detected by its digest and rebuilt
    for archive in (store / "cas").iterdir():
        archive.write_bytes(b"garbage")
    third = extra_workspace(tmp_path / "ws3", www)
    assert world(third) == 0
    assert "is damaged" in capsys.readouterr().err
    assert (extra_state(third) / "build/libdemo/libdemo-1.0-64strap").is_dir()
    # FORCE_STRAP_REBUILD=yes builds locally although the cache has the entry
    fourth = extra_workspace(tmp_path / "ws4", www)
    (fourth / "build.env").write_text("FORCE_STRAP_REBUILD=yes\n")
    assert world(fourth) == 0
    assert "FORCE_STRAP_REBUILD=yes" in logs(fourth)
    assert (extra_state(fourth) / "build/libdemo/libdemo-1.0-64strap").is_dir()


def test_build_one_package_by_hand(tmp_path: Path, www: tuple[Path, str]) -> None:
    root = extra_workspace(tmp_path / "ws", www)
    assert world(root) == 0
    stage = extra_state(root) / "stage/libdemo"
    inos = {p.name: p.stat().st_ino for p in stage.iterdir()}
    assert main(["-C", str(root), "build", "extra:libdemo", "--variant", "32"]) == 0
    assert (stage / "libdemo-1.0-32").stat().st_ino != inos["libdemo-1.0-32"]
    assert (stage / "libdemo-1.0-64").stat().st_ino == inos["libdemo-1.0-64"]
    assert main(["-C", str(root), "build", "extra:libdemo", "--strap"]) == 0
    assert (stage / "libdemo-1.0-64strap").stat().st_ino != inos["libdemo-1.0-64strap"]
    stamp = json.loads((extra_state(root) / "stamps/strap/libdemo.json").read_text())
    assert stamp["variants"] == ["libdemo-1.0-64strap"]


def test_warm_cache_needs_no_network(tmp_path: Path, www: tuple[Path, str]) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False)
    assert world(root) == 0
    files, _url = www
    lib_sha = file_sha256(files / "libdemo-1.0.tar.gz")
    for p in files.iterdir():
        p.unlink()
    second = extra_workspace(tmp_path / "ws2", www, app=False, lib_sha=lib_sha)
    (second / "build.env").write_text("FORCE_STRAP_REBUILD=yes\n")
    assert world(second, "--offline") == 0
    assert elf_class(second / "proto/usr/lib/32/libdemo.so.1") == 32


def test_toolchain_env_flags(tmp_path: Path) -> None:
    from liveforge.build.kinds.extra.build import toolchain_env

    proto = tmp_path / "proto"
    env = toolchain_env({}, cc="gcc", debug=True, bits="32", against=proto,
                        libdir="/usr/lib/32", prefix="/usr", jobs=3)
    assert env["CC"] == "gcc -m32"
    assert env["CFLAGS"].split()[:2] == ["-O0", "-g"]
    assert f"-isystem {proto}/usr/include" in env["CPPFLAGS"]
    assert env["LDFLAGS"].startswith(f"-L{proto}/usr/lib/32 ")
    release = toolchain_env({}, cc="gcc", debug=False, bits="64", against=proto,
                            libdir="/usr/lib", prefix="/usr", jobs=3)
    assert release["CC"] == "gcc -m64" and "-g" not in release["CFLAGS"].split()


def test_debug_rebuilds_packages(tmp_path: Path, www: tuple[Path, str]) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False)
    assert world(root) == 0
    ino = (extra_state(root) / "stage/libdemo/libdemo-1.0-64").stat().st_ino
    (root / "build.env").write_text("DEBUG=yes\n")
    assert world(root) == 0
    assert (extra_state(root) / "stage/libdemo/libdemo-1.0-64").stat().st_ino != ino
    assert "-O0 -g" in logs(root)


def test_a_changed_dependency_rebuilds_the_packages(tmp_path: Path,
                                                    www: tuple[Path, str]) -> None:
    """The engine gives the kind its dependencies' input hashes (BuildContext.deps, not their
    stamp files): a changed dependency rebuilds the packages, an unchanged one none."""
    root = extra_workspace(tmp_path / "ws", www, app=False)
    base = root / "projects" / "base"
    base.mkdir()
    (base / "Makefile").write_text("world:\n\t@true\ninstall:\n\t@true\n"
                                   "manifest:\n\t@touch $(DESTDIR)/$(DESTNAME)\n")
    (base / "data").write_text("1\n")
    toml = root / "platform.toml"
    toml.write_text(toml.read_text() + 'depends = ["base"]\n\n[components.base]\n'
                    'kind = "make"\npath = "projects/base"\n')
    assert world(root) == 0
    stamp = extra_state(root) / "stamps/main/libdemo.json"
    stage = extra_state(root) / "stage/libdemo/libdemo-1.0-64"
    first, ino = json.loads(stamp.read_text())["hash"], stage.stat().st_ino
    (root / "0-extra-stamp").unlink()  # the step runs again; its packages are up to date
    assert world(root) == 0
    assert json.loads(stamp.read_text())["hash"] == first and stage.stat().st_ino == ino
    (base / "data").write_text("2\n")
    # without its dependency rebuilt, the component builds against base as installed
    assert main(["-C", str(root), "build", "--no-deps", "extra"]) == 0
    assert json.loads(stamp.read_text())["hash"] == first and stage.stat().st_ino == ino
    assert world(root) == 0
    assert json.loads(stamp.read_text())["hash"] != first and stage.stat().st_ino != ino
