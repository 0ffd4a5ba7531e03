"""The console table: the names ``-c`` accepts, and what each means to GRUB and to the kernel.

One row per console; GRUB's terminal lines, the kernel's ``console=`` argument and the QEMU serial
port a boot test reads are all derived from the row, never spelled out elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from liveforge.util.errors import UsageError

SERIAL_SPEED = 115200


@dataclass(frozen=True, slots=True)
class Console:
    """A console: ``name`` as given on the command line, ``device`` as the kernel knows it."""

    name: str
    device: str
    serial_unit: int | None  # None for the text (VGA/framebuffer) console

    @property
    def is_serial(self) -> bool:
        return self.serial_unit is not None

    def kernel_arg(self) -> str:
        """The kernel's ``console=`` argument for this console."""
        if self.serial_unit is None:
            return f"console={self.device}"
        return f"console={self.device},{SERIAL_SPEED}n8"

    def grub_lines(self) -> list[str]:
        """The grub.cfg lines that put GRUB's menu on this console."""
        if self.serial_unit is None:
            return ["terminal_input console", "terminal_output console"]
        return [
            f"serial --unit={self.serial_unit} --speed={SERIAL_SPEED}"
            " --word=8 --parity=no --stop=1",
            "terminal_input serial",
            "terminal_output serial",
        ]


CONSOLES: tuple[Console, ...] = (
    Console("text", "tty0", None),  # the screen and keyboard
    Console("ttya", "ttyS0", 0),    # first serial port (COM1)
    Console("ttyb", "ttyS1", 1),    # second serial port (COM2)
    Console("ttyc", "ttyS2", 2),    # third serial port (COM3)
    Console("ttyd", "ttyS3", 3),    # fourth serial port (COM4)
)

CONSOLE_NAMES: tuple[str, ...] = tuple(c.name for c in CONSOLES)
DEFAULT_CONSOLE = "ttya"


def get_console(name: str) -> Console:
    """The table row for ``name``; a name not in the table is a :class:`UsageError`."""
    for console in CONSOLES:
        if console.name == name:
            return console
    raise UsageError(f"unknown console {name!r}: choose one of {', '.join(CONSOLE_NAMES)}")
