"""What a process in a container cannot do: see or signal the host's processes, write outside
its root, fork past max_lwps, use memory past max_physical_memory; and an init that dies or
never starts leaves a stopped VM with nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from liveforge.vm import cgroups
from liveforge.vm.brands.container import ContainerError
from liveforge.vm.brands.pidfile import init_pid
from tests.support.containers import busybox_root, install_image
from tests.vm.conftest import zlogin


def test_host_processes_are_invisible_and_unreachable(vms):
    vm = vms.create()
    out = zlogin(vm, "ps -o pid,comm; echo; ls /proc | grep '^[0-9]'")
    assert out.returncode == 0, out.stderr
    ps, proc = out.stdout.split("\n\n")
    pids = [int(line.split()[0]) for line in ps.splitlines()[1:]]
    assert 1 in pids and max(pids) < 100  # its own small pids only
    assert "python" not in ps and "pytest" not in ps
    assert max(int(p) for p in proc.split()) < 100
    me = os.getpid()
    killed = zlogin(vm, f"kill -9 {me}")
    assert killed.returncode != 0 and "No such process" in killed.stderr
    assert os.getpid() == me  # still here


def test_writes_outside_the_root_fail(vms, tmp_path):
    vm = vms.create()
    vmdir = vms.vmdir(vm)
    attempts = {
        "dotdot": "cd /; cd ../../../..; pwd; touch ../../escaped",
        "mount": "mkdir -p /mnt && mount -t tmpfs none /mnt",
        "mknod": "mknod /tmp/disk b 253 0",
        "sysfs": "echo 1 > /sys/kernel/mm/ksm/run",
        "procsys": "echo 3 > /proc/sys/vm/drop_caches",
        "metadata": "echo x > /.liveforge/metadata/x",
        "proc1root": f"touch /proc/1/root{tmp_path}/from-vm",
        "chroot-escape": "mkdir -p /e && chroot /e /bin/true",
    }
    results = {name: zlogin(vm, cmd) for name, cmd in attempts.items()}
    dotdot = results.pop("dotdot")
    assert dotdot.stdout.strip() == "/"
    assert not Path("/escaped").exists() and not Path("/../escaped").exists()
    assert (vmdir / "disk" / "upper" / "escaped").exists()  # it landed in the VM's own /
    for name in ("mount", "mknod", "sysfs", "procsys", "metadata"):
        assert results[name].returncode != 0, (name, results[name])
    assert not (tmp_path / "from-vm").exists()
    assert not (vms.vmdir(vm) / "run" / "metadata" / "x").exists()


def test_symlinked_dirs_in_the_image_cannot_send_writes_to_the_host(vms, vm_env, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    image = str(uuidlib.uuid4())
    tree = busybox_root(tmp_path / "tree")
    shutil.rmtree(tree / "etc")
    os.symlink(host, tree / "etc")  # absolute: a host path, if anything followed it outside
    shutil.rmtree(tree / "usr" / "sbin")
    os.symlink(host, tree / "usr" / "sbin")
    install_image(vm_env["imgroot"], tree, image, tmp_path / "files")
    vm = vms.create(start=False, image_uuid=image, resolvers=["192.0.2.53"])
    try:
        vms.rt.start(vm, vms.vmdir(vm))
    except ContainerError as exc:
        assert "File exists" in str(exc)
    else:
        out = zlogin(vm, "cat /etc/resolv.conf")
        assert "192.0.2.53" in out.stdout
    assert list(host.iterdir()) == []


def test_device_nodes_in_the_vms_root_open_nothing(vms):
    vm = vms.create()
    upper = vms.vmdir(vm) / "disk" / "upper"
    os.mknod(upper / "planted-zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    out = zlogin(vm, "head -c 1 /planted-zero | wc -c; head -c 1 /dev/zero | wc -c")
    assert "Permission denied" in out.stderr
    assert out.stdout.split() == ["0", "1"]  # /dev's own nodes work


def test_cpu_cap_throttles(vms):
    vm = vms.create(cpu_cap=10)
    zlogin(vm, "timeout 1 sh -c 'while :; do :; done'")
    cg = cgroups.Cgroup(vm["uuid"])
    stat_text = (cg.dirs["cpu"] / "cpu.stat").read_text()
    fields = dict(line.split() for line in stat_text.splitlines())
    assert int(fields["nr_throttled"]) > 0
    used = int(fields.get("usage_usec", 0)) / 1e6 if cg.version == 2 else None
    if used is not None:
        assert used < 0.3


def test_max_lwps_makes_fork_fail(vms):
    vm = vms.create(max_lwps=20)
    out = zlogin(vm, "i=0; while [ $i -lt 40 ]; do sleep 60 </dev/null >/dev/null 2>&1 & "
                     "i=$((i+1)); done")
    assert "can't fork" in out.stderr
    cg = cgroups.Cgroup(vm["uuid"])
    assert int((cg.dirs["pids"] / "pids.max").read_text()) == 20
    sleeps = [p for p in cg.pids() if Path(f"/proc/{p}/comm").read_text().strip() == "sleep"]
    assert 10 <= len(sleeps) < 20
    assert len(cg.pids()) <= 20
    for pid in sleeps:
        os.kill(pid, signal.SIGKILL)


def test_max_physical_memory_constrains(vms):
    vm = vms.create(max_physical_memory=32, max_swap=32)
    big = zlogin(vm, "dd if=/dev/zero of=/dev/null bs=96M count=1")
    assert big.returncode != 0  # killed by the OOM killer of its cgroup
    small = zlogin(vm, "dd if=/dev/zero of=/dev/null bs=1M count=96 2>&1")
    assert small.returncode == 0 and "96+0 records out" in small.stdout
    cg = cgroups.Cgroup(vm["uuid"])
    peak = cg.peak_memory()
    assert peak is not None and peak <= 32 << 20
    assert vms.rt.state(vm, vms.vmdir(vm)) == "running"  # the VM itself survives


def test_killed_init_is_a_stopped_vm(vms):
    vm = vms.create()
    pid = vms.pid(vm)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while vms.rt.state(vm, vms.vmdir(vm)) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert vms.rt.state(vm, vms.vmdir(vm)) == "stopped"
    out = zlogin(vm, "true")
    assert out.returncode == 1 and "login allowed only to running VMs" in out.stderr
    vms.rt.start(vm, vms.vmdir(vm))  # starts again over what the dead one left
    assert vms.rt.state(vm, vms.vmdir(vm)) == "running" and vms.pid(vm) != pid


def test_an_init_that_cannot_run_leaves_nothing(vms):
    vm = vms.create(start=False, init_name="/sbin/no-such-init")
    with pytest.raises(ContainerError, match=r"/sbin/no-such-init.*No such file"):
        vms.rt.start(vm, vms.vmdir(vm))
    assert vms.rt.state(vm, vms.vmdir(vm)) == "failed"  # until the next start or stop
    assert init_pid(vms.vmdir(vm)) is None
    assert not any(p.exists() for p in cgroups.Cgroup(vm["uuid"]).paths())


def test_an_unknown_nic_tag_fails_before_any_process(vms):
    vm = vms.create(start=False, nics=[{"nic_tag": "nope", "ips": ["10.0.0.1/24"]}])
    with pytest.raises(Exception, match=r"nics\.0\.nic_tag: 'nope' is not a nic tag"):
        vms.rt.start(vm, vms.vmdir(vm))
    assert vms.rt.state(vm, vms.vmdir(vm)) == "failed"
    assert not any(p.exists() for p in cgroups.Cgroup(vm["uuid"]).paths())


def test_zlogin_errors(vms):
    assert zlogin("not-a-uuid", "true").returncode == 2
    unknown = zlogin("00000000-0000-4000-8000-000000000000", "true")
    assert unknown.returncode == 1
    assert re.fullmatch(r"zlogin: VM 0{8}-0{4}-4000-8000-0{12} unknown\n", unknown.stderr)
    vm = vms.create(start=False)
    stopped = zlogin(vm, "true")
    assert stopped.returncode == 1 and f"({vm['uuid']} is 'stopped')" in stopped.stderr


START = ("import json, sys; from pathlib import Path; "
         "from liveforge.vm.brands.container import ContainerRuntime; "
         "vm = json.loads(sys.argv[1]); ContainerRuntime().start(vm, Path(sys.argv[2]))")


def test_a_start_killed_midway_leaves_no_process(vms):
    vm = vms.create(start=False)
    vmdir = vms.vmdir(vm)
    for delay in (0.05, 0.1, 0.15, 0.2, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", START, json.dumps(vm), str(vmdir)])
        time.sleep(delay)
        proc.kill()
        proc.wait()
        time.sleep(0.2)
        pid = init_pid(vmdir)
        cg = cgroups.Cgroup(vm["uuid"])
        if pid is None:  # killed before its init ran: the init's PID 1 gave up
            assert cg.pids() == [], delay
        else:
            assert vms.rt.state(vm, vmdir) == "running"
            vms.rt.stop(vm, vmdir, 0, True)
        vms.rt.start(vm, vmdir)  # and a start afterwards works
        assert zlogin(vm, "echo ok").stdout == "ok\n"
        vms.rt.stop(vm, vmdir, 0, True)


def test_two_starts_at_once_make_one_vm(vms):
    vm = vms.create(start=False)
    vmdir = vms.vmdir(vm)
    procs = [subprocess.Popen([sys.executable, "-c", START, json.dumps(vm), str(vmdir)],
                              stderr=subprocess.PIPE) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    assert len(cgroups.Cgroup(vm["uuid"]).pids()) == 1  # one init, nothing else


def test_the_vm_inherits_no_open_file_of_vmadm(vms, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    fds = [os.open(secret, os.O_RDONLY) for _ in range(3)]  # inheritable, like a careless caller
    for fd in fds:
        os.set_inheritable(fd, True)
    high = os.dup2(fds[0], 1500)
    try:
        vm = vms.create()
    finally:
        for fd in [*fds, high]:
            os.close(fd)
    out = zlogin(vm, "ls /proc/1/fd | tr '\\n' ' '")
    assert sorted(int(n) for n in out.stdout.split()) == [0, 1, 2]
