"""The console table, the GRUB menu text, host-tool and platform checks (no QEMU, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveforge.build.media import CONSOLE_NAMES, build_iso, build_usb, get_console, hosttools
from liveforge.build.media.grubcfg import embedded_cfg, grub_cfg
from liveforge.util.errors import LiveforgeError, MissingToolError, UsageError

STAMP = "20231114T221320Z"


@pytest.mark.parametrize(("name", "device"), [
    ("text", "tty0"), ("ttya", "ttyS0"), ("ttyb", "ttyS1"), ("ttyc", "ttyS2"), ("ttyd", "ttyS3"),
])
def test_console_table(name: str, device: str) -> None:
    console = get_console(name)
    assert console.device == device
    assert console.kernel_arg().startswith(f"console={device}")


def test_console_names_in_order() -> None:
    assert CONSOLE_NAMES == ("text", "ttya", "ttyb", "ttyc", "ttyd")


def test_grub_terminal_lines() -> None:
    assert get_console("ttyb").grub_lines()[0].startswith("serial --unit=1 --speed=115200")
    assert "terminal_output serial" in get_console("ttyd").grub_lines()
    assert get_console("text").grub_lines() == ["terminal_input console",
                                                "terminal_output console"]


def test_bad_console_name_lists_choices() -> None:
    with pytest.raises(UsageError) as info:
        get_console("ttyz")
    message = str(info.value)
    assert "ttyz" in message
    for name in CONSOLE_NAMES:
        assert name in message


@pytest.mark.parametrize("build", [build_iso, build_usb])
def test_media_reject_bad_console_first(build, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        build(tmp_path / "nowhere", STAMP, tmp_path / "out", arch="x86_64", console="com1")
    assert not (tmp_path / "out").exists()


def test_grub_cfg_entries() -> None:
    cfg = grub_cfg(STAMP, get_console("ttyb"), "x86_64")
    assert "serial --unit=1" in cfg
    assert "set default=normal" in cfg
    assert "--id normal" in cfg and "--id test" in cfg
    normal, test = cfg.split("--id normal")[1].split("--id test")
    assert "console=ttyS1,115200n8" in normal and "liveforge.test=1" not in normal
    assert "console=ttyS1,115200n8" in test and "liveforge.test=1" in test
    assert "smbios --type 11" in cfg  # the boot test's way to pick the test entry
    assert f"/platform-{STAMP}" in embedded_cfg(STAMP)


@pytest.mark.parametrize("build", [build_iso, build_usb])
def test_no_platform_names_the_verb(build, tmp_path: Path) -> None:
    with pytest.raises(LiveforgeError, match="liveforge live"):
        build(tmp_path / "missing", STAMP, tmp_path / "out", arch="x86_64")
    (tmp_path / "partial" / "x86_64").mkdir(parents=True)
    with pytest.raises(LiveforgeError, match="liveforge live"):
        build(tmp_path / "partial", STAMP, tmp_path / "out", arch="x86_64")


def test_bad_stamp(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="YYYYMMDDTHHMMSSZ"):
        build_iso(tmp_path, "yesterday", tmp_path / "out", arch="x86_64")


def test_missing_tools_give_apt_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosttools, "_SEARCH_PATH", "/nonexistent")
    with pytest.raises(MissingToolError) as info:
        hosttools.require(["xorriso", "mcopy", "sfdisk", "qemu-system-x86_64"])
    assert ("apt-get install -y --no-install-recommends fdisk mtools qemu-system-x86 xorriso"
            in str(info.value))
