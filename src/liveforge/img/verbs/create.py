"""imgadm create VM_UUID [-c COMPRESSION] [-o DIR] -m name=N -m version=V [-m key=value ...]:
an incremental image of a stopped container VM (liveforge.img.create)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liveforge.img.create import DEFAULT_COMPRESSION, create, parse_fields
from liveforge.img.verbs.base import Context
from liveforge.util.archive import COMPRESSIONS

SUMMARY = "create an image of a stopped OS-brand VM (its changes against its image)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vm", metavar="VM_UUID")
    parser.add_argument("-c", dest="compression", choices=COMPRESSIONS,
                        default=DEFAULT_COMPRESSION,
                        help=f"the image file's compression (default {DEFAULT_COMPRESSION})")
    parser.add_argument("-o", dest="out", default=".", metavar="DIR",
                        help="where to write <name>-<version>.json and .tar[.gz|...] (default .)")
    parser.add_argument("-m", dest="fields", action="extend", nargs="+", default=[],
                        metavar="KEY=VALUE",
                        help="a manifest field (name and version are required)")
    parser.add_argument("-q", dest="quiet", action="store_true", help="no progress output")


def run(ctx: Context) -> int:
    args = ctx.args
    fields = parse_fields(args.fields)
    say = (lambda line: None) if args.quiet else ctx.say
    made = create(args.vm.lower(), fields, Path(args.out), args.compression, ctx.store, say,
                  ctx.debug)
    file = made.manifest.file
    size = f" ({file.size} bytes)" if file is not None else ""
    say(f"Created image {made.manifest.uuid} ({made.manifest.label}) from VM {made.vm.uuid}")
    ctx.say(str(made.manifest_path))
    ctx.say(f"{made.file_path}{size}")
    return 0
