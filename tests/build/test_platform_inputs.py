"""Hostile platform inputs (issue 9): templates, [platform] keys, buildstamps, non-UTF-8 text
and workspace paths with spaces. Each is refused with file:line (or works), never a traceback,
and nothing outside the workspace is read, written or deleted."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from liveforge.build.image.archive import read_cpio, read_tar
from tests.support import DEMO, sha256
from tests.support.cli import cli
from tests.support.workspaces import make_repo

STAMP = "20240102T030405Z"

OVERLAY = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\n",
    "etc/release": "NAME=@NAME@ STAMP=@STAMP@\n",
    "boot/vmlinuz": "not really a kernel\n",
}
OVERLAY_MANIFEST = """\
d etc 0755 root root
f etc/passwd 0644 root root
f etc/group 0644 root root
f etc/release 0644 root root
d boot 0755 root root
f boot/vmlinuz 0644 root root
"""
PLATFORM = """\
[platform]
name = "t"
overlays = ["overlay/generic"]
{extra}
[components.a]
kind = "make"
path = "projects/a"
"""


# Every run: this file's stamp and no SOURCE_DATE_EPOCH from outside (env= may set either),
# up to five minutes.
lf = functools.partial(cli, stamp=STAMP, unset=("SOURCE_DATE_EPOCH",), timeout=300)


def errors(proc: subprocess.CompletedProcess[str], code: int = 2) -> list[str]:
    """The error lines of a run that failed with ``code`` (and no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stdout + proc.stderr
    return [line for line in proc.stderr.splitlines() if line.strip()]


def live_ws(root: Path, extra: str = "") -> Path:
    """A small workspace ``live`` can build: one make component and an overlay with the
    accounts, a kernel and an ``etc/release`` template."""
    make_repo(root / "projects" / "a", "a")
    overlay = root / "overlay" / "generic"
    for path, text in OVERLAY.items():
        (overlay / path).parent.mkdir(parents=True, exist_ok=True)
        (overlay / path).write_text(text)
    (overlay / "manifest").write_text(OVERLAY_MANIFEST)
    (root / "platform.toml").write_text(PLATFORM.format(extra=extra))
    return root


def shipped(root: Path, path: str) -> str:
    """The sha256 of ``path`` in the boot archive (the whole image root)."""
    members = read_cpio(root / "output" / f"platform-{STAMP}" / "x86_64" / "boot_archive")
    return members[path].sha256


# -- D1: templates are image paths ------------------------------------------------------------

def test_template_is_expanded(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws")
    proc = lf(root, "live")
    assert proc.returncode == 0, proc.stderr
    assert shipped(root, "etc/release") == sha256(f"NAME=t STAMP={STAMP}\n")


@pytest.mark.parametrize("template", ["{victim}", "../../../victim.txt", "etc//release",
                                      "etc/./release", ""])
def test_template_outside_the_image_is_refused(tmp_path: Path, template: str) -> None:
    victim = tmp_path / "victim.txt"  # ws/.liveforge/generated/../../../victim.txt
    victim.write_text("precious\n")
    template = template.format(victim=victim)
    root = live_ws(tmp_path / "ws", f'templates = ["etc/release", "{template}"]\n')
    lines = errors(lf(root, "live"))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"liveforge: {root}/platform.toml:4: [platform] templates: ")
    assert victim.read_text() == "precious\n"
    assert not (root / "output").exists()


def test_templates_must_be_a_list(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws", 'templates = "etc/release"\n')
    assert errors(lf(root, "status")) == [
        f"liveforge: {root}/platform.toml:4: [platform] templates must be a list of image "
        "paths"]


def test_template_removed_from_the_list_is_no_longer_expanded(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws", 'templates = ["etc/release", "etc/motd"]\n')
    overlay = root / "overlay" / "generic"
    (overlay / "etc" / "motd").write_text("welcome to @NAME@\n")
    with open(overlay / "manifest", "a") as handle:
        handle.write("f etc/motd 0644 root root\n")
    assert lf(root, "live").returncode == 0
    assert shipped(root, "etc/motd") == sha256("welcome to t\n")
    (root / "platform.toml").write_text(PLATFORM.format(extra='templates = ["etc/release"]\n'))
    assert lf(root, "live").returncode == 0
    assert shipped(root, "etc/motd") == sha256("welcome to @NAME@\n")


# -- D2: templates are found like every f entry -----------------------------------------------

def test_template_symlink_leading_outside_the_overlay_is_refused(tmp_path: Path) -> None:
    host = tmp_path / "hostname"
    host.write_text("host secret\n")
    root = live_ws(tmp_path / "ws")
    release = root / "overlay" / "generic" / "etc" / "release"
    release.unlink()
    release.symlink_to(host)
    proc = lf(root, "live")
    lines = errors(proc)
    overlay = root / "overlay" / "generic"
    assert lines == [f"liveforge: {root}/platform.toml:1: template 'etc/release': "
                     f"'etc/release' in {overlay} is a symlink leading outside it (to {host})"]
    assert not (root / "output").exists()


def test_template_symlink_inside_the_overlay_is_followed(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws")
    etc = root / "overlay" / "generic" / "etc"
    (etc / "release").rename(etc / "release.in")
    (etc / "release").symlink_to("release.in")
    assert lf(root, "live").returncode == 0
    assert shipped(root, "etc/release") == sha256(f"NAME=t STAMP={STAMP}\n")


# -- D3: every [platform] key is typed and checked at load ------------------------------------

@pytest.mark.parametrize(("setting", "message"), [
    ('arch = "{tmp}/evilarch"', "[platform] arch must be a known architecture "
                                "(aarch64, armv7l, i686, loongarch64, ppc64le, riscv64, s390x, "
                                "x86_64), not '{tmp}/evilarch'"),
    ('arch = ["x"]', "[platform] arch must be a known architecture (aarch64, armv7l, i686, "
                     "loongarch64, ppc64le, riscv64, s390x, x86_64), not ['x']"),
    ("name = 5", "[platform] name must be a plain name (letters, digits and _.+-), not 5"),
    ('name = "../x"', "[platform] name must be a plain name (letters, digits and _.+-), "
                      "not '../x'"),
    ("kernel = 5", "[platform] kernel must be an image path, not 5"),
    ('kernel = "/boot/vmlinuz"', "[platform] kernel: absolute path '/boot/vmlinuz' (paths are "
                                 "relative to the image root)"),
    ('kernel = "boot/../../vmlinuz"', "[platform] kernel: '..' component in path "
                                      "'boot/../../vmlinuz'"),
    ("compression = 5", '[platform] compression must be "gzip" or "zstd", not 5'),
])
def test_platform_keys_are_checked(tmp_path: Path, setting: str, message: str) -> None:
    root = live_ws(tmp_path / "ws", setting.format(tmp=tmp_path) + "\n")
    if setting.startswith("name"):  # in place of the name given
        text = (root / "platform.toml").read_text().replace('name = "t"\n', "")
        (root / "platform.toml").write_text(text.replace("]\n", "]\n\n", 1))
    assert errors(lf(root, "status")) == [
        f"liveforge: {root}/platform.toml:4: {message.format(tmp=tmp_path)}"]
    assert not (tmp_path / "evilarch").exists()


@pytest.mark.parametrize(("overlays", "message"), [
    ('"overlay/generic"', "[platform] overlays must be a list of paths"),
    ('["{tmp}/other"]', "[platform] overlays: {tmp}/other is absolute (an overlay is a "
                        "directory inside the workspace)"),
    ('["../other"]', "[platform] overlays: ../other leads outside the workspace (an overlay "
                     "is a directory inside the workspace)"),
    ('["overlay/../../other"]', "[platform] overlays: overlay/../../other leads outside the "
                                "workspace (an overlay is a directory inside the workspace)"),
])
def test_overlays_stay_inside_the_workspace(tmp_path: Path, overlays: str, message: str
                                            ) -> None:
    (tmp_path / "other").mkdir()
    root = live_ws(tmp_path / "ws")
    text = (root / "platform.toml").read_text().replace('["overlay/generic"]',
                                                        overlays.format(tmp=tmp_path))
    (root / "platform.toml").write_text(text)
    assert errors(lf(root, "status")) == [
        f"liveforge: {root}/platform.toml:3: {message.format(tmp=tmp_path)}"]


def test_every_platform_error_is_reported_at_once(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws", 'arch = "x"\ntemplates = ["/etc/passwd"]\n')
    text = (root / "platform.toml").read_text().replace('name = "t"', "name = 5")
    (root / "platform.toml").write_text(text)
    lines = errors(lf(root, "status"))
    assert [line.split(": ", 2)[1] for line in lines] == [
        f"{root}/platform.toml:{n}" for n in (2, 4, 5)], lines


def test_a_platform_without_optional_keys_gets_defaults(tmp_path: Path) -> None:
    from liveforge.build.config import load_platform
    from liveforge.build.kinds import known_kinds

    root = tmp_path / "ws"
    root.mkdir()
    (root / "platform.toml").write_text("[platform]\n")
    platform, _ = load_platform(root / "platform.toml", known_kinds())
    assert (platform.name, platform.overlays, platform.kernel, platform.arch,
            platform.compression, platform.templates) == (
        "ws", (), "boot/vmlinuz", "x86_64", "gzip", ("etc/release",))


# -- D4: buildstamps and epochs fit the archives ----------------------------------------------

@pytest.mark.parametrize(("variable", "value", "message"), [
    ("BUILDSTAMP", "19000101T000000Z", "BUILDSTAMP '19000101T000000Z' is outside what cpio and "
                                       "tar archives hold (19700101T000000Z to "
                                       "21060207T062815Z)"),
    ("BUILDSTAMP", "99991231T235959Z", "BUILDSTAMP '99991231T235959Z' is outside what cpio and "
                                       "tar archives hold (19700101T000000Z to "
                                       "21060207T062815Z)"),
    ("BUILDSTAMP", "21060207T062816Z", "BUILDSTAMP '21060207T062816Z' is outside what cpio and "
                                       "tar archives hold (19700101T000000Z to "
                                       "21060207T062815Z)"),
    ("BUILDSTAMP", "20261399T999999Z", "BUILDSTAMP '20261399T999999Z' is not a real date and "
                                       "time"),
    ("BUILDSTAMP", "20260229T000000Z", "BUILDSTAMP '20260229T000000Z' is not a real date and "
                                       "time"),
    ("BUILDSTAMP", "2026-01-01", "BUILDSTAMP '2026-01-01' is not of the form "
                                 "YYYYMMDDTHHMMSSZ"),
    ("SOURCE_DATE_EPOCH", "-1", "SOURCE_DATE_EPOCH '-1' is not a number of seconds"),
    ("SOURCE_DATE_EPOCH", "1e9", "SOURCE_DATE_EPOCH '1e9' is not a number of seconds"),
    ("SOURCE_DATE_EPOCH", " 5", "SOURCE_DATE_EPOCH ' 5' is not a number of seconds"),
    ("SOURCE_DATE_EPOCH", "4294967296", "SOURCE_DATE_EPOCH '4294967296' is outside what cpio "
                                        "and tar archives hold (0 to 4294967295)"),
    ("SOURCE_DATE_EPOCH", "99999999999999999999", "SOURCE_DATE_EPOCH '99999999999999999999' is "
                                                  "outside what cpio and tar archives hold (0 "
                                                  "to 4294967295)"),
])
def test_buildstamp_out_of_range_is_refused(tmp_path: Path, variable: str, value: str,
                                            message: str) -> None:
    root = live_ws(tmp_path / "ws")
    env = {"BUILDSTAMP": value} if variable == "BUILDSTAMP" else \
        {"BUILDSTAMP": "", variable: value}
    assert errors(lf(root, "live", env=env)) == [f"liveforge: error: {message}"]
    assert not (root / "output").exists()
    assert not (root / "proto").exists()


@pytest.mark.parametrize(("environ", "stamp"), [
    ({"BUILDSTAMP": "19700101T000000Z"}, "19700101T000000Z"),
    ({"BUILDSTAMP": "21060207T062815Z"}, "21060207T062815Z"),
    ({"SOURCE_DATE_EPOCH": "0"}, "19700101T000000Z"),
    ({"SOURCE_DATE_EPOCH": "4294967295"}, "21060207T062815Z"),
    ({"SOURCE_DATE_EPOCH": "1700000000"}, "20231114T221320Z"),
])
def test_buildstamps_at_the_limits(environ: dict[str, str], stamp: str) -> None:
    from liveforge.build.buildstamp import buildstamp_now, stamp_epoch

    assert buildstamp_now(environ) == stamp
    assert 0 <= stamp_epoch(stamp) <= 2**32 - 1


def test_last_limit_builds_readable_archives(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws")
    proc = lf(root, "live", env={"BUILDSTAMP": "21060207T062815Z"})
    assert proc.returncode == 0, proc.stderr
    stamp = "21060207T062815Z"
    platform = root / "output" / f"platform-{stamp}"
    cpio = read_cpio(platform / "x86_64" / "boot_archive")
    assert {m.mtime for m in cpio.values()} == {2**32 - 1}
    assert {m.mtime for m in read_tar(root / "output" / f"platform-{stamp}.tgz").values()} \
        == {2**32 - 1}


# -- D8: text inputs that are not UTF-8 -------------------------------------------------------

@pytest.mark.parametrize(("name", "good", "line"), [
    ("platform.toml", None, 3),
    ("configure-projects", "# projects\na::\n", 2),
    ("configure-build", "A=1\nB=2\n", 2),
    ("build.env", "A=1\nB=2\n", 2),
])
def test_non_utf8_input_names_file_and_line(tmp_path: Path, name: str, good: str | None,
                                            line: int) -> None:
    root = live_ws(tmp_path / "ws")
    path = root / name
    text = path.read_text() if good is None else good
    lines = text.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].rstrip("\n") + " # caf\xe9\n"
    path.write_bytes("".join(lines).encode("latin-1"))
    assert errors(lf(root, "status")) == [
        f"liveforge: error: {path}:{line}: not UTF-8 text (byte 0xe9 in column "
        f"{len(lines[line - 1]) - 1})"]


def test_non_utf8_template_names_its_file_and_line(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws")
    release = root / "overlay" / "generic" / "etc" / "release"
    release.write_bytes(b"NAME=@NAME@\n\xff\n")
    assert errors(lf(root, "live")) == [
        f"liveforge: error: {release}:2: not UTF-8 text (byte 0xff in column 1)"]


def test_non_utf8_manifest_names_its_line(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws")
    manifest = root / "overlay" / "generic" / "manifest"
    manifest.write_bytes(manifest.read_bytes() + b"# caf\xe9\n")
    assert errors(lf(root, "live")) == [
        f"liveforge: {manifest}:7: not UTF-8 text (byte 0xe9 in column 6)"]


# -- D12: names that become paths or arguments ------------------------------------------------

DEB = """\
[platform]
name = "t"

[components.kernel]
kind = "deb"
{setting}
"""


@pytest.mark.parametrize(("setting", "message"), [
    ('packages = ["-oDir::Cache=/tmp"]', "packages: '-oDir::Cache=/tmp' is not a Debian package "
                                         "name"),
    ('packages = ["busybox"]\nlinks = { "/tmp/x" = "boot/vmlinuz-*" }',
     "links: absolute path '/tmp/x' (paths are relative to the image root)"),
    ('packages = ["busybox"]\nlinks = { "boot/vmlinuz" = "../../*" }',
     "links: pattern '../../*' is not a path inside proto/"),
    ('packages = ["busybox"]\nmanifest = "/etc/passwd"',
     "manifest: /etc/passwd is absolute (the manifest is a file inside the workspace)"),
])
def test_deb_settings_are_checked(tmp_path: Path, setting: str, message: str) -> None:
    (tmp_path / "platform.toml").write_text(DEB.format(setting=setting))
    line = 6 if setting.startswith("packages = [\"-") else 7
    assert errors(lf(tmp_path, "status")) == [
        f"liveforge: {tmp_path}/platform.toml:{line}: component 'kernel': {message}"]


def test_locked_file_name_must_be_plain(tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(DEB.format(setting='packages = ["busybox"]'))
    (tmp_path / "platform.lock").write_text(
        'format = 1\n\n[[deb]]\ncomponent = "kernel"\nrequest = "busybox"\nname = "busybox"\n'
        'version = "1"\narch = "amd64"\nfilename = "pool/main/.."\nsize = 1\n'
        f'sha256 = "{"0" * 64}"\n')
    assert errors(lf(tmp_path, "status")) == [
        f"liveforge: error: {tmp_path}/platform.lock: [[deb]] entry 1: filename 'pool/main/..' "
        "does not end in a plain file name; run `liveforge configure --refresh-lock`"]


def test_extra_manifest_stays_inside_the_component(tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        '[platform]\n\n[components.extra]\nkind = "extra"\npath = "projects/extra"\n'
        'manifest = "../../../etc/passwd"\n')
    assert errors(lf(tmp_path, "status")) == [
        f"liveforge: {tmp_path}/platform.toml:6: component 'extra': manifest "
        "'../../../etc/passwd' is not a path inside the component"]


# -- D16: a workspace path holding a space ----------------------------------------------------

def test_demo_make_components_build_in_a_path_with_spaces(tmp_path: Path) -> None:
    """The demo's src and platinfo components (the latter against a proto holding the host's
    zlib, standing in for the extra component) in ``with space/ws 2``."""
    if not (Path("/usr/include/zlib.h").is_file() and
            Path("/usr/lib/x86_64-linux-gnu/libz.a").is_file()):
        pytest.skip("needs zlib1g-dev")
    root = tmp_path / "with space" / "ws 2"
    (root / "projects" / "local").mkdir(parents=True)
    shutil.copytree(DEMO / "projects" / "src", root / "projects" / "src")
    shutil.copytree(DEMO / "projects" / "local" / "platinfo",
                    root / "projects" / "local" / "platinfo",
                    ignore=shutil.ignore_patterns("platinfo"))  # a build product, if any
    (root / "proto" / "usr" / "include").mkdir(parents=True)
    (root / "proto" / "usr" / "lib").mkdir(parents=True)
    shutil.copy("/usr/include/zlib.h", root / "proto" / "usr" / "include")
    shutil.copy("/usr/include/zconf.h", root / "proto" / "usr" / "include")
    shutil.copy("/usr/lib/x86_64-linux-gnu/libz.a", root / "proto" / "usr" / "lib")
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.src]\nkind = "make"\npath = "projects/src"\n\n'
        '[components.platinfo]\nkind = "make"\npath = "projects/local/platinfo"\n')
    proc = lf(root, "world")
    logs = "".join(p.read_text() for p in (root / "log").glob("*.log"))
    assert proc.returncode == 0, proc.stderr + logs
    assert (root / "proto" / "sbin" / "init").read_bytes() == \
        (DEMO / "projects" / "src" / "init").read_bytes()
    assert (root / "proto" / "usr" / "lib" / "selftest.d" / "30-modes").is_file()
    info = subprocess.run([root / "proto" / "usr" / "bin" / "platinfo", "--zlib"],
                          capture_output=True, text=True, check=True)
    assert info.stdout.strip()
    for name in ("src", "platinfo"):
        assert "f " in (root / "manifest.d" / f"{name}.manifest").read_text()
    assert not (tmp_path / "with").exists()


@pytest.mark.parametrize("char", ["$", '"', "`", "\\"])
def test_configure_refuses_a_workspace_path_make_cannot_pass(tmp_path: Path, char: str
                                                             ) -> None:
    root = tmp_path / f"ws{char}x"
    root.mkdir()
    (root / "platform.toml").write_text('[platform]\nname = "t"\n')
    assert errors(lf(root, "configure")) == [
        f"liveforge: error: the workspace path {root} holds {char!r}, which make or the shell "
        "would take apart in DESTDIR: move the workspace to a path without it"]
    assert not (root / "build.env").exists()
    (tmp_path / "ws x").mkdir()
    (tmp_path / "ws x" / "platform.toml").write_text('[platform]\nname = "t"\n')
    assert lf(tmp_path / "ws x", "configure").returncode == 0
