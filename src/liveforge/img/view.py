"""The full tree of a tree image: its ancestry's layer directories stacked by overlayfs.

The lower layers are read-only (the images' own directories, never written); a writable
``upper`` with its ``work`` directory (on the same file system) takes what the user of the
view changes, as a container engine's container layer does. Whiteouts and opaque directories
in the layers are honoured by the kernel. Mounting needs root (or a user namespace).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from liveforge.img.errors import ImgadmError

# the overlayfs option string is one page; its separators cannot appear in a path
MAX_OPTIONS = 4095
BAD_CHARS = (",", ":", "\\", "\n")


def _checked(path: Path) -> str:
    text = str(path.resolve())
    for char in BAD_CHARS:
        if char in text:
            raise ImgadmError("InternalError", f"{text}: a path holding {char!r} cannot be an "
                              "overlayfs layer")
    return text


def overlay_options(lowers: Sequence[Path], upper: Path | None = None,
                    work: Path | None = None) -> str:
    """The mount options of the stack: ``lowers`` top layer first (overlayfs order)."""
    if not lowers:
        raise ImgadmError("InternalError", "an overlayfs view needs at least one layer")
    if (upper is None) != (work is None):
        raise ImgadmError("InternalError", "an overlayfs view needs both upper and work or "
                          "neither")
    options = "lowerdir=" + ":".join(_checked(p) for p in lowers)
    if upper is not None and work is not None:
        # every changed file copied up whole and no renamed directory left as a redirect: the
        # upper directory alone is then the changes (what layer.write_upper reads)
        options += (f",upperdir={_checked(upper)},workdir={_checked(work)}"
                    ",redirect_dir=off,metacopy=off")
    if len(options) > MAX_OPTIONS:
        raise ImgadmError("InternalError", f"{len(lowers)} layers make overlayfs options of "
                          f"{len(options)} bytes, more than a page")
    return options


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ImgadmError("InternalError", f"{what}: {detail[-1] if detail else proc.returncode}")


def mount_view(lowers: Sequence[Path], upper: Path | None, work: Path | None,
               target: Path) -> None:
    """Mount the stack on ``target`` (an existing directory). Without ``upper`` the view is
    read-only; one layer alone is then a read-only bind mount (overlayfs wants two)."""
    options = overlay_options(lowers, upper, work)
    if upper is None and len(lowers) == 1:
        _run(["mount", "--bind", "-o", "ro", str(lowers[0]), str(target)],
             f"cannot mount the image view on {target}")
        return
    if upper is None:
        options = "ro," + options
    _run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)],
         f"cannot mount the image view on {target}")


def unmount_view(target: Path) -> None:
    """Unmount the view on ``target``."""
    _run(["umount", str(target)], f"cannot unmount the image view on {target}")
