"""The command line's grammar: each verb's arguments, the options every verb takes, and
argparse's plumbing (a parser whose errors are raised, help told the terminal's width).
:mod:`liveforge.build.cli` builds the parser from them and runs the verbs."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn


def add_verb_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "configure":
        p.add_argument("-d", dest="debug", action="store_true", help="debug build (DEBUG=yes)")
        p.add_argument("-r", dest="force_strap", action="store_true",
                       help="build proto.strap locally instead of using the build cache")
        p.add_argument("-c", dest="clobber", action="store_true",
                       help="clobber build state first (a build from scratch)")
        p.add_argument("--refresh-lock", action="store_true",
                       help="resolve Debian packages again and rewrite platform.lock")
    elif name == "build":
        p.add_argument("component", help="COMPONENT, or COMPONENT:PACKAGE for an extra package")
        p.add_argument("--no-deps", action="store_true", help="do not build stale dependencies")
        p.add_argument("--variant", choices=["32", "64"], help="one variant of an extra package")
        p.add_argument("--strap", action="store_true", help="the bootstrap phase")
    elif name in ("live", "manifest"):
        p.add_argument("--strict", action="store_true",
                       help="a path delivered twice or an undeclared parent directory is an error, "
                       "not a warning")
        if name == "live":
            p.add_argument("--root-tarball", action="store_true",
                           help="also write the image root as output/<platform>-root.tgz")
        if name == "manifest":
            p.add_argument("action", choices=["lint", "show", "diff"])
            p.add_argument("platforms", nargs="*", metavar="PLATFORM",
                           help="for diff: two platform directories or tarballs")
    elif name == "overlay":
        p.add_argument("action", choices=["add-driver"])
        p.add_argument("name", help="the driver's name")
        p.add_argument("aliases", nargs="*", metavar="ALIAS")
        p.add_argument("--overlay", metavar="DIR", help="the overlay (default: the first)")
    elif name in ("iso", "usb", "netboot", "boot"):
        from liveforge.build.media.console import CONSOLE_NAMES

        p.add_argument("-c", "--console", choices=CONSOLE_NAMES, default="ttya",
                       help="the console: text (tty0) or a serial port ttya..ttyd (ttyS0..3)")
        if name == "boot":
            p.add_argument("--media", choices=["direct", "iso", "usb", "pxe"],
                           default="direct", help="kernel+boot archive directly, the ISO or "
                           "USB image, or the netboot script through iPXE (pxe)")
            p.add_argument("--uefi", action="store_true", help="boot with OVMF (UEFI)")
            p.add_argument("--timeout", type=float, default=180.0, metavar="S",
                           help="seconds to wait for PLATFORM-READY")
            p.add_argument("--interactive", action="store_true",
                           help="attach the console to this terminal")
    elif name == "cache":
        p.add_argument("action", choices=["stats", "prune", "push"])
        p.add_argument("--max-size", metavar="SIZE",
                       help="prune: the local store's limit (default CACHE_MAX_SIZE, 10G)")
    elif name in ("sbom", "size", "report"):
        p.add_argument("platform", nargs="?", metavar="PLATFORM",
                       help="a platform directory, or its name under output/ (default: the "
                       "latest)")
        if name == "sbom":
            p.add_argument("--format", choices=["spdx", "cyclonedx"], default="spdx")
            p.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
        elif name == "size":
            p.add_argument("--by", choices=["component", "dir", "file"], default="component")
            p.add_argument("--top", type=int, metavar="N", help="the N biggest rows only")
            p.add_argument("--diff", nargs=2, metavar=("A", "B"),
                           help="compare two platforms (A before, B after)")
    elif name == "timeline":
        p.add_argument("stamp", nargs="?", metavar="STAMP",
                       help="the build's stamp (default: the latest platform's)")
        p.add_argument("--format", choices=["text", "svg", "json"], default="text")
        p.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    elif name == "graph":
        p.add_argument("component", nargs="?", metavar="COMPONENT",
                       help="only its dependencies and dependents")
        p.add_argument("--format", choices=["dot", "svg"], default="dot")
        p.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    elif name == "shell":
        p.add_argument("component")
        p.add_argument("command", nargs=argparse.REMAINDER,
                       help="run this command instead of an interactive shell")


def global_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("-C", metavar="WS", help="the workspace (default: .)", **d)
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="parallel jobs (MAX_JOBS)", **d)
    p.add_argument("--json", action="store_true", help="JSON-lines events on stdout", **d)
    p.add_argument("-v", "--verbose", action="count", help="more output", **d)
    p.add_argument("-q", "--quiet", action="store_true", help="less output", **d)
    p.add_argument("--wait", action="store_true", help="wait for the workspace lock", **d)
    p.add_argument("--offline", action="store_true",
                   help="never touch the network: any download is an error", **d)
    p.add_argument("--no-cache", action="store_true",
                   help="neither restore steps from the build cache nor store them", **d)
    p.add_argument("--cache-readonly", action="store_true",
                   help="restore steps from the build cache but store nothing", **d)


class ParseError(Exception):
    """An error of a narrowed parse (see :func:`parse`)."""


class NarrowParser(argparse.ArgumentParser):
    """argparse's parser, raising its errors: the whole parser then reports them."""

    def error(self, message: str) -> NoReturn:
        raise ParseError(message)


class Formatter(argparse.HelpFormatter):
    """argparse's help, told the terminal's width: left to find it, argparse imports shutil
    (and the compression modules shutil imports) for every parser it builds."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_width() - 2)


def terminal_width() -> int:
    """Columns of the terminal: COLUMNS, else standard output's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80
