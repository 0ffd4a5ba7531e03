"""Host tools the media writers and the boot runner use, and the Debian packages that carry them.

A missing tool is a :class:`MissingToolError` whose message carries the exact ``apt-get install``
line for everything missing, found in one pass.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from liveforge.util.errors import MissingToolError

GRUB_LIB = Path("/usr/lib/grub")
OVMF_DIR = Path("/usr/share/OVMF")
OVMF_CODE = OVMF_DIR / "OVMF_CODE_4M.fd"
OVMF_VARS = OVMF_DIR / "OVMF_VARS_4M.fd"
# the option ROM QEMU gives a virtio-net NIC: iPXE for BIOS and UEFI in one file
IPXE_ROM = Path("/usr/lib/ipxe/qemu/efi-virtio.rom")

#: tool (a command name, or an absolute path to a file) -> the Debian package providing it.
PACKAGES: dict[str, str] = {
    "xorriso": "xorriso",
    "grub-mkimage": "grub-common",
    str(GRUB_LIB / "i386-pc"): "grub-pc-bin",
    str(GRUB_LIB / "x86_64-efi"): "grub-efi-amd64-bin",
    "mformat": "mtools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "mkfs.vfat": "dosfstools",
    "sfdisk": "fdisk",
    "qemu-system-x86_64": "qemu-system-x86",
    str(OVMF_CODE): "ovmf",
    str(OVMF_VARS): "ovmf",
    str(IPXE_ROM): "ipxe-qemu",
}

ISO_TOOLS = ("xorriso", "grub-mkimage", str(GRUB_LIB / "i386-pc"), str(GRUB_LIB / "x86_64-efi"),
             "mkfs.vfat", "mmd", "mcopy")
USB_TOOLS = ("sfdisk", "grub-mkimage", str(GRUB_LIB / "i386-pc"), str(GRUB_LIB / "x86_64-efi"),
             "mkfs.vfat", "mmd", "mcopy")
QEMU_TOOLS = ("qemu-system-x86_64",)
UEFI_TOOLS = (str(OVMF_CODE), str(OVMF_VARS))
PXE_TOOLS = (str(IPXE_ROM),)

# sfdisk and mkfs.vfat live in sbin, which a normal user's PATH may lack.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


def apt_line(packages: list[str]) -> str:
    return "apt-get install -y --no-install-recommends " + " ".join(sorted(set(packages)))


def require(tools: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Resolve every tool to an absolute path, or raise naming all the missing ones at once."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for tool in tools:
        if tool.startswith("/"):
            path = tool if Path(tool).exists() else None
        else:
            path = shutil.which(tool, path=_SEARCH_PATH)
        if path is None:
            missing.append(tool)
        else:
            found[tool] = path
    if missing:
        packages = [PACKAGES.get(tool, tool) for tool in missing]
        raise MissingToolError(
            f"missing host tools: {', '.join(missing)}; install them with:\n"
            f"  {apt_line(packages)}")
    return found


def repro_env(epoch: int) -> dict[str, str]:
    """The environment for every tool run while writing a medium: dates pinned to ``epoch``."""
    env = dict(os.environ)
    env.update({
        "SOURCE_DATE_EPOCH": str(epoch),  # xorriso and mtools take their dates from it
        "TZ": "UTC",
        "LC_ALL": "C",
        "MTOOLS_SKIP_CHECK": "1",
        "MTOOLSRC": os.devnull,  # no user mtools configuration changes what is written
    })
    return env


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
        stdin: bytes | None = None) -> str:
    """Run a tool; a failure is a :class:`BuildError` carrying its output. The tool dies with
    liveforge, even a killed one (these tools start no children of their own)."""
    import subprocess

    from liveforge.util.errors import BuildError
    from liveforge.util.proc import die_with_parent, text_tail

    proc = subprocess.run(argv, env=env, cwd=cwd, input=stdin, capture_output=True,
                          preexec_fn=die_with_parent)
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode != 0:
        raise BuildError(f"{Path(argv[0]).name} failed (exit {proc.returncode})",
                         tail=text_tail(output, 20))
    return output
