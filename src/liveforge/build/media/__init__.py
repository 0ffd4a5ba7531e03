"""Boot media written from a built platform: the ISO (iso.py), the USB stick image (usb.py) and
the netboot script (pxe.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liveforge.build.media.console import (
    CONSOLE_NAMES,
    CONSOLES,
    DEFAULT_CONSOLE,
    Console,
    get_console,
)

if TYPE_CHECKING:
    from liveforge.build.media.iso import build_iso
    from liveforge.build.media.usb import build_usb

__all__ = ["CONSOLES", "CONSOLE_NAMES", "DEFAULT_CONSOLE", "Console", "build_iso", "build_usb",
           "get_console"]


def __getattr__(name: str) -> Any:
    # the writers pull in much (archives, FAT, GRUB images): imported when first asked for, so
    # the command line can offer the console names without them
    if name == "build_iso":
        from liveforge.build.media.iso import build_iso
        return build_iso
    if name == "build_usb":
        from liveforge.build.media.usb import build_usb
        return build_usb
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
