"""Bad input for the extra kind: each is reported clearly and leaves no stamp behind."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from liveforge.build.cli import main
from liveforge.build.kinds.extra.package import build_order, load_packages
from liveforge.util.errors import InputError, InputErrors
from tests.support.extras import extra_state, extra_workspace

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
        not list((extra_state(root) / "stamps").rglob("*.json"))


def test_checksum_mismatch(tmp_path: Path, www: tuple[Path, str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False, lib_sha="ab" * 32)
    code, text = world(root, capsys)
    assert code != 0
    assert "checksum mismatch for libdemo-1.0.tar.gz" in text
    assert "expected sha256 " + "ab" * 32 in text
    assert not list((tmp_path / "xdg").rglob("libdemo-1.0.tar.gz*"))
    assert no_stamps(root)


def test_unfetchable_source_with_and_without_cache(tmp_path: Path,
                                                   www: tuple[Path, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    files, _url = www
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    root = extra_workspace(tmp_path / "ws", (files, dead), app=False)
    code, text = world(root, capsys)
    assert code != 0 and f"cannot fetch {dead}/libdemo-1.0.tar.gz" in text
    assert no_stamps(root)
    # the same pinned file in the cache (from another workspace) needs no server
    warm = extra_workspace(tmp_path / "warm", www, app=False)
    assert world(warm, capsys)[0] == 0
    root2 = extra_workspace(tmp_path / "ws2", (files, dead), app=False)
    (root2 / "build.env").write_text("FORCE_STRAP_REBUILD=yes\n")
    code, text = world(root2, capsys)
    assert code == 0, text


def test_failing_patch(tmp_path: Path, www: tuple[Path, str],
                       capsys: pytest.CaptureFixture[str]) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False)
    patch = root / "projects/extra/libdemo/Patches/0002-bad.patch"
    patch.write_text(BAD_PATCH)
    code, text = world(root, capsys)
    assert code != 0
    assert f"patch {patch} does not apply" in text
    assert "rejected hunks" in text and '+#define DEMO_VERSION "9.9-nope"' in text
    build = extra_state(root) / "build" / "libdemo"
    assert not build.exists() or list(build.iterdir()) == []  # nothing half-built kept
    assert no_stamps(root)


@pytest.mark.parametrize("extra,what,message", [
    ('configure_options = ["--enable-fail"]\n', "configure", "configure: deliberate failure"),
    ('make_options = ["FAIL=1"]\n', "make", "make: deliberate failure"),
])
def test_configure_or_make_failure(tmp_path: Path, www: tuple[Path, str],
                                   capsys: pytest.CaptureFixture[str], extra: str, what: str,
                                   message: str) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False, lib_extra=extra)
    code = main(["-C", str(root), "world"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"libdemo libdemo-1.0-64strap: {what} failed" in err
    assert message in err  # the log tail is printed
    assert str(root / "log") in err  # with the log's path
    assert no_stamps(root)


def test_unknown_dependency_and_cycle(tmp_path: Path, www: tuple[Path, str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = extra_workspace(tmp_path / "ws", www, lib_extra='depends = ["zstd"]\n')
    code, text = world(root, capsys)
    assert code == 2
    toml = root / "projects/extra/libdemo/package.toml"
    assert f"{toml}:" in text and "depends on unknown package 'zstd'" in text
    with pytest.raises(InputErrors, match="unknown package 'zstd'"):
        build_order(load_packages(root / "projects/extra"))
    cyc = extra_workspace(tmp_path / "cyc", www, lib_extra='depends = ["app"]\n')
    code, text = world(cyc, capsys)
    assert code == 2
    assert "package dependency cycle: " in text
    with pytest.raises(InputError, match=r"cycle: (libdemo -> app -> libdemo|"
                                         r"app -> libdemo -> app)"):
        build_order(load_packages(cyc / "projects/extra"))


def test_package_toml_errors_have_lines(tmp_path: Path, www: tuple[Path, str]
                                        ) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False,
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


def source_line(root: Path, line: str) -> Path:
    """Add ``line`` to libdemo's [source] table (the last one of its package.toml)."""
    toml = root / "projects/extra/libdemo/package.toml"
    toml.write_text(toml.read_text() + line + "\n")
    return toml


@pytest.mark.parametrize("name", ["../../../../escaped.tar.gz", "{tmp}/escaped.tar.gz",
                                  "sub/escaped.tar.gz", "..", "", "x\0.tar.gz"])
def test_source_file_must_be_a_plain_name(tmp_path: Path, www: tuple[Path, str],
                                          capsys: pytest.CaptureFixture[str], name: str
                                          ) -> None:
    # ../../../../ from the cache's sources/<sha256>/ is tmp_path
    root = extra_workspace(tmp_path / "ws", www, app=False)
    name = name.format(tmp=tmp_path)
    toml = source_line(root, f"file = {json.dumps(name)}")
    code = main(["-C", str(root), "world"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.splitlines() == [f"liveforge: {toml}:11: [source] file must be a plain file "
                                f"name, not {name!r}"]
    assert not (tmp_path / "escaped.tar.gz").exists()
    assert not list((tmp_path / "xdg").rglob("*.tar.gz*"))


def test_url_without_a_plain_file_name_needs_file(tmp_path: Path,
                                                  www: tuple[Path, str]
                                                  ) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False)
    toml = root / "projects/extra/libdemo/package.toml"
    url = f"{www[1]}/libdemo-1.0.tar.gz"
    toml.write_text(toml.read_text().replace(url, f"{www[1]}/.."))
    with pytest.raises(InputErrors) as info:
        load_packages(root / "projects/extra")
    assert str(info.value) == (f"{toml}:9: [source] url {www[1] + '/..'!r} ends in no plain "
                               "file name: name the file with file = \"NAME\"")
    toml.write_text(toml.read_text() + 'file = "libdemo-1.0.tar.gz"\n')
    assert load_packages(root / "projects/extra")["libdemo"].source.name == "libdemo-1.0.tar.gz"


@pytest.mark.parametrize(("setting", "line", "message"), [
    ('debian = "-oDir::Cache=/tmp"\ndebian_version = "1.0-1"', 9,
     "[source] debian must be a Debian package name, not '-oDir::Cache=/tmp'"),
    ('debian = "zlib"\ndebian_version = "../../x"', 10,
     "[source] debian_version must be a Debian version, not '../../x'"),
])
def test_debian_source_names_are_checked(tmp_path: Path, www: tuple[Path, str],
                                         setting: str, line: int, message: str) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False)
    toml = root / "projects/extra/libdemo/package.toml"
    text = toml.read_text()
    toml.write_text(text[:text.index("url = ")] + setting + "\n" +
                    text[text.index("sha256 = "):])
    with pytest.raises(InputErrors) as info:
        load_packages(root / "projects/extra")
    assert str(info.value) == f"{toml}:{line}: {message}"


def test_patches_stay_inside_the_package(tmp_path: Path, www: tuple[Path, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.patch"
    patch = www[0].parent / "ws/projects/extra/libdemo/Patches/0001-version-suffix.patch"
    root = extra_workspace(tmp_path / "ws", www, app=False,
                           lib_extra=f'patches = ["{secret}", "../../../../secret.patch", '
                                     '"Patches/../Patches/0001-version-suffix.patch"]\n')
    secret.write_text(patch.read_text())
    toml = root / "projects/extra/libdemo/package.toml"
    code, text = world(root, capsys)
    assert code == 2
    assert [line for line in text.splitlines() if line.startswith("liveforge")] == [
        f"liveforge: {toml}:6: patch {str(secret)!r} is not a path inside the package folder",
        f"liveforge: {toml}:6: patch '../../../../secret.patch' is not a path inside the "
        "package folder",
        f"liveforge: {toml}:6: patch 'Patches/../Patches/0001-version-suffix.patch' is not a "
        "path inside the package folder"]
    assert no_stamps(root)


@pytest.mark.parametrize(("setting", "message"), [
    ('prefix = "/usr/../../escaped"', "prefix must be an absolute path without '..', not "
                                      "'/usr/../../escaped'"),
    ('prefix = "usr"', "prefix must be an absolute path without '..', not 'usr'"),
    ('[variant.64]\nlibdir = "/usr/lib/../../../escaped"',
     "libdir must be an absolute path without '..', not '/usr/lib/../../../escaped'"),
])
def test_install_paths_stay_inside_the_stage(tmp_path: Path, www: tuple[Path, str],
                                             setting: str, message: str) -> None:
    table = setting.startswith("[")
    root = extra_workspace(tmp_path / "ws", www, app=False,
                           lib_extra="" if table else setting + "\n")
    toml = root / "projects/extra/libdemo/package.toml"
    if table:
        toml.write_text(toml.read_text() + setting + "\n")
    with pytest.raises(InputErrors) as info:
        load_packages(root / "projects/extra")
    line = len(toml.read_text().splitlines()) if table else 6
    assert str(info.value) == f"{toml}:{line}: {message}"


def test_non_utf8_package_toml_names_its_line(tmp_path: Path,
                                              www: tuple[Path, str]
                                              ) -> None:
    root = extra_workspace(tmp_path / "ws", www, app=False)
    toml = root / "projects/extra/libdemo/package.toml"
    toml.write_bytes(toml.read_bytes().replace(b'version = "1.0"',
                                               b'version = "1.0" # caf\xe9'))
    with pytest.raises(InputErrors) as info:
        load_packages(root / "projects/extra")
    assert str(info.value) == f"{toml}:2: not UTF-8 text (byte 0xe9 in column 30)"


def _package_toml_a_folder(comp: Path) -> Path:
    (comp / "app/package.toml").unlink()
    (comp / "app/package.toml").mkdir()
    return comp / "app/package.toml"


def _patches_a_file(comp: Path) -> Path:
    for patch in (comp / "app/Patches").iterdir():
        patch.unlink()
    (comp / "app/Patches").rmdir()
    (comp / "app/Patches").write_text("0001-greeting.patch\n")
    return comp / "app/Patches"


def _a_patch_a_folder(comp: Path) -> Path:
    (comp / "app/Patches/0002-more.patch").mkdir()
    return comp / "app/Patches/0002-more.patch"


@pytest.mark.parametrize(("change", "problem"), [
    (_package_toml_a_folder, "package.toml is not a file"),
    (_patches_a_file, "Patches is not a folder of patches"),
    (_a_patch_a_folder, "a patch is a file, not a folder")])
def test_a_folder_where_a_file_belongs_and_the_other_way_round(
        tmp_path: Path, www: tuple[Path, str], capsys: pytest.CaptureFixture[str],
        change: Callable[[Path], Path], problem: str) -> None:
    """The package (or patch) was left out and the build said it was done."""
    root = extra_workspace(tmp_path / "ws", www)
    where = change(root / "projects/extra")
    with pytest.raises(InputErrors) as info:
        load_packages(root / "projects/extra")
    assert str(info.value) == f"{where}: {problem}"
    code, text = world(root, capsys)
    assert code == 2
    assert f"liveforge: {where}: {problem}" in text.splitlines()
    assert no_stamps(root)
