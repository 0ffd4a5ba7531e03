"""A container VM's life: start, what zlogin sees inside (host name, resolvers, metadata, /tmp,
exit statuses), live updates, the quota, stop, a VM outliving the process that started it,
destroy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from liveforge.vm import cgroups
from liveforge.vm.brands.pidfile import init_pid
from tests.vm.conftest import zlogin


def test_inside_a_running_container(vms):
    vm = vms.create(hostname="web01", alias="ignored", resolvers=["192.0.2.1", "192.0.2.2"],
                    tmpfs=16, customer_metadata={"user-script": "echo 'hi there'",
                                                 "sdc:weird key/..": "v", "n": 5,
                                                 "na\u00efve\nkey": "\u00fcml\u00e4ut"})
    assert vms.rt.state(vm, vms.vmdir(vm)) == "running"
    out = zlogin(vm, "hostname; cat /etc/resolv.conf; mdata-get user-script;",
                 "mdata-get 'sdc:weird key/..'; mdata-get n; df -k /tmp | tail -1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:6] == ["web01", "nameserver 192.0.2.1", "nameserver 192.0.2.2",
                         "echo 'hi there'", "v", "5"]
    assert lines[6].split()[1] == "16384"  # /tmp: a tmpfs of `tmpfs` MiB
    odd = subprocess.run([sys.executable, "-m", "liveforge.vm.zlogin", vm["uuid"],
                          "mdata-get \"$(printf 'na\\303\\257ve\\nkey')\""],
                         capture_output=True, text=True)
    assert odd.stdout == "\u00fcml\u00e4ut\n", odd.stderr
    missing = zlogin(vm, "mdata-get nope")
    assert missing.returncode == 1 and missing.stderr == "No metadata for 'nope'\n"
    assert zlogin(vm, "exit 7").returncode == 7
    assert zlogin(vm, "kill -9 $$").returncode == 128 + 9
    inside = zlogin(vm, "cat /proc/self/cgroup; ls /dev | tr '\\n' ' '; readlink /proc/1/exe")
    assert "memory:/\n" in inside.stdout  # its own cgroup is its root
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm"):
        assert dev in inside.stdout.split()
    assert inside.stdout.rstrip().endswith("/bin/busybox")  # PID 1 is the image's init


def test_the_host_name_falls_back_to_the_alias_then_the_uuid(vms):
    by_alias = vms.create(alias="db")
    by_uuid = vms.create()
    assert zlogin(by_alias, "hostname").stdout == "db\n"
    assert zlogin(by_uuid, "hostname").stdout == by_uuid["uuid"] + "\n"


def test_limits_apply_and_update_live(vms):
    vm = vms.create(max_physical_memory=64, max_swap=128, cpu_cap=50, cpu_shares=300,
                    max_lwps=500)
    cg = cgroups.Cgroup(vm["uuid"])
    mem, cpu = cg.dirs["memory"], cg.dirs["cpu"]
    if cg.version == 1:
        assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == 50_000
        assert int((cpu / "cpu.shares").read_text()) == 300
    else:
        assert int((mem / "memory.max").read_text()) == 64 << 20
        assert (cpu / "cpu.max").read_text().split() == ["50000", "100000"]
    vms.rt.update(vm, vms.vmdir(vm), {"max_physical_memory": 32, "cpu_cap": 0})
    if cg.version == 1:
        assert int((mem / "memory.limit_in_bytes").read_text()) == 32 << 20
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == -1
    else:
        assert int((mem / "memory.max").read_text()) == 32 << 20
        assert (cpu / "cpu.max").read_text().split()[0] == "max"
    vms.rt.update(vm, vms.vmdir(vm), {"customer_metadata": {"k": "new"}})
    assert zlogin(vm, "mdata-get k").stdout == "new\n"


def test_the_quota_is_a_size_limit(vms):
    vm = vms.create(quota=1)
    vmdir = vms.vmdir(vm)
    assert (vmdir / "disk.img").stat().st_size == 1 << 30
    assert (vmdir / "disk.img").stat().st_blocks * 512 < 64 << 20  # sparse
    full = zlogin(vm, "dd if=/dev/zero of=/big bs=1M count=1100 2>&1; sync")
    assert "No space left on device" in full.stdout
    size = (vmdir / "disk" / "upper" / "big").stat().st_size
    assert (900 << 20) < size < (1 << 30)
    vms.rt.update(vm, vmdir, {"quota": 2})  # online, or at the next start (a warning)
    if (vmdir / "disk.resize").exists():
        vms.rt.stop(vm, vmdir, 30, True)
        vms.rt.start(vm, vmdir)
    assert (vmdir / "disk.img").stat().st_size == 2 << 30
    more = zlogin(vm, "dd if=/dev/zero of=/big2 bs=1M count=300 2>&1")
    assert more.returncode == 0, more.stdout
    zlogin(vm, "rm -f /big /big2")


def test_stop_and_start_again(vms):
    vm = vms.create()
    vmdir = vms.vmdir(vm)
    zlogin(vm, "echo kept > /root/file")
    start = time.monotonic()
    vms.rt.stop(vm, vmdir, 30, False)
    assert time.monotonic() - start < 10  # busybox init shut down on SIGTERM, not SIGKILL
    assert vms.rt.state(vm, vmdir) == "stopped"
    assert not any(p.exists() for p in cgroups.Cgroup(vm["uuid"]).paths())
    assert "The system is going down" in (vmdir / "run" / "console.log").read_text()
    vms.rt.stop(vm, vmdir, 30, False)  # stopping a stopped VM: nothing to do
    vms.rt.start(vm, vmdir)
    assert zlogin(vm, "cat /root/file").stdout == "kept\n"
    vms.rt.stop(vm, vmdir, 30, True)  # force: SIGKILL at once
    assert vms.rt.state(vm, vmdir) == "stopped"


def test_a_stop_that_times_out_kills(vms):
    vm = vms.create()
    zlogin(vm, "true")
    vms.rt.kill(vm, vms.vmdir(vm), 19)  # SIGSTOP: the init cannot act on SIGTERM
    start = time.monotonic()
    vms.rt.stop(vm, vms.vmdir(vm), 0.5, False)
    assert 0.4 < time.monotonic() - start < 5
    assert vms.rt.state(vm, vms.vmdir(vm)) == "stopped"


def test_the_vm_outlives_the_process_that_started_it(vms):
    vm = vms.create(start=False)
    code = ("import json, sys; from pathlib import Path; "
            "from liveforge.vm.brands.container import ContainerRuntime; "
            "vm = json.loads(sys.argv[1]); ContainerRuntime().start(vm, Path(sys.argv[2]))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(vm), str(vms.vmdir(vm))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid = init_pid(vms.vmdir(vm))
    assert pid is not None and os.getsid(pid) != os.getsid(0)
    assert zlogin(vm, "echo alive").stdout == "alive\n"


def test_destroy_leaves_nothing(vms):
    vm = vms.create(quota=1, nics=[{"nic_tag": "test", "ips": ["10.99.0.9/24"]}])
    vmdir = vms.vmdir(vm)
    vms.rt.destroy(vm, vmdir)
    assert sorted(os.listdir(vmdir)) == ["config.json"]
    assert not any(p.exists() for p in cgroups.Cgroup(vm["uuid"]).paths())
    with open("/proc/self/mountinfo") as handle:
        assert str(vmdir) not in handle.read()


def test_on_a_terminal_zlogin_gives_the_vm_a_terminal_of_its_own(vms):
    """The VM never holds the host's terminal: its command runs on a pseudo-terminal of the
    VM's devpts that zlogin relays (the host's could be typed into with TIOCSTI)."""
    import pty

    vm = vms.create(hostname="ttyvm")
    pid, master = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "liveforge.vm.zlogin", vm["uuid"],
                                  "tty; readlink /proc/self/fd/0; ls /dev/pts; hostname; "
                                  "exit 5"])
    output = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        output += data
    _, status = os.waitpid(pid, 0)
    os.close(master)
    lines = output.decode().replace("\r", "").splitlines()
    assert os.waitstatus_to_exitcode(status) == 5, output
    assert lines[0] == "/dev/pts/0" and lines[1] == "/dev/pts/0"
    assert lines[2].split() == ["0", "ptmx"] and lines[3] == "ttyvm"
