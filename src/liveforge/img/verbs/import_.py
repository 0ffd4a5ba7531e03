"""imgadm import UUID [-P POOL] [-q] [-S URL]: download an image and its missing ancestors from
the image sources and install them.

The recipe, under the image's import lock (a second import of the same image waits, then finds
it installed): find the first source with an *active* manifest; walk the ``origin`` chain up to
the first installed ancestor (each origin looked for in the same source first); download every
missing image at once (up to five at a time, base first, an origin under its own lock: the
import of a sibling shares its download) into ``var/imgadm/downloads/``; install
them in ancestry order, base first. A tree image (compressed or not) is unpacked into its
``-partial`` layer while it downloads (:mod:`liveforge.img.follow`), so that its install is a
rename and a record. An import installs the whole ancestry or nothing: should an
install fail or the user press Ctrl-C, the images this run installed are deleted again. What the
downloads hold stays: a verified file is reused and a ``.partial`` one resumed by the next
import; both are removed once the import succeeds.
"""

from __future__ import annotations

import argparse
import queue
import signal
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from liveforge.img.errors import ImgadmError
from liveforge.img.follow import Streamed, Unpackings, streamable
from liveforge.img.manifest import Manifest, is_uuid
from liveforge.img.store import DEFAULT_POOL, ImageStore
from liveforge.img.verbs.base import Context

if TYPE_CHECKING:
    from liveforge.img.client import Client
    from liveforge.img.remote import Remote
    from liveforge.util.events import ByteProgress

SUMMARY = "import an image and its missing ancestors from the image sources"
CONCURRENT = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="UUID")
    parser.add_argument("-P", dest="pool", default=DEFAULT_POOL, metavar="POOL")
    parser.add_argument("-q", dest="quiet", action="store_true", help="no progress bars")
    parser.add_argument("-S", dest="source", metavar="URL",
                        help="import from this source instead of the configured ones")


def mib(size: int) -> str:
    """A size in MiB as imgadm prints it: 1024-based, one decimal, truncated."""
    tenths = size * 10 // (1 << 20)
    return f"{tenths // 10}.{tenths % 10} MiB"


@dataclass(frozen=True, slots=True)
class Wanted:
    """An image to download and install, and the source it comes from."""

    manifest: Manifest
    client: Client

    @property
    def size(self) -> int:
        return self.manifest.file.size if self.manifest.file is not None else 0


def run(ctx: Context) -> int:
    args = ctx.args
    uuid = args.uuid
    if not is_uuid(uuid):
        raise ImgadmError("Usage", f'"{uuid}" is not an image uuid')
    store = ctx.store
    if skip_installed(ctx, store, uuid, args.pool):
        return 0
    with store.import_lock(uuid, lambda: ctx.say(f"Waiting for image {uuid} import lock")):
        if skip_installed(ctx, store, uuid, args.pool):
            return 0
        from liveforge.img.remote import Remote, warner

        with Remote.of(store, args.source, warner(ctx.verb, ctx.err)) as remote:
            manifest, client = remote.find_active(uuid)
            ctx.say(f'Importing {uuid} ({manifest.label}) from "{client.url}"')
            ctx.say(f"Gather image {uuid} ancestry")
            chain = gather(ctx, store, remote, Wanted(manifest, client), args.pool)
            ctx.say(f"Must download and install {len(chain)} image(s) "
                    f"({mib(sum(w.size for w in chain))})")
            downloads = store.imgadm_dir / "downloads"
            files, unpacked = download_all(ctx, store, chain, downloads, args.quiet, args.pool)
            try:
                install_all(ctx, store, chain, files, args.pool, unpacked)
            finally:  # the layers unpacked while downloading that no install took
                for uuid, identity in unpacked.items():
                    store.drop_partial(uuid, args.pool, identity)
            for file in files.values():
                file.unlink(missing_ok=True)
    return 0


def skip_installed(ctx: Context, store: ImageStore, uuid: str, pool: str) -> bool:
    found = store.get(uuid, pool)
    if found is not None:
        m = found.manifest
        ctx.say(f"Image {uuid} ({m.name} {m.version}) is already installed, skipping")
    return found is not None


def gather(ctx: Context, store: ImageStore, remote: Remote, top: Wanted,
           pool: str) -> list[Wanted]:
    """The images to download, base first: ``top`` and its origins up to the first installed
    one (OriginNotFoundInSource when an origin is in no source)."""
    chain = [top]
    while (origin := chain[-1].manifest.origin) is not None:
        if store.get(origin, pool) is not None:
            ctx.say(f"Image {origin} already installed")
            break
        if any(w.manifest.uuid == origin for w in chain):
            raise ImgadmError("InvalidManifest", f'image "{top.manifest.uuid}" has an origin '
                              f'loop at "{origin}"')
        found = remote.find(origin, active=False, first=chain[-1].client)
        if found is None:
            raise ImgadmError("OriginNotFoundInSource", f'origin image "{origin}" of image '
                              f'"{chain[-1].manifest.uuid}" was not found in any image source')
        chain.append(Wanted(*found))
    return chain[::-1]


def download_all(ctx: Context, store: ImageStore, chain: list[Wanted], directory: Path,
                 quiet: bool, pool: str) -> tuple[dict[str, Path], dict[str, tuple[int, int]]]:
    """Download the images' files, up to CONCURRENT at a time, started base first. The first
    failure (or Ctrl-C) stops the others, which keep what they have for the next import.
    Returns the files and, for the images unpacked while they downloaded
    (:mod:`liveforge.img.follow`), their ``-partial`` layers' identities.

    The workers are daemon threads: a download blocked on a silent server must not keep a
    cancelled import from exiting (it would, for up to the read timeout, in an executor)."""
    from liveforge.util.events import ByteProgress

    directory.mkdir(parents=True, exist_ok=True)
    files = {w.manifest.uuid: directory / f"{w.manifest.uuid}.file" for w in chain}
    unpacked: dict[str, tuple[int, int]] = {}
    cancel = threading.Event()
    streams = Unpackings(cancel)
    todo: queue.Queue[Wanted] = queue.Queue()
    for wanted in chain:
        todo.put(wanted)
    done: queue.Queue[tuple[Wanted, BaseException | None]] = queue.Queue()
    show = not quiet and ctx.err.isatty()
    with ByteProgress(show, ctx.err) as bars:
        def work() -> None:
            while not cancel.is_set():
                try:
                    wanted = todo.get_nowait()
                except queue.Empty:
                    return
                uuid = wanted.manifest.uuid
                try:
                    get = partial(fetch, store, wanted, files[uuid], pool, bars, cancel,
                                  streams, unpacked)
                    if wanted is chain[-1]:  # its lock is the import's own
                        get()
                    else:  # an origin's file may be wanted by the import of a sibling too
                        with store.import_lock(uuid, partial(bars.line, f"Waiting for image "
                                                             f"{uuid} import lock", ctx.out)):
                            get()
                    done.put((wanted, None))
                except BaseException as exc:  # handed to the main thread
                    done.put((wanted, exc))

        try:
            for n in range(min(CONCURRENT, len(chain))):
                threading.Thread(target=work, name=f"download-{n}", daemon=True).start()
            for _ in chain:
                wanted, error = done.get()
                if error is not None:
                    raise error
                bars.line(f"Downloaded image {wanted.manifest.uuid} ({mib(wanted.size)})",
                          ctx.out)
        except BaseException:
            streams.abort_all()  # no -partial layer stays behind
            raise
    return files, unpacked


def fetch(store: ImageStore, wanted: Wanted, dest: Path, pool: str, bars: ByteProgress,
          cancel: threading.Event, streams: Unpackings,
          unpacked: dict[str, tuple[int, int]]) -> None:
    """Download one image's file; a tree image's tar is unpacked into its ``-partial`` layer
    at the same time (the caller holds the image's lock)."""
    m = wanted.manifest
    advance = bars.add(f"{m.uuid[:8]} {m.label}", wanted.size)
    if not streamable(m):
        wanted.client.download(m, dest, advance, cancel)
        return
    stream = Streamed(m, dest, store.fresh_partial(m, pool))
    if not streams.start(stream):  # the import is being cancelled
        from liveforge.img.client import Cancelled

        raise Cancelled(m.uuid)
    try:
        fresh = wanted.client.download(m, dest, advance, cancel, stream.discard)
    except BaseException:
        stream.abort()
        raise
    identity = stream.finish(fresh)
    if identity is not None:
        unpacked[m.uuid] = identity


def install_all(ctx: Context, store: ImageStore, chain: list[Wanted], files: dict[str, Path],
                pool: str, unpacked: dict[str, tuple[int, int]]) -> None:
    """Install the images base first; on any failure (Ctrl-C included) delete again the ones
    this run installed, newest first."""
    done: list[str] = []
    try:
        for wanted in chain:
            m = wanted.manifest
            ctx.debug("install", uuid=m.uuid, unpacked_while_downloading=m.uuid in unpacked)
            try:
                store.install(m, files[m.uuid], wanted.client.url, pool, verified=True,
                              take=True, unpacked=unpacked.get(m.uuid))
            except ImgadmError as exc:
                if exc.code != "ImageAlreadyInstalled":
                    raise
                ctx.say(f"Image {m.uuid} already installed")  # another import was quicker
                continue
            done.append(m.uuid)
            ctx.say(f"Imported image {m.uuid} ({m.label})")
    except BaseException:
        # a second Ctrl-C must not stop the undoing half-way: the stop signals wait until it
        # is done (then the first one is what is reported)
        stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            for uuid in reversed(done):
                try:
                    store.delete(uuid, pool)
                except (ImgadmError, OSError) as exc:
                    print(f"imgadm {ctx.verb}: warning: could not remove the partly imported "
                          f"image {uuid}: {exc}", file=ctx.err, flush=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
