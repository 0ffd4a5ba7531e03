"""imgadm vacuum [-n] [-f]: delete the installed images nothing uses.

An image is in use while a VM holds it or it is in the ancestry of an image a VM holds; the
others are deleted, children before their origins."""

from __future__ import annotations

import argparse
import sys

from liveforge.img.store import ImageStore, Installed
from liveforge.img.verbs.base import Context

SUMMARY = "delete the installed images no VM uses (directly or as an origin)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", dest="dry_run", action="store_true",
                        help="only say what would be deleted")
    parser.add_argument("-f", dest="force", action="store_true", help="do not ask")


def unused(store: ImageStore) -> list[Installed]:
    """The unused images, each before its origin (children first)."""
    images = store.list()
    used: set[tuple[str, str]] = set()
    for image in images:
        if store.holders(image.uuid, image.pool):
            used.update((a.pool, a.uuid) for a in store.ancestry(image.uuid, image.pool))
    left = [i for i in images if (i.pool, i.uuid) not in used]
    ordered: list[Installed] = []
    while left:  # peel leaves: an image no remaining image has as origin
        origins = {(i.pool, i.manifest.origin) for i in left}
        leaves = [i for i in left if (i.pool, i.uuid) not in origins]
        ordered += leaves
        left = [i for i in left if i not in leaves]
    return ordered


def run(ctx: Context) -> int:
    store = ctx.store
    doomed = unused(store)
    if not doomed:
        ctx.say("No unused images to delete")
        return 0
    if ctx.args.dry_run:
        for image in doomed:
            ctx.say(f"[dry-run] Would delete image {image.uuid} ({image.manifest.label})")
        return 0
    if not ctx.args.force:
        ctx.out.write(f"Delete {len(doomed)} unused image(s)? [y/N] ")
        ctx.out.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            ctx.say("Aborting vacuum")
            return 0
    for image in doomed:
        store.delete(image.uuid, image.pool)
        ctx.say(f"Deleted image {image.uuid} ({image.manifest.label})")
    ctx.say(f"Deleted {len(doomed)} unused image(s)")
    return 0
