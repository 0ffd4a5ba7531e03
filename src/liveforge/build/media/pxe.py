"""Netboot: the iPXE script that boots a built platform from a boot server.

``liveforge netboot`` writes ``output/<platform>.ipxe`` beside the platform directory
``output/<platform>/`` (``<platform>`` is ``platform-<STAMP>``, or ``platform-debug-<STAMP>``)
and points ``output/platform-latest.ipxe`` at it::

    #!ipxe
    ...
    kernel platform-<STAMP>/<arch>/vmlinuz initrd=boot_archive console=ttyS0,115200n8
    initrd platform-<STAMP>/<arch>/boot_archive
    boot

The paths are relative: iPXE resolves them against the script's own URL, so a boot server that
serves ``output/`` over TFTP or HTTP boots any platform in it (DHCP's boot file, or a ``chain``,
names ``platform-<STAMP>.ipxe`` or ``platform-latest.ipxe``). The architecture directory is the
platform's ``arch`` setting (image/layout.py). The kernel arguments are those of the media's GRUB
entries (grubcfg.kernel_args), for the console chosen with ``-c``, after ``initrd=boot_archive``:
under UEFI, iPXE hands the boot archive over as a file that the kernel's EFI stub loads by the
name given there (the image's name, the last part of its path); under BIOS iPXE loads it itself
and the kernel ignores the argument.

Why beside the platform directory and not inside it: the directory and its tarball are one unit,
written once by ``live`` and replaced as one. The console is chosen when the script is written,
as it is for the ISO and the USB image; a script inside the directory would mean rewriting a
finished platform (and a tarball that no longer matches it) for each console.

A boot test must boot the self-test entry (``liveforge.test=1``: power off after the self-tests)
without a different script. As on the media's GRUB menu, the script asks the machine: when its
first SMBIOS OEM string (type 11) is exactly ``liveforge.test=1`` it boots the self-test entry.
``${smbios/11.4.0}`` reads byte 4 of that table, its string count, as a string index, hence the
first string (GRUB's ``--get-string 4`` reads it the same way). ``liveforge boot --media pxe``
sets the string and serves ``output/`` itself, so the file tested is the file shipped, read
through the same relative paths; real hardware never carries the string.

The bytes depend only on the platform's directory name, stamp, architecture and the console.
The script is written under a temporary name and renamed into place, and the link is made under
a temporary name and renamed over the old one; a run that dies leaves temporaries that the next
``netboot`` removes.
"""

from __future__ import annotations

import re
from pathlib import Path

from liveforge.build.image.layout import BOOT_ARCHIVE, PlatformLayout
from liveforge.build.media.console import Console, get_console
from liveforge.build.media.grubcfg import TEST_ARG, kernel_args
from liveforge.build.media.layout import platform_files
from liveforge.util.errors import LiveforgeError, UsageError
from liveforge.util.fileio import swap_link, write_atomic
from liveforge.util.scratch import remove_leftovers

SUFFIX = ".ipxe"
LATEST = "platform-latest.ipxe"
TEST_LABEL = "selftest"
# a name in the script is one path component of these characters: no space splits an iPXE
# command, and no '$' or '{' expands as an iPXE setting
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def script_name(dirname: str) -> str:
    """The script's name beside the platform directory ``dirname``."""
    return f"{dirname}{SUFFIX}"


def ipxe_script(dirname: str, stamp: str, arch: str, console: Console) -> str:
    """The iPXE script booting ``dirname/arch/vmlinuz`` with its boot archive onto ``console``."""
    for what, name in (("platform directory", dirname), ("architecture", arch)):
        if not PLAIN_NAME.match(name):
            raise UsageError(f"{what} {name!r} cannot be named in an iPXE script: "
                             "expected a plain name (letters, digits, '.', '_', '-')")
    layout = PlatformLayout(arch)
    kernel = f"{dirname}/{layout.kernel}"
    archive = f"{dirname}/{layout.boot_archive}"

    def entry(args: str) -> list[str]:
        return [f"kernel {kernel} initrd={BOOT_ARCHIVE} {args}", f"initrd {archive}", "boot"]

    lines = [
        "#!ipxe",
        f"# liveforge platform {stamp}, console {console.name} ({console.device})",
        "# Paths are relative to this script: serve its directory over TFTP or HTTP.",
        "# A boot test sets one SMBIOS OEM string (type 11) to the test argument: boot the",
        "# self-test entry, which powers off.",
        f"iseq ${{smbios/11.4.0}} {TEST_ARG} && goto {TEST_LABEL} ||",
        *entry(kernel_args(console)),
        "",
        f":{TEST_LABEL}",
        *entry(kernel_args(console, test=True)),
    ]
    return "\n".join(lines) + "\n"


def write_netboot(output_dir: Path, dirname: str, stamp: str, arch: str,
                  console: str = "ttya") -> Path:
    """Write ``output_dir/<dirname>.ipxe`` for the platform ``output_dir/dirname`` and point
    ``platform-latest.ipxe`` at it; returns the script's path."""
    term = get_console(console)
    text = ipxe_script(dirname, stamp, arch, term)
    output_dir = Path(output_dir)
    platform_files(output_dir / dirname, stamp, arch)  # a complete platform for this stamp
    final = output_dir / script_name(dirname)
    for path, write in ((final, lambda: write_atomic(final, text)),
                        (output_dir / LATEST, lambda: swap_link(output_dir / LATEST, final.name))):
        try:
            remove_leftovers(output_dir)
            write()
        except OSError as exc:
            raise LiveforgeError(f"cannot write {path}: {exc.strerror or exc}") from None
    return final


def check_script(script: Path, console: Console) -> list[Path]:
    """Before a boot: every file the script loads is in its directory, and it boots onto
    ``console`` (the port the runner watches). Returns those files."""
    text = script.read_text(errors="replace")
    if not text.startswith("#!ipxe"):
        raise LiveforgeError(f"{script} is not an iPXE script (no '#!ipxe' line)")
    files: list[Path] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0] not in ("kernel", "initrd"):
            continue
        if len(words) < 2 or ".." in words[1].split("/") or words[1].startswith("/"):
            raise LiveforgeError(f"{script}:{number}: expected a relative path to load")
        path = script.parent / words[1]
        if not path.is_file():
            raise LiveforgeError(f"{script}:{number}: {words[1]} is missing beside it: "
                                 "rebuild with 'liveforge live', then 'liveforge netboot'")
        if words[0] == "kernel" and console.kernel_arg() not in words[2:]:
            raise UsageError(f"{script} boots onto another console than {console.name} "
                             f"({console.kernel_arg()}): write it with 'liveforge netboot "
                             f"-c {console.name}', or boot with its console")
        files.append(path)
    if not files:
        raise LiveforgeError(f"{script} loads no kernel")
    return files
