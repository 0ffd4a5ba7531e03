"""Bad input for the extra kind: each is reported clearly and leaves no stamp behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from liveforge.cli import main
from liveforge.errors import InputError, InputErrors
from liveforge.kinds.extra_package import build_order, load_packages
from test_extra import make_ws, state, www  # noqa: F401  (www is a fixture)

BAD_PATCH = """\
--- a/demo.h
+++ b/demo.h
@@ -1,2 +1,2 @@
-#define DEMO_VERSION "9.9"
+#define DEMO_VERSION "9.9-nope"
 const char *demo_version(void);
"""


def world(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-C", str(root), "world"])
    out = capsys.readouterr()
    logs = "\n".join(p.read_text(errors="replace") for p in (root / "log").glob("*.log")) \
        if (root / "log").is_dir() else ""
    return code, out.err + out.out + logs


def no_stamps(root: Path) -> bool:
    return not list(root.glob("0-extra*-stamp")) and \
        not list((state(root) / "stamps").rglob("*.json"))


def test_checksum_mismatch(tmp_path: Path, www: tuple[Path, str],  # noqa: F811
                           capsys: pytest.CaptureFixture[str]) -> None:
    root = make_ws(tmp_path / "ws", www, app=False, lib_sha="ab" * 32)
    code, text = world(root, capsys)
    assert code != 0
    assert "checksum mismatch for libdemo-1.0.tar.gz" in text
    assert "expected sha256 " + "ab" * 32 in text
    assert not list((tmp_path / "xdg").rglob("libdemo-1.0.tar.gz*"))
    assert no_stamps(root)


def test_unfetchable_source_with_and_without_cache(tmp_path: Path,
                                                   www: tuple[Path, str],  # noqa: F811
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    files, _url = www
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    root = make_ws(tmp_path / "ws", (files, dead), app=False)
    code, text = world(root, capsys)
    assert code != 0 and f"cannot fetch {dead}/libdemo-1.0.tar.gz" in text
    assert no_stamps(root)
    # the same pinned file in the cache (from another workspace) needs no server
    warm = make_ws(tmp_path / "warm", www, app=False)
    assert world(warm, capsys)[0] == 0
    root2 = make_ws(tmp_path / "ws2", (files, dead), app=False)
    (root2 / "build.env").write_text("FORCE_STRAP_REBUILD=yes\n")
    code, text = world(root2, capsys)
    assert code == 0, text


def test_failing_patch(tmp_path: Path, www: tuple[Path, str],  # noqa: F811
                       capsys: pytest.CaptureFixture[str]) -> None:
    root = make_ws(tmp_path / "ws", www, app=False)
    patch = root / "projects/extra/libdemo/Patches/0002-bad.patch"
    patch.write_text(BAD_PATCH)
    code, text = world(root, capsys)
    assert code != 0
    assert f"patch {patch} does not apply" in text
    assert "rejected hunks" in text and '+#define DEMO_VERSION "9.9-nope"' in text
    build = state(root) / "build" / "libdemo"
    assert not build.exists() or list(build.iterdir()) == []  # nothing half-built kept
    assert no_stamps(root)


@pytest.mark.parametrize("extra,what,message", [
    ('configure_options = ["--enable-fail"]\n', "configure", "configure: deliberate failure"),
    ('make_options = ["FAIL=1"]\n', "make", "make: deliberate failure"),
])
def test_configure_or_make_failure(tmp_path: Path, www: tuple[Path, str],  # noqa: F811
                                   capsys: pytest.CaptureFixture[str], extra: str, what: str,
                                   message: str) -> None:
    root = make_ws(tmp_path / "ws", www, app=False, lib_extra=extra)
    code = main(["-C", str(root), "world"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"libdemo libdemo-1.0-64strap: {what} failed" in err
    assert message in err  # the log tail is printed
    assert str(root / "log") in err  # with the log's path
    assert no_stamps(root)


def test_unknown_dependency_and_cycle(tmp_path: Path, www: tuple[Path, str],  # noqa: F811
                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = make_ws(tmp_path / "ws", www, lib_extra='depends = ["zstd"]\n')
    code, text = world(root, capsys)
    assert code == 2
    toml = root / "projects/extra/libdemo/package.toml"
    assert f"{toml}:" in text and "depends on unknown package 'zstd'" in text
    with pytest.raises(InputErrors, match="unknown package 'zstd'"):
        build_order(load_packages(root / "projects/extra"))
    cyc = make_ws(tmp_path / "cyc", www, lib_extra='depends = ["app"]\n')
    code, text = world(cyc, capsys)
    assert code == 2
    assert "package dependency cycle: " in text
    with pytest.raises(InputError, match=r"cycle: (libdemo -> app -> libdemo|"
                                         r"app -> libdemo -> app)"):
        build_order(load_packages(cyc / "projects/extra"))


def test_package_toml_errors_have_lines(tmp_path: Path, www: tuple[Path, str]  # noqa: F811
                                        ) -> None:
    root = make_ws(tmp_path / "ws", www, app=False,
                   lib_extra='build = "cmake"\nprefix = 7\nbogus = 1\n')
    with pytest.raises(InputErrors) as info:
        load_packages(root / "projects/extra")
    text = str(info.value)
    toml = root / "projects/extra/libdemo/package.toml"
    assert f"{toml}:6: build must be one of autotools, make, commands" in text
    assert f"{toml}:7: prefix must be a str" in text
    assert f"{toml}:8: unknown key 'bogus'" in text
    (toml.parent / "package.toml").write_text('name = "x"\nname = "y"\n')
    with pytest.raises(InputErrors, match=r"package.toml:2: Cannot overwrite a value\Z"):
        load_packages(root / "projects/extra")
