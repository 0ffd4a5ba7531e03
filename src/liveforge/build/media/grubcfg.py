"""GRUB configuration for the media: the menu (grub.cfg) and the config embedded in the loaders.

The menu has two entries, ``normal`` and ``test`` (the same kernel with ``liveforge.test=1``,
which makes the platform power off after its self-test). A person booting the medium gets
``normal`` after a short timeout. A boot test must get ``test`` without a person at the menu and
without a different medium, so the menu asks the machine: when the firmware's SMBIOS OEM strings
(type 11) hold exactly ``liveforge.test=1`` -- QEMU sets them with
``-smbios type=11,value=liveforge.test=1`` -- the default becomes ``test`` and the timeout 0.
Real hardware never carries that string, so the shipped medium behaves normally everywhere else.
"""

from __future__ import annotations

from liveforge.build.image.layout import PlatformLayout
from liveforge.build.media.console import Console
from liveforge.build.media.layout import GRUB_CFG, GRUB_DIR, marker_name, on_media

TEST_ARG = "liveforge.test=1"
#: What QEMU passes to select the test entry (see the module docstring).
SMBIOS_TEST_OPTION = f"type=11,value={TEST_ARG}"
MENU_TIMEOUT = 5


def kernel_args(console: Console, test: bool = False) -> str:
    """The kernel command line of a medium's normal entry, or of its self-test entry (which
    powers off after the self-tests, and on a panic at once). The netboot script and the
    direct boot use these too."""
    return f"{console.kernel_arg()} panic=-1 {TEST_ARG}" if test else console.kernel_arg()


# Modules built into every loader: nothing is read from a module directory at boot time.
COMMON_MODULES = (
    "normal", "linux", "serial", "terminal", "configfile", "search", "search_fs_file",
    "echo", "test", "smbios", "halt", "reboot", "part_msdos", "part_gpt", "fat", "iso9660",
)
BIOS_MODULES = (*COMMON_MODULES, "biosdisk", "linux16")
EFI_MODULES = (*COMMON_MODULES, "efi_gop", "efi_uga", "all_video")


def embedded_cfg(stamp: str) -> str:
    """The config built into each loader: find this medium by its marker, then read the menu."""
    return (
        f"search --no-floppy --file --set=root /{marker_name(stamp)}\n"
        f"set prefix=($root)/{GRUB_DIR}\n"
        f"configfile ($root)/{GRUB_CFG}\n"
    )


def grub_cfg(stamp: str, console: Console, arch: str) -> str:
    """The menu for a platform ``stamp`` of ``arch`` shown on, and booting the kernel onto,
    ``console``."""
    layout = PlatformLayout(arch)
    lines = [
        f"# liveforge platform {stamp}, console {console.name} ({console.device})",
        *console.grub_lines(),
        f"set timeout={MENU_TIMEOUT}",
        "set default=normal",
        "# A boot test sets one SMBIOS OEM string (type 11) to the test argument: boot the",
        "# test entry at once. Byte 4 of that table is its string count, so with one string",
        "# --get-string 4 reads it.",
        "if smbios --type 11 --get-string 4 --set liveforge_oem; then",
        f'  if [ "$liveforge_oem" = "{TEST_ARG}" ]; then',
        "    set default=test",
        "    set timeout=0",
        "  fi",
        "fi",
        "",
        "# BIOS boots the kernel by its 16-bit protocol (linux16), UEFI by its EFI stub.",
        "",
        f'menuentry "liveforge {stamp}" --id normal {{',
        *_load(layout, kernel_args(console)),
        "}",
        "",
        f'menuentry "liveforge {stamp} self-test (powers off)" --id test {{',
        *_load(layout, kernel_args(console, test=True)),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _load(layout: PlatformLayout, kernel_args: str) -> list[str]:
    """A menu entry's body: load the kernel and the boot archive.

    On BIOS the kernel is loaded by the 16-bit boot protocol (``linux16``), which runs the
    kernel's own real-mode setup as a boot loader would on a PC; under emulation it reaches the
    kernel about 2.5 s sooner than GRUB's 32-bit ``linux`` (bench/boot.py).
    """
    kernel, boot_archive = on_media(layout.kernel), on_media(layout.boot_archive)
    return [
        '  if [ "$grub_platform" = "pc" ]; then',
        f"    linux16 /{kernel} {kernel_args}",
        f"    initrd16 /{boot_archive}",
        "  else",
        f"    linux /{kernel} {kernel_args}",
        f"    initrd /{boot_archive}",
        "  fi",
    ]
