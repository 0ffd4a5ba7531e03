"""Sizes: the bytes each component ships in a platform's boot archive, and its share of the
compressed archive.

Everything is measured on the platform itself: its boot archive is read once, in small pieces
of compressed input, noting how many compressed bytes had been read when each member's data
had come out; a member's compressed bytes are the difference (the archive's headers and
padding go to the ``(archive)`` row, so the rows add up to the archive's size exactly). A
zstd archive's compressed bytes are shared in proportion to the members' sizes. Who
ships each path comes from the platform's SBOM. The kernel boots beside the archive, and is
listed beside it, with the component whose file it is (by its content, in the SBOM).
"""

from __future__ import annotations

import os
import posixpath
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.image.layout import PlatformLayout
from liveforge.build.insight.bom import Bom
from liveforge.util.errors import LiveforgeError
from liveforge.util.hashing import file_digest

ARCHIVE_ROW = "(archive)"   # cpio headers, padding and the trailer
PIECE = 512                 # compressed bytes fed at a time


@dataclass(frozen=True, slots=True)
class Member:
    """One member of the boot archive as measured: its data's bytes and compressed bytes."""

    path: str
    size: int
    compressed: int


@dataclass(frozen=True, slots=True)
class Sizes:
    """A platform's boot archive measured: each member (with its owner), the archive's files."""

    members: tuple[Member, ...]
    owners: dict[str, str]       # path -> component
    archive_bytes: int           # the compressed boot archive's size
    content_bytes: int           # the uncompressed cpio stream's size
    kernel_bytes: int            # the kernel beside it
    kernel_owner: str = ""       # the component that ships the kernel's file ("" unknown)

    def rows(self, by: str) -> list[dict[str, object]]:
        """One row per component, directory or file: name, files, bytes, compressed, share."""
        keyed: dict[str, list[Member]] = defaultdict(list)
        for member in self.members:
            if by == "component":
                key = self.owners.get(member.path, ARCHIVE_ROW)
            elif by == "dir":
                key = posixpath.dirname(member.path) or "." if member.path != ARCHIVE_ROW \
                    else ARCHIVE_ROW
            else:
                key = member.path
            keyed[key].append(member)
        rows = []
        for key, members in keyed.items():
            size = sum(m.size for m in members)
            packed = sum(m.compressed for m in members)
            rows.append({"name": key, "files": sum(m.path != ARCHIVE_ROW for m in members),
                         "bytes": size, "compressed": packed,
                         "share": round(100.0 * packed / self.archive_bytes, 2)
                         if self.archive_bytes else 0.0})
        rows.sort(key=lambda r: (-int(r["compressed"]), str(r["name"])))  # type: ignore[call-overload]
        return rows


def measure(platform: Path, bom: Bom, arch: str) -> Sizes:
    """Measure ``platform``'s boot archive."""
    layout = PlatformLayout(arch)
    archive = platform / layout.boot_archive
    if not archive.is_file():
        raise LiveforgeError(f"{platform} has no {layout.boot_archive}: not a platform")
    members = _members(archive)
    kernel = platform / layout.kernel
    regular = {f.path for f in bom.files}
    data = [m for m in members if m.path in regular]
    rest = Member(ARCHIVE_ROW, sum(m.size for m in members if m.path not in regular),
                  sum(m.compressed for m in members if m.path not in regular))
    owner = ""
    if kernel.is_file():  # the image's file of the same content (the SBOM lists it)
        digest = file_digest(kernel)
        owner = next((f.component for f in bom.files if f.sha256 == digest), "")
    return Sizes(tuple([*data, rest]), bom.owners(), os.path.getsize(archive),
                 sum(m.size for m in members), kernel.stat().st_size if kernel.is_file() else 0,
                 owner)


def _members(archive: Path) -> list[Member]:
    """Every piece of the cpio stream, each a member's data (by its path) or what is between
    them (headers, padding: the path ""), with the compressed bytes read while it came out."""
    with open(archive, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] != b"\x1f\x8b":
        return _members_of_stream(archive)
    out = bytearray()    # decompressed and not yet parsed
    consumed = 0         # compressed bytes fed so far
    marks: list[tuple[int, int]] = [(0, 0)]  # (decompressed offset, compressed bytes read)
    produced = 0
    inflater = zlib.decompressobj(wbits=31)
    with open(archive, "rb") as handle:
        while piece := handle.read(PIECE):
            consumed += len(piece)
            chunk = inflater.decompress(piece)
            while inflater.unused_data:  # concatenated gzip members
                rest = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                chunk += inflater.decompress(rest)
            produced += len(chunk)
            out += chunk
            marks.append((produced, consumed))
    return _split(bytes(out), marks)


def _members_of_stream(archive: Path) -> list[Member]:
    """A zstd (or uncompressed) boot archive: zstd writes its output in blocks of 128 KiB
    that cannot be told apart here, so each member gets compressed bytes in proportion to
    its size (the rows still add up to the archive's size)."""
    import subprocess

    with open(archive, "rb") as handle:
        magic = handle.read(4)
    if magic == b"\x28\xb5\x2f\xfd":
        proc = subprocess.run(["zstd", "-dcq", str(archive)], capture_output=True, check=False)
        if proc.returncode != 0:
            raise LiveforgeError(f"{archive}: zstd cannot read it: "
                                 f"{proc.stderr.decode(errors='replace').strip()}")
        stream = proc.stdout
    else:
        stream = archive.read_bytes()
    return _split(stream, [(0, 0), (len(stream), os.path.getsize(archive))])


def _split(stream: bytes, marks: list[tuple[int, int]]) -> list[Member]:
    """Walk the cpio newc ``stream``; each member's compressed bytes from ``marks``."""
    import bisect

    offsets = [m[0] for m in marks]

    def packed_at(offset: int) -> float:
        """Compressed bytes read when the stream had reached ``offset`` (interpolated)."""
        i = bisect.bisect_left(offsets, offset)
        if i >= len(marks):
            return float(marks[-1][1])
        if offsets[i] == offset or i == 0:
            return float(marks[i][1])
        (o0, c0), (o1, c1) = marks[i - 1], marks[i]
        return c0 + (c1 - c0) * (offset - o0) / (o1 - o0)

    pos = 0
    gaps = 0.0
    gap_bytes = 0
    members: list[Member] = []
    while pos + 110 <= len(stream):
        header = stream[pos:pos + 110]
        size = int(header[54:62], 16)
        namesize = int(header[94:102], 16)
        name = stream[pos + 110:pos + 110 + namesize - 1].decode(errors="surrogateescape")
        start = pos + 110 + namesize
        start += -start % 4
        end = start + size
        gaps += packed_at(start) - packed_at(pos)
        gap_bytes += start - pos
        if name == "TRAILER!!!":
            pos = start
            break
        members.append(Member(name, size, 0 if not size else
                              round(packed_at(end) - packed_at(start))))
        pad = -size % 4
        gaps += packed_at(end + pad) - packed_at(end)
        gap_bytes += pad
        pos = end + pad
    total = marks[-1][1]
    data = sum(m.compressed for m in members)
    gap_bytes += len(stream) - pos
    members.append(Member("", gap_bytes, total - data))
    return members


def size_diff(a: Sizes, b: Sizes, by: str) -> list[dict[str, object]]:
    """Rows present in either platform: name, bytes and compressed in each, and the change."""
    ra = {str(r["name"]): r for r in a.rows(by)}
    rb = {str(r["name"]): r for r in b.rows(by)}
    rows = []
    for name in sorted(set(ra) | set(rb)):
        bytes_a = int(ra[name]["bytes"]) if name in ra else 0  # type: ignore[call-overload]
        bytes_b = int(rb[name]["bytes"]) if name in rb else 0  # type: ignore[call-overload]
        packed_a = int(ra[name]["compressed"]) if name in ra else 0  # type: ignore[call-overload]
        packed_b = int(rb[name]["compressed"]) if name in rb else 0  # type: ignore[call-overload]
        if bytes_a != bytes_b:  # compressed bytes alone move by a few with their neighbours
            rows.append({"name": name, "bytes_a": bytes_a, "bytes_b": bytes_b,
                         "delta": bytes_b - bytes_a, "compressed_a": packed_a,
                         "compressed_b": packed_b, "compressed_delta": packed_b - packed_a})
    rows.sort(key=lambda r: (-abs(int(r["compressed_delta"])), str(r["name"])))  # type: ignore[call-overload]
    return rows


def human(n: float) -> str:
    """Bytes for people: 1.2 MB, 15.0 kB, 512 B (decimal units), signed when negative."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1000
    return f"{sign}{n:.1f} GB"
