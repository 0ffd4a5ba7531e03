"""One medium being written: what the ISO and USB writers both start from, and their scratch.

``media_job`` checks the platform, finds the host tools, pins the build's time, removes what
a killed run of the writer left in the output directory, and gives a fresh work directory that
is removed however the writer ends. The writer renames its finished image to ``final``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.buildstamp import stamp_epoch
from liveforge.build.media.console import Console, get_console
from liveforge.build.media.hosttools import repro_env, require
from liveforge.build.media.layout import MediaFile, platform_files
from liveforge.util.scratch import make_temp_dir, remove_leftovers, remove_temp


@dataclass(frozen=True, slots=True)
class MediaJob:
    console: Console
    files: list[MediaFile]       # the platform's files, in name order
    tools: dict[str, str]        # host tool -> its path
    epoch: int                   # the buildstamp's time: every date on the medium
    env: dict[str, str]          # the environment that makes the tools reproducible
    final: Path                  # the image's final path
    work: Path                   # a private scratch directory beside it


@contextmanager
def media_job(platform_dir: Path, stamp: str, out_dir: Path, name: str, *, arch: str,
              console: str, tools: tuple[str, ...]) -> Iterator[MediaJob]:
    """Start writing the medium ``out_dir/name`` of the platform ``platform_dir``."""
    term = get_console(console)
    files = platform_files(Path(platform_dir), stamp, arch)
    found = require(tools)
    epoch = stamp_epoch(stamp)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / name
    remove_leftovers(out_dir)  # what a killed run left
    work = make_temp_dir(out_dir, final.name)
    try:
        yield MediaJob(term, files, found, epoch, repro_env(epoch), final, work)
    finally:
        remove_temp(work)
