"""Boot media written from a built platform: the ISO (iso.py) and the USB stick image (usb.py)."""

from .console import CONSOLE_NAMES, CONSOLES, DEFAULT_CONSOLE, Console, get_console
from .iso import build_iso
from .usb import build_usb

__all__ = ["CONSOLES", "CONSOLE_NAMES", "DEFAULT_CONSOLE", "Console", "build_iso", "build_usb",
           "get_console"]
