"""The property table: its docs page is current, its rows are consistent, create's defaults
and clamps come from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveforge.vm import defaults
from liveforge.vm.properties import ACTIONS, BRANDS, BY_NAME, TABLE, TYPES, markdown
from liveforge.vm.validate import VALIDATORS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "vmadm-properties.md"


def test_the_docs_page_is_generated_from_the_table() -> None:
    assert DOCS.read_text() == markdown(), \
        "regenerate: python -m liveforge.vm.properties > docs/vmadm-properties.md"
    assert "| `nics.*.mtu` | integer | bhyve/joyent/joyent-minimal/kvm/lx: A,U |" in markdown()


def test_every_row_is_consistent() -> None:
    assert len(BY_NAME) == len(TABLE) == 158
    for p in TABLE:
        assert p.type in TYPES, p.name
        assert set(p.allowed) <= set(BRANDS) and p.allowed, p.name
        assert all(set(a) <= set(ACTIONS) for a in p.allowed.values()), p.name
        assert p.validator is None or p.validator in VALIDATORS, p.name
        assert p.adjust is None or p.adjust in defaults.ADJUST, p.name
        assert p.check_as is None or BY_NAME[p.check_as].type == "object-array", p.name
        if ".*." in p.name:
            assert BY_NAME[p.name.split(".*.")[0]].type == "object-array", p.name


@pytest.mark.parametrize("brand,ram,mpm,swap,quota", [
    ("joyent", 256, 256, 256, 10), ("lx", 256, 256, 256, 10),
    ("kvm", 256, 1280, 1280, 10), ("bhyve", 256, 1536, 1536, 1)])
def test_create_defaults_per_brand(brand: str, ram: int, mpm: int, swap: int,
                                   quota: int) -> None:
    vm = defaults.apply({"brand": brand}, brand)
    assert (vm["ram"], vm["max_physical_memory"], vm["max_swap"], vm["quota"]) == (
        ram, mpm, swap, quota)
    assert vm["max_locked_memory"] == mpm and vm["zonename"] == vm["uuid"]
    assert vm["autoboot"] is True and vm["max_lwps"] == 2000 and vm["cpu_shares"] == 100
    assert vm["owner_uuid"] == "00000000-0000-0000-0000-000000000000"
    assert ("tmpfs" in vm) == (brand in ("joyent", "lx"))
    assert ("vcpus" in vm) == ("boot" in vm) == (brand in ("kvm", "bhyve"))
    assert vm.get("cpu_type") == ("qemu64" if brand == "kvm" else None)
    assert vm.get("bootrom") == ("bios" if brand == "bhyve" else None)


def test_clamps_and_what_the_payload_says_wins() -> None:
    vm = defaults.apply({"brand": "joyent", "max_physical_memory": 1024, "max_swap": 100,
                         "max_locked_memory": 4096, "cpu_shares": 100000, "tmpfs": 0,
                         "autoboot": False}, "joyent")
    assert (vm["ram"], vm["max_swap"], vm["max_locked_memory"], vm["cpu_shares"]) == (
        1024, 1024, 1024, 65535)
    assert vm["tmpfs"] == 0 and vm["autoboot"] is False


def test_nics_get_macs_names_and_exactly_one_primary() -> None:
    vm = defaults.apply({"brand": "kvm", "nics": [{"nic_tag": "a"}, {"nic_tag": "b",
                                                                      "mac": "02:00:00:00:00:09"}]},
                        "kvm")
    first, second = vm["nics"]
    assert first["primary"] is True and second["primary"] is False
    assert (first["interface"], second["interface"]) == ("net0", "net1")
    assert second["mac"] == "02:00:00:00:00:09" and first["mac"].startswith("02:08:20:")
    assert first["model"] == "virtio"
