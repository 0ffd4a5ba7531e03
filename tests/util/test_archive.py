"""util.archive: every compression writes deterministic bytes that read back by magic."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from liveforge.util.archive import (
    COMPRESSIONS,
    compression_of,
    open_decompressed,
    open_sink,
    sink_outputs,
    tar_end,
    tar_header,
    tar_pad,
)

TOOLS = {"gzip": ["gzip", "-dc"], "bzip2": ["bzip2", "-dc"], "xz": ["xz", "-dc"],
         "zstd": ["zstd", "-dcq"], "none": ["cat"]}


def write(path: Path, compression: str, payload: bytes) -> None:
    with sink_outputs() as outputs:
        sink = open_sink(path, compression, None, outputs)
        sink.write(tar_header("dir", "d", 0o755, 0, 0, 0, 1000))
        sink.write(tar_header("dir/file", "f", 0o644, 0, 0, len(payload), 1000))
        sink.write(payload)
        sink.write(tar_pad(len(payload)))
        tar_end(sink)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_each_compression_is_deterministic_and_readable(compression: str,
                                                        tmp_path: Path) -> None:
    payload = os.urandom(100_000) + bytes(2_000_000)  # past one 1 MiB chunk
    write(tmp_path / "one", compression, payload)
    write(tmp_path / "two", compression, payload)
    data = (tmp_path / "one").read_bytes()
    assert data == (tmp_path / "two").read_bytes()
    assert compression_of(data[:6]) == compression
    with open_decompressed(tmp_path / "one") as raw:
        plain = raw.read()
    # the system's own decompressor and tar agree
    assert subprocess.run([*TOOLS[compression], str(tmp_path / "one")], capture_output=True,
                          check=True).stdout == plain
    listing = subprocess.run(["tar", "-tvf", "-"], input=plain, capture_output=True,
                             check=True).stdout.decode()
    assert "dir/file" in listing and str(len(payload)) in listing
    assert len(plain) % 10240 == 0


def test_a_corrupt_stream_fails_while_read(tmp_path: Path) -> None:
    write(tmp_path / "x", "zstd", b"data" * 100_000)
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="zstd"), open_decompressed(tmp_path / "x") as raw:
        while raw.read(65536):
            pass
