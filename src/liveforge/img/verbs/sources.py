"""imgadm sources [-a URL [-f]] [-d URL] [-e] [-j]: list or edit the image sources."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from liveforge.img import config as imgconfig
from liveforge.img.client import ping
from liveforge.img.errors import ImgadmError
from liveforge.img.verbs.base import Context

SUMMARY = "list, add, delete or edit the image sources"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", dest="add", metavar="URL", help="add a source (last)")
    parser.add_argument("-f", dest="force", action="store_true",
                        help="with -a: do not check that the source answers")
    parser.add_argument("-d", dest="delete", metavar="URL", help="delete a source")
    parser.add_argument("-e", dest="edit", action="store_true",
                        help="edit the source URLs in $EDITOR (one per line)")
    parser.add_argument("-j", dest="json", action="store_true", help="JSON output")


def _with(config: imgconfig.Config, sources: list[imgconfig.Source]) -> imgconfig.Config:
    return imgconfig.Config(tuple(sources), config.pools, True, config.extra)


def add(ctx: Context, url: str, force: bool) -> None:
    url = imgconfig.check_url(url)
    store = ctx.store
    config = store.config
    if any(s.url == url for s in config.sources):
        ctx.say(f'Already have "imgapi" image source "{url}", no change')
        return
    if not force:
        ping(url)
    store.save_config(_with(config, [*config.sources, imgconfig.Source(url)]))
    ctx.say(f'Added "imgapi" image source "{url}"')


def delete(ctx: Context, url: str) -> None:
    url = imgconfig.normalise_url(url)
    store = ctx.store
    config = store.config
    if not any(s.url == url for s in config.sources):
        ctx.say(f'Do not have "imgapi" image source "{url}", no change')
        return
    store.save_config(_with(config, [s for s in config.sources if s.url != url]))
    ctx.say(f'Deleted "imgapi" image source "{url}"')


def edit(ctx: Context) -> None:
    store = ctx.store
    config = store.config
    before = [s.url for s in config.sources]
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="imgadm-sources.") as tmp:
        path = Path(tmp) / "sources.txt"
        path.write_text("# one image source URL a line; save and quit to apply\n"
                        + "".join(f"{url}\n" for url in before))
        if subprocess.run([*shlex.split(editor), str(path)]).returncode != 0:
            raise ImgadmError("Usage", f"the editor {editor!r} failed: sources unchanged")
        lines = [line.strip() for line in path.read_text().splitlines()]
    after = [imgconfig.check_url(line) for line in lines if line and not line.startswith("#")]
    after = list(dict.fromkeys(after))
    if after == before:
        ctx.say("Image sources unchanged")
        return
    kept = {s.url: s for s in config.sources}
    store.save_config(_with(config, [kept.get(url, imgconfig.Source(url)) for url in after]))
    for url in before:
        if url not in after:
            ctx.say(f'Deleted "imgapi" image source "{url}"')
    for url in after:
        if url not in before:
            ctx.say(f'Added "imgapi" image source "{url}"')
    if [u for u in after if u in before] != [u for u in before if u in after]:
        ctx.say("Reordered image sources")


def run(ctx: Context) -> int:
    args = ctx.args
    if args.force and not args.add:
        raise ImgadmError("Usage", "-f goes with -a URL")
    if sum(bool(x) for x in (args.add, args.delete, args.edit)) > 1:
        raise ImgadmError("Usage", "give one of -a, -d and -e")
    if args.add:
        add(ctx, args.add, args.force)
    elif args.delete:
        delete(ctx, args.delete)
    elif args.edit:
        edit(ctx)
    elif args.json:
        ctx.json([s.record() for s in ctx.store.config.sources])
    else:
        for source in ctx.store.config.sources:
            ctx.say(source.url)
    return 0
