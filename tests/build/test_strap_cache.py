"""The strap cache's entries: each appears whole under one rename, and a corrupt one is found."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from liveforge.build.kinds.extra import strap as extra_strap

KEY = "0" * 64


def staging(tmp_path: Path, text: str = "strap tool\n") -> Path:
    stage = tmp_path / "stage"
    (stage / "usr/bin").mkdir(parents=True)
    (stage / "usr/bin/tool").write_text(text)
    return stage


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "strap").iterdir() if not p.name.startswith("."))


def test_a_reader_never_sees_half_an_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """A reader runs after each rename the writer makes (the moments another process could
    look): it finds no entry or a whole one, never one it takes for corrupt and deletes."""
    cache, stage = tmp_path / "cache", staging(tmp_path)
    notes: list[str] = []
    found: list[bool] = []
    reading = False

    def reader() -> None:
        nonlocal reading
        if reading:
            return
        reading = True
        try:
            dest = tmp_path / f"reader{len(found)}"
            found.append(extra_strap.restore(cache, KEY, dest, tmp_path / "work", notes.append))
            if found[-1]:
                assert (dest / "usr/bin/tool").read_text() == "strap tool\n"
        finally:
            reading = False

    for name in ("replace", "rename"):
        real = getattr(os, name)

        def publish(src, dst, *args, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            _real(src, dst, *args, **kwargs)
            reader()

        monkeypatch.setattr(os, name, publish)
    extra_strap.store(cache, KEY, [stage], notes.append)
    monkeypatch.undo()
    assert found, "the writer renamed nothing"
    assert not [n for n in notes if "corrupt" in n or "unusable" in n], notes
    assert found[-1] is True
    dest = tmp_path / "after"
    assert extra_strap.restore(cache, KEY, dest, tmp_path / "work", notes.append)
    assert (dest / "usr/bin/tool").read_text() == "strap tool\n"


def test_a_corrupt_entry_is_detected_and_deleted(tmp_path: Path) -> None:
    cache, stage = tmp_path / "cache", staging(tmp_path)
    notes: list[str] = []
    extra_strap.store(cache, KEY, [stage], notes.append)
    [entry] = entries(cache)
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert not extra_strap.restore(cache, KEY, tmp_path / "dest", tmp_path / "work",
                                   notes.append)
    assert any("is corrupt" in n for n in notes), notes
    assert entries(cache) == []
    # the rebuild stores it again, and it is good
    extra_strap.store(cache, KEY, [stage], notes.append)
    assert extra_strap.restore(cache, KEY, tmp_path / "dest", tmp_path / "work", notes.append)
    assert (tmp_path / "dest/usr/bin/tool").read_text() == "strap tool\n"


def test_a_killed_writers_temporary_is_removed_by_the_next_store(tmp_path: Path) -> None:
    cache, stage = tmp_path / "cache", staging(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (cache / "strap").mkdir(parents=True)
    partial = cache / "strap" / f".{KEY}.tar.gz.lf-tmp-{dead.pid}"
    partial.write_bytes(b"half an entry")
    notes: list[str] = []
    assert not extra_strap.restore(cache, KEY, tmp_path / "dest", tmp_path / "work",
                                   notes.append)
    assert partial.exists() and not any("corrupt" in n for n in notes)
    extra_strap.store(cache, KEY, [stage], notes.append)
    assert not partial.exists()
    assert [p.name for p in (cache / "strap").iterdir() if p.name.startswith(".")] == []


def test_an_entry_keeps_links_and_modes_and_later_stages_win(tmp_path: Path) -> None:
    """Entries are written by the image archive writer: symlinks, hard links and modes come
    back as they were staged; of two stages, the later one's file is restored."""
    cache, stage = tmp_path / "cache", staging(tmp_path)
    (stage / "usr/bin/tool").chmod(0o755)
    (stage / "usr/bin/link").symlink_to("tool")
    os.link(stage / "usr/bin/tool", stage / "usr/bin/hard")
    later = tmp_path / "later"
    (later / "usr/bin").mkdir(parents=True)
    (later / "usr/bin/other").write_text("later\n")
    (later / "usr/bin/hard").write_text("replaced\n")
    notes: list[str] = []
    extra_strap.store(cache, KEY, [stage, later], notes.append)
    dest = tmp_path / "dest"
    assert extra_strap.restore(cache, KEY, dest, tmp_path / "work", notes.append)
    assert os.readlink(dest / "usr/bin/link") == "tool"
    assert (dest / "usr/bin/tool").read_text() == "strap tool\n"
    assert (dest / "usr/bin/tool").stat().st_mode & 0o777 == 0o755
    assert (dest / "usr/bin/hard").read_text() == "replaced\n"
    assert (dest / "usr/bin/other").read_text() == "later\n"
