"""Netboot: the iPXE script beside the platform (``liveforge netboot``), and booting it through
iPXE from QEMU's own TFTP server (``liveforge boot --media pxe``)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from liveforge.build.cli import main
from liveforge.build.media import get_console
from liveforge.build.media.boot import boot, qemu_command
from liveforge.build.media.grubcfg import SMBIOS_TEST_OPTION, grub_cfg
from liveforge.build.media.pxe import LATEST, check_script, ipxe_script, write_netboot
from liveforge.util.errors import LiveforgeError, UsageError
from liveforge.util.scratch import TMP_MARK
from tests.support.kernel import STAMP, Bootable, qemu_processes_mentioning

NAME = f"platform-{STAMP}"


def fake_platform(output: Path, name: str = NAME, arch: str = "x86_64",
                  stamp: str = STAMP) -> Path:
    """A platform directory as `live` leaves it (file contents do not matter here)."""
    root = output / name
    (root / arch).mkdir(parents=True)
    (root / arch / "vmlinuz").write_bytes(b"kernel")
    (root / arch / "boot_archive").write_bytes(b"archive")
    (root / "etc" / "version").mkdir(parents=True)
    (root / "etc" / "version" / "platform").write_text(f"{stamp}\n")
    return root


def served(tmp_path: Path, platform: Path) -> Path:
    """An output directory holding ``platform`` (a link to it) under NAME."""
    out = tmp_path / "output"
    out.mkdir()
    (out / NAME).symlink_to(platform)
    return out


def kernel_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("kernel ")]


# -- the script --------------------------------------------------------------------------------

def test_script_boots_the_platform_by_relative_paths_with_the_grub_arguments() -> None:
    console = get_console("ttyb")
    text = ipxe_script(NAME, STAMP, "x86_64", console)
    lines = text.splitlines()
    assert lines[0] == "#!ipxe"
    assert lines.count("boot") == 2
    assert [line for line in lines if line.startswith("initrd ")] == [
        f"initrd {NAME}/x86_64/boot_archive"] * 2
    normal, test = kernel_lines(text)
    # the same arguments as the media's GRUB entries (normal, self-test), after initrd=
    grub = [line.split(None, 2)[2] for line in grub_cfg(STAMP, console, "x86_64").splitlines()
            if line.strip().startswith("linux ")]
    assert grub == ["console=ttyS1,115200n8", "console=ttyS1,115200n8 panic=-1 liveforge.test=1"]
    assert normal == f"kernel {NAME}/x86_64/vmlinuz initrd=boot_archive {grub[0]}"
    assert test == f"kernel {NAME}/x86_64/vmlinuz initrd=boot_archive {grub[1]}"
    # the self-test entry is reached only through the SMBIOS test string, and the normal entry
    # comes first: a machine without the string never boots the self-test
    selector = lines.index("iseq ${smbios/11.4.0} liveforge.test=1 && goto selftest ||")
    assert SMBIOS_TEST_OPTION.endswith("value=liveforge.test=1")
    assert selector < lines.index(normal) < lines.index(":selftest") < lines.index(test)
    assert "/" + NAME not in text and ".." not in text  # relative to the script's directory


def test_script_bytes_depend_only_on_name_stamp_arch_and_console() -> None:
    one = ipxe_script(NAME, STAMP, "x86_64", get_console("ttya"))
    assert one == ipxe_script(NAME, STAMP, "x86_64", get_console("ttya"))
    assert "console=tty0" in ipxe_script(NAME, STAMP, "x86_64", get_console("text"))
    other_arch = ipxe_script(NAME, STAMP, "aarch64", get_console("ttya"))
    assert f"{NAME}/aarch64/vmlinuz" in other_arch and "x86_64" not in other_arch


@pytest.mark.parametrize("dirname,arch", [("../x", "x86_64"), (NAME, "/tmp/evil"),
                                          (NAME, "x 86"), ("${x}", "x86_64"), (NAME, "")])
def test_names_that_cannot_be_in_a_script_are_refused(dirname: str, arch: str) -> None:
    with pytest.raises(UsageError, match="plain name"):
        ipxe_script(dirname, STAMP, arch, get_console("ttya"))


# -- writing it --------------------------------------------------------------------------------

def test_written_beside_the_platform_with_a_latest_link(tmp_path: Path) -> None:
    out = tmp_path / "output"
    platform = fake_platform(out)
    before = sorted(p.relative_to(platform) for p in platform.rglob("*"))
    script = write_netboot(out, NAME, STAMP, "x86_64", console="ttyc")
    assert script == out / f"{NAME}.ipxe"
    assert script.read_text() == ipxe_script(NAME, STAMP, "x86_64", get_console("ttyc"))
    assert os.readlink(out / LATEST) == f"{NAME}.ipxe"  # relative: the directory can move
    assert sorted(p.relative_to(platform) for p in platform.rglob("*")) == before
    assert sorted(p.name for p in out.iterdir()) == [NAME, f"{NAME}.ipxe", LATEST]
    # the paths in the script name real files, relative to the script
    assert check_script(out / LATEST, get_console("ttyc")) == [
        out / NAME / "x86_64" / "vmlinuz", out / NAME / "x86_64" / "boot_archive"] * 2


def test_same_bytes_in_another_directory(tmp_path: Path) -> None:
    a = tmp_path / "a" / "output"
    b = tmp_path / "elsewhere" / "b" / "output"
    fake_platform(a)
    fake_platform(b)
    assert (write_netboot(a, NAME, STAMP, "x86_64").read_bytes()
            == write_netboot(b, NAME, STAMP, "x86_64").read_bytes())


def test_rewrite_is_a_rename_and_leftovers_of_dead_runs_go(tmp_path: Path) -> None:
    out = tmp_path / "output"
    fake_platform(out)
    script = write_netboot(out, NAME, STAMP, "x86_64", console="ttya")
    dead = _dead_pid()
    leftovers = [out / f".{NAME}.ipxe{TMP_MARK}{dead}", out / f".{LATEST}{TMP_MARK}{dead}"]
    for path in leftovers:
        path.write_text("partial")
    unrelated = out / f".{NAME}.ipxe{TMP_MARK}{os.getppid()}"  # a live process's: not ours to take
    unrelated.write_text("busy")
    with open(script) as old:
        write_netboot(out, NAME, STAMP, "x86_64", console="ttyb")
        # a reader holding the old script still reads it whole: a new file was renamed in
        assert "console=ttyS0,115200n8" in old.read()
    assert "console=ttyS1,115200n8" in script.read_text()
    assert not any(path.exists() for path in leftovers)
    assert unrelated.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_failed_write_is_one_error_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "output"
    fake_platform(out)
    (out / f"{NAME}.ipxe").mkdir()  # in the way of the rename
    with pytest.raises(LiveforgeError, match=f"cannot write .*/{NAME}.ipxe: Is a directory"):
        write_netboot(out, NAME, STAMP, "x86_64")
    assert sorted(p.name for p in out.iterdir()) == [NAME, f"{NAME}.ipxe"]
    (out / f"{NAME}.ipxe").rmdir()
    (out / LATEST).mkdir()  # a real directory where the link goes
    with pytest.raises(LiveforgeError, match=f"cannot write .*/{LATEST}: Is a directory"):
        write_netboot(out, NAME, STAMP, "x86_64")
    assert sorted(p.name for p in out.iterdir()) == [NAME, f"{NAME}.ipxe", LATEST]


def test_no_platform_or_an_incomplete_one_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "output"
    with pytest.raises(LiveforgeError, match="liveforge live"):
        write_netboot(out, NAME, STAMP, "x86_64")
    fake_platform(out)
    with pytest.raises(LiveforgeError, match="aarch64/vmlinuz"):
        write_netboot(out, NAME, STAMP, "aarch64")
    with pytest.raises(LiveforgeError, match="expected '20000101T000000Z'"):
        write_netboot(out, NAME, "20000101T000000Z", "x86_64")
    assert not list(out.glob("*.ipxe"))


# -- the verbs ---------------------------------------------------------------------------------

def workspace(root: Path, arch: str | None = None) -> Path:
    root.mkdir()
    setting = f'arch = "{arch}"\n' if arch else ""
    (root / "platform.toml").write_text(f'[platform]\nname = "net"\n{setting}')
    (root / "configure-projects").write_text("")
    return root


def test_netboot_verb_writes_the_latest_platforms_script(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ws = workspace(tmp_path / "ws", arch="aarch64")
    older = "20250101T000000Z"
    fake_platform(ws / "output", f"platform-{older}", arch="aarch64", stamp=older)
    fake_platform(ws / "output", arch="aarch64")
    (ws / "output" / "platform-latest").symlink_to(NAME)
    assert main(["-C", str(ws), "netboot", "-c", "ttyd"]) == 0
    assert f"netboot: {ws / 'output' / NAME}.ipxe" in capsys.readouterr().out
    text = (ws / "output" / LATEST).read_text()
    assert kernel_lines(text)[0] == (f"kernel {NAME}/aarch64/vmlinuz initrd=boot_archive "
                                     "console=ttyS3,115200n8")
    assert not (ws / "output" / f"platform-{older}.ipxe").exists()


def test_netboot_and_boot_pxe_without_their_inputs_say_what_to_run(tmp_path: Path,
                                                                   capsys) -> None:  # type: ignore[no-untyped-def]
    ws = workspace(tmp_path / "ws")
    assert main(["-C", str(ws), "netboot"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no platform built yet" in err and "liveforge live" in err
    fake_platform(ws / "output")
    (ws / "output" / "platform-latest").symlink_to(NAME)
    assert main(["-C", str(ws), "boot", "--media", "pxe"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no netboot script at {ws / 'output' / NAME}.ipxe" in err
    assert "'liveforge netboot'" in err
    assert main(["-C", str(ws), "netboot", "-c", "ttyb"]) == 0
    # the script boots onto ttyS1; a boot watching ttyS0 would wait for nothing
    assert main(["-C", str(ws), "boot", "--media", "pxe"]) == 2
    err = capsys.readouterr().err
    assert "another console than ttya" in err and "netboot -c ttya" in err


def test_check_script_names_the_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "output"
    fake_platform(out)
    script = write_netboot(out, NAME, STAMP, "x86_64")
    (out / NAME / "x86_64" / "boot_archive").unlink()
    with pytest.raises(LiveforgeError, match=rf"{NAME}.ipxe:8: {NAME}/x86_64/boot_archive is "
                                             "missing"):
        check_script(script, get_console("ttya"))
    script.write_text("kernel vmlinuz\n")
    with pytest.raises(LiveforgeError, match="not an iPXE script"):
        check_script(script, get_console("ttya"))
    script.write_text("#!ipxe\nkernel ../../etc/passwd console=ttyS0,115200n8\n")
    with pytest.raises(LiveforgeError, match=":2: expected a relative path"):
        check_script(script, get_console("ttya"))


# -- booting it --------------------------------------------------------------------------------

def test_qemu_serves_the_scripts_directory_and_selects_the_test_entry(tmp_path: Path,
                                                                     bootable: Bootable) -> None:
    out = served(tmp_path, bootable.platform())
    script = write_netboot(out, NAME, STAMP, "x86_64")
    work = tmp_path / "work"
    work.mkdir()
    for interactive in (False, True):
        argv = qemu_command("qemu-system-x86_64", out, STAMP, arch="x86_64", media="pxe",
                            uefi=False, term=get_console("ttya"), interactive=interactive,
                            log_path=tmp_path / "log", work=work)
        assert argv[argv.index("-netdev") + 1] == f"user,id=net0,tftp={out},bootfile={script.name}"
        assert argv[argv.index("-device") + 1] == "virtio-net-pci,netdev=net0,bootindex=0"
        assert ("-smbios" in argv) is not interactive
        assert not any("liveforge.test" in arg for arg in argv if arg != SMBIOS_TEST_OPTION)


@pytest.mark.slow
@pytest.mark.parametrize("uefi", [False, True], ids=["bios", "uefi"])
def test_pxe_boot_ready(tmp_path: Path, uefi: bool, bootable: Bootable) -> None:
    out = served(tmp_path, bootable.platform())
    write_netboot(out, NAME, STAMP, "x86_64")
    log = tmp_path / "log" / f"boot.{STAMP}.pxe.log"
    result = boot(out / LATEST, STAMP, arch="x86_64", media="pxe", uefi=uefi, timeout=240,
                  log_path=log)
    text = log.read_text(errors="replace")
    assert result.ok and result.status == "ready" and result.exit_code == 0, result.message + text
    # the kernel came up with the script's self-test entry: its exact arguments
    assert re.search(r"Command line: (vmlinuz )?initrd=boot_archive console=ttyS0,115200n8 "
                     r"panic=-1 liveforge\.test=1\s*$", text, re.M), text[-3000:]
    assert f"liveforge test platform {STAMP} booting" in text
    assert f"PLATFORM-READY {STAMP}" in text
    if uefi:  # iPXE's EFI driver prints on the serial console: it fetched the script and files
        assert f"tftp://10.0.2.2/{LATEST}... ok" in text
        assert f"{NAME}/x86_64/boot_archive... ok" in text
    assert not qemu_processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_pxe_boot_of_a_failing_platform_fails(tmp_path: Path, bootable: Bootable) -> None:
    out = served(tmp_path, bootable.platform("broken"))
    write_netboot(out, NAME, STAMP, "x86_64")
    result = boot(out, STAMP, arch="x86_64", media="pxe", timeout=240, log_path=tmp_path / "b.log")
    assert not result.ok and result.exit_code == 1
    assert result.message == "PLATFORM-FAILED selftest-broken"
    assert not qemu_processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_pxe_boot_that_never_reaches_the_kernel_says_where_to_look(tmp_path: Path,
                                                                    bootable: Bootable) -> None:
    out = served(tmp_path, bootable.platform())
    write_netboot(out, NAME, STAMP, "x86_64")
    result = boot(out, STAMP, arch="x86_64", media="pxe", timeout=2, log_path=tmp_path / "t.log")
    assert result.status == "timeout"
    assert "iPXE prints to the screen only" in result.message and "--uefi" in result.message
    assert not qemu_processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_pxe_script_defaults_to_the_normal_entry(tmp_path: Path, bootable: Bootable) -> None:
    """Without the boot test's SMBIOS string the script boots the normal entry (no self-test
    argument, no power-off): what a machine netbooting from a boot server gets."""
    from liveforge.build.media.boot import watch

    out = served(tmp_path, bootable.platform())
    write_netboot(out, NAME, STAMP, "x86_64")
    argv = qemu_command("qemu-system-x86_64", out, STAMP, arch="x86_64", media="pxe", uefi=False,
                        term=get_console("ttya"), interactive=False, log_path=tmp_path / "log",
                        work=tmp_path)
    at = argv.index("-smbios")
    del argv[at:at + 2]
    result = watch(argv, STAMP, 240, tmp_path / "boot.log", tmp_path / "stderr", grace=0)
    assert result.ok, f"{result.message}\n{result.tail}"  # the fixture prints READY, then a shell
    log = (tmp_path / "boot.log").read_text(errors="replace")
    command_line = next(line for line in log.splitlines() if "Command line:" in line)
    assert command_line.endswith("Command line: initrd=boot_archive console=ttyS0,115200n8")
    assert not qemu_processes_mentioning(str(tmp_path))
