"""The overlay's driver registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveforge.build.image.overlay import add_driver
from liveforge.util.errors import InputError


def test_creates_files_and_numbers_from_one(tmp_path: Path) -> None:
    assert add_driver(tmp_path, "vioblk", ["pci1af4,1001", "pci1af4,1042"]) == 1
    assert (tmp_path / "etc/name_to_major").read_text() == "vioblk 1\n"
    assert (tmp_path / "etc/driver_aliases").read_text() == \
        'vioblk "pci1af4,1001"\nvioblk "pci1af4,1042"\n'
    assert add_driver(tmp_path, "null", []) == 2
    assert (tmp_path / "etc/driver_aliases").read_text().count("\n") == 2


def test_next_major_is_largest_plus_one(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/name_to_major").write_text("# comment\nmm 13\nsd 91\nzfs 7\n")
    assert add_driver(tmp_path, "vioif", ["pci1af4,1000"]) == 92
    assert (tmp_path / "etc/name_to_major").read_text().endswith("zfs 7\nvioif 92\n")


def test_present_driver_and_bound_alias_are_refused(tmp_path: Path) -> None:
    add_driver(tmp_path, "e1000g", ["pci8086,100e"])
    with pytest.raises(InputError, match="driver 'e1000g' is already present"):
        add_driver(tmp_path, "e1000g", ["pci8086,100f"])
    with pytest.raises(InputError, match="alias 'pci8086,100e' already belongs to driver"):
        add_driver(tmp_path, "igb", ["pci8086,100e"])
    with pytest.raises(InputError, match="invalid alias"):
        add_driver(tmp_path, "igb", ['bad"alias'])
    assert (tmp_path / "etc/name_to_major").read_text() == "e1000g 1\n"


@pytest.mark.parametrize("name", ["etc/name_to_major", "etc/driver_aliases"])
def test_non_utf8_registry_names_its_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / name).write_bytes(b'# registry\nsd 91 # \xff\n')
    with pytest.raises(InputError) as info:
        add_driver(tmp_path, "vioif", [])
    assert str(info.value) == f"{tmp_path / name}:2: not UTF-8 text (byte 0xff in column 9)"


@pytest.mark.parametrize("major", ["²", "١٢"])
def test_a_major_in_digits_that_are_not_ascii_names_its_line(tmp_path: Path, major: str) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/name_to_major").write_text(f"sd 91\nzfs {major}\n")
    with pytest.raises(InputError) as info:
        add_driver(tmp_path, "vioif", [])
    assert str(info.value) == \
        f"{tmp_path}/etc/name_to_major:2: expected 'NAME MAJOR', got 'zfs {major}'"
