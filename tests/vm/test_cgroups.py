"""The limit properties as cgroup files. This machine's controllers are v1 (the container tests
check those for real); v2's files are checked here in a directory laid out as a v2 hierarchy,
since no v2 memory, pids or cpu controller can be enabled beside v1's."""

from __future__ import annotations

from pathlib import Path

from liveforge.vm import cgroups


def v2(tmp_path: Path, uuid: str = "u1") -> cgroups.Cgroup:
    parent = tmp_path / "vmadm"
    (parent / uuid).mkdir(parents=True)
    for name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "cpu.weight"):
        (parent / uuid / name).write_text("")
    return cgroups.Cgroup(uuid, (2, {c: parent for c in cgroups.CONTROLLERS}))


def read(cg: cgroups.Cgroup, name: str) -> str:
    return (cg.paths()[0] / name).read_text()


def test_v2_files(tmp_path):
    cg = v2(tmp_path)
    assert cg.paths() == [tmp_path / "vmadm" / "u1"]  # one directory for every controller
    warnings = cg.apply(cgroups.Limits(memory=256, swap=1024, lwps=100, cpu_cap=150,
                                       cpu_shares=50_000))
    assert warnings == []
    assert read(cg, "memory.max") == str(256 << 20)
    assert read(cg, "memory.swap.max") == str(768 << 20)  # max_swap counts RAM too
    assert read(cg, "pids.max") == "100"
    assert read(cg, "cpu.max") == "150000 100000"  # 1.5 CPUs
    assert read(cg, "cpu.weight") == "10000"  # clamped to v2's range
    cg.apply(cgroups.Limits(cpu_cap=0, lwps=0, cpu_shares=0))
    assert read(cg, "cpu.max") == "max 100000"
    assert read(cg, "pids.max") == "max"
    assert read(cg, "cpu.weight") == "1"


def test_v2_without_swap_accounting_warns(tmp_path):
    cg = v2(tmp_path)
    (cg.paths()[0] / "memory.swap.max").unlink()
    warnings = cg.apply(cgroups.Limits(memory=128, swap=256))
    assert warnings == ["no memory.swap.max (swap accounting off): max_swap is not enforced"]
    assert read(cg, "memory.max") == str(128 << 20)


def test_a_missing_controller_is_a_warning(tmp_path):
    parent = tmp_path / "vmadm"
    (parent / "u2").mkdir(parents=True)
    (parent / "u2" / "pids.max").write_text("")
    cg = cgroups.Cgroup("u2", (1, {"pids": parent}))
    warnings = cg.apply(cgroups.Limits(memory=64, lwps=10, cpu_cap=50))
    assert warnings == ["no memory cgroup controller mounted: memory limits are not enforced",
                        "no cpu cgroup controller mounted: cpu limits are not enforced"]
    assert read(cg, "pids.max") == "10"


def test_this_machines_hierarchies_are_found():
    version, parents = cgroups.hierarchies()
    assert set(parents) == set(cgroups.CONTROLLERS)
    for controller, parent in parents.items():
        assert parent.name == "vmadm" and parent.parent.is_dir(), controller
