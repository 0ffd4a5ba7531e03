"""The QEMU runner: verdicts, failures with the console's tail, timeouts leave no process."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveforge.build.media.boot import TAIL_LINES, Verdict, boot
from liveforge.util.errors import LiveforgeError, UsageError
from tests.support import REPO
from tests.support.kernel import STAMP, Bootable, qemu_processes_mentioning


def test_verdict_lines() -> None:
    verdict = Verdict(STAMP)
    verdict.feed("\x1b[0m some noise")
    assert verdict.status is None
    verdict.feed(f"PLATFORM-READY {STAMP}")
    assert (verdict.status, verdict.message) == ("ready", f"PLATFORM-READY {STAMP}")
    other = Verdict(STAMP)
    other.feed("PLATFORM-READY 20000101T000000Z")
    assert other.status == "failed" and "expected" in other.message
    failed = Verdict(STAMP)
    failed.feed("PLATFORM-FAILED platinfo")
    failed.feed(f"PLATFORM-READY {STAMP}")  # the first verdict stands
    assert (failed.status, failed.message) == ("failed", "PLATFORM-FAILED platinfo")
    panic = Verdict(STAMP)
    panic.feed("[    1.0] Initramfs unpacking failed: read error")
    panic.feed("[    1.1] Kernel panic - not syncing: No working init found.")
    assert panic.status == "panic" and panic.message.startswith("Kernel panic - not syncing")
    assert panic.hints[0] == "Initramfs unpacking failed: read error"


def test_bad_arguments(tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    with pytest.raises(UsageError, match="direct, iso, usb"):
        boot(tmp_path, STAMP, arch="x86_64", media="floppy", log_path=log)
    with pytest.raises(UsageError, match="ttya"):
        boot(tmp_path, STAMP, arch="x86_64", console="com1", log_path=log)
    with pytest.raises(UsageError, match="serial"):
        boot(tmp_path, STAMP, arch="x86_64", console="text", log_path=log)
    with pytest.raises(LiveforgeError, match="liveforge iso"):
        boot(tmp_path, STAMP, arch="x86_64", media="iso", log_path=log)
    with pytest.raises(LiveforgeError, match="liveforge usb"):
        boot(tmp_path / "x.usb.gz", STAMP, arch="x86_64", media="usb", log_path=log)
    with pytest.raises(LiveforgeError, match="liveforge live"):
        boot(tmp_path, STAMP, arch="x86_64", log_path=log)


@pytest.mark.slow
def test_direct_boot_ready(tmp_path: Path, bootable: Bootable) -> None:
    log = tmp_path / "log" / f"boot.{STAMP}.direct.log"
    result = boot(bootable.platform(), STAMP, arch="x86_64", timeout=120, log_path=log)
    assert result.ok and result.status == "ready" and result.exit_code == 0, result.tail
    assert f"PLATFORM-READY {STAMP}" in log.read_text(errors="replace")
    assert "liveforge.test=1" in log.read_text(errors="replace")
    assert not qemu_processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_broken_selftest_fails(tmp_path: Path, bootable: Bootable) -> None:
    result = boot(bootable.platform("broken"), STAMP, arch="x86_64", timeout=120,
                  log_path=tmp_path / "b.log")
    assert not result.ok and result.exit_code == 1
    assert result.status == "failed"
    assert result.message == "PLATFORM-FAILED selftest-broken"
    assert "PLATFORM-FAILED selftest-broken" in result.tail
    assert 0 < len(result.tail.splitlines()) <= TAIL_LINES


@pytest.mark.slow
def test_truncated_archive_fails_with_kernel_message(tmp_path: Path, bootable: Bootable) -> None:
    result = boot(bootable.platform("truncated"), STAMP, arch="x86_64", timeout=120,
                  log_path=tmp_path / "t.log")
    assert not result.ok
    assert result.status == "panic", result.message
    assert "Kernel panic" in result.message
    assert "Initramfs unpacking failed" in result.message
    assert result.elapsed < 120
    assert not qemu_processes_mentioning(str(tmp_path))


@pytest.mark.slow
def test_timeout_kills_qemu(tmp_path: Path, bootable: Bootable) -> None:
    result = boot(bootable.platform(), STAMP, arch="x86_64", timeout=2,
                  log_path=tmp_path / "slow.log")
    assert not result.ok and result.status == "timeout"
    assert "2s" in result.message
    assert not Path(f"/proc/{result.pid}").exists()
    assert not qemu_processes_mentioning(str(tmp_path))


def test_qemu_command_uses_tcg_and_private_vars(tmp_path: Path, bootable: Bootable) -> None:
    from liveforge.build.media import get_console
    from liveforge.build.media.boot import qemu_command
    from liveforge.build.media.hosttools import OVMF_VARS

    work = tmp_path / "work"
    work.mkdir()
    argv = qemu_command("qemu-system-x86_64", bootable.platform(), STAMP, arch="x86_64",
                        media="direct", uefi=True, term=get_console("ttyb"), interactive=False,
                        log_path=tmp_path / "log", work=work)
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert not any("kvm" in arg for arg in argv)
    # a test boot: a private copy of the variables, attached read-only; no display adapter
    assert f"if=pflash,format=raw,readonly=on,file={work / 'OVMF_VARS.fd'}" in argv
    assert (work / "OVMF_VARS.fd").read_bytes() == OVMF_VARS.read_bytes()
    assert argv[argv.index("-vga") + 1] == "none"
    append = argv[argv.index("-append") + 1]
    assert append == "console=ttyS1,115200n8 panic=-1 liveforge.test=1"
    # ttyb is the second serial port: the first is a null device, the second the console
    assert argv[-4:] == ["-serial", "null", "-serial", "stdio"]
    interactive = qemu_command("qemu-system-x86_64", bootable.platform(), STAMP, arch="x86_64",
                               media="direct", uefi=False, term=get_console("ttya"),
                               interactive=True, log_path=tmp_path / "log", work=work)
    assert "liveforge.test=1" not in interactive[interactive.index("-append") + 1]
    assert "chardev:con" in interactive
    interactive_uefi = qemu_command("qemu-system-x86_64", bootable.platform(), STAMP,
                                    arch="x86_64", media="direct", uefi=True,
                                    term=get_console("ttya"), interactive=True,
                                    log_path=tmp_path / "log", work=work)
    assert f"if=pflash,format=raw,file={work / 'OVMF_VARS.fd'}" in interactive_uefi
    text = qemu_command("qemu-system-x86_64", bootable.platform(), STAMP, arch="x86_64",
                        media="direct", uefi=False, term=get_console("text"), interactive=True,
                        log_path=tmp_path / "log", work=work)
    assert "-vga" not in text  # the text console is the display adapter's


def test_log_name() -> None:
    from liveforge.build.media.boot import log_name

    assert log_name(STAMP, "iso") == f"boot.{STAMP}.iso.log"
    assert log_name(STAMP, "usb", uefi=True) == f"boot.{STAMP}.usb-uefi.log"


@pytest.mark.slow
def test_qemu_dies_with_a_killed_runner(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    script = (
        "from pathlib import Path\n"
        "from tests.support import kernel\n"
        "from liveforge.build.media.boot import boot\n"
        f"boot(kernel.make_platform(Path({str(tmp_path / 'p')!r}), kernel.STAMP),\n"
        f"     kernel.STAMP, arch='x86_64', timeout=120,\n"
        f"     log_path=Path({str(tmp_path / 'k.log')!r}))\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.monotonic() + 30
    while not qemu_processes_mentioning(str(tmp_path / "p")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert qemu_processes_mentioning(str(tmp_path / "p")), "QEMU never started"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 3  # at once by the parent-death signal, not by a later EPIPE
    while qemu_processes_mentioning(str(tmp_path / "p")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not qemu_processes_mentioning(str(tmp_path / "p"))
