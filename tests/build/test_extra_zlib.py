"""The demo's real zlib, from the Debian archive: 32/64-bit, strap, our version patch."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from liveforge.build.cli import main
from tests.support import DEMO
from tests.support.extras import debian_reachable, elf_class

DEMO_EXTRA = DEMO / "projects" / "extra"

PROGRAM = """\
#include <stdio.h>
#include <string.h>
#include <zlib.h>
int main(void) {
    printf("%s %s\\n", ZLIB_VERSION, zlibVersion());
    return strcmp(zlibVersion(), "1.2.13-liveforge") != 0;
}
"""


@pytest.mark.network
@pytest.mark.slow
def test_demo_zlib_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = debian_reachable()
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "ws"
    shutil.copytree(DEMO_EXTRA, root / "projects" / "extra")
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.extra]\nkind = "extra"\n'
        'path = "projects/extra"\n')
    assert main(["-C", str(root), "world"]) == 0
    proto = root / "proto"
    assert elf_class(proto / "usr/lib/libz.so.1.2.13-liveforge") == 64
    assert elf_class(proto / "usr/lib/32/libz.so.1.2.13-liveforge") == 32
    assert elf_class(root / "proto.strap/usr/lib/32/libz.so.1.2.13-liveforge") == 32
    assert '"1.2.13-liveforge"' in (proto / "usr/include/zlib.h").read_text()
    manifest = (root / "manifest.d/extra.manifest").read_text()
    assert "f usr/lib/libz.so.1.2.13-liveforge 0755 root root" in manifest
    assert "$" not in manifest.split("\n", 1)[1]
    # a program built against proto's zlib sees our patch
    (tmp_path / "v.c").write_text(PROGRAM)
    for bits, libdir in (("64", proto / "usr/lib"), ("32", proto / "usr/lib/32")):
        exe = tmp_path / f"v{bits}"
        subprocess.run(["gcc", f"-m{bits}", "-isystem", str(proto / "usr/include"),
                        "-o", str(exe), str(tmp_path / "v.c"), f"-L{libdir}", "-lz"],
                       check=True)
        out = subprocess.run([str(exe)], env={**os.environ, "LD_LIBRARY_PATH": str(libdir)},
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == "1.2.13-liveforge 1.2.13-liveforge"
        assert elf_class(exe) == int(bits)
