"""Container NICs: veth pairs on the nic tag's bridge, addresses, gateways, MTU, MAC; two
containers on one bridge reach each other on their configured addresses, and nothing else."""

from __future__ import annotations

import subprocess

from liveforge.vm import net
from tests.vm.conftest import zlogin


def test_two_containers_on_one_bridge_reach_each_other(vms, vm_env, capsys):
    a = vms.create(nics=[{"nic_tag": "test", "ips": ["10.77.0.1/24"], "mtu": 1400,
                          "mac": "02:00:00:77:00:01", "gateways": ["10.77.0.254"]}])
    b = vms.create(nics=[{"nic_tag": "test", "ips": ["10.77.0.2/24"], "mtu": 1400}])
    bridge = vm_env["bridge"]
    assert (net.SYS_NET / bridge / "bridge").is_dir()  # created: the tag file names it
    ends = net.host_ends(a["uuid"]) + net.host_ends(b["uuid"])
    assert len(ends) == 2
    for end in ends:
        assert (net.SYS_NET / end / "master").resolve().name == bridge
        assert (net.SYS_NET / end / "mtu").read_text().strip() == "1400"
    ping = zlogin(a, "ping -c 1 -W 5 10.77.0.2")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 packets received" in ping.stdout
    assert zlogin(b, "ping -c 1 -W 5 10.77.0.1").returncode == 0
    shown = zlogin(a, "ip -o addr show net0; ip link show net0; ip route").stdout
    assert "inet 10.77.0.1/24" in shown and "mtu 1400" in shown
    assert "link/ether 02:00:00:77:00:01" in shown
    assert "default via 10.77.0.254 dev net0" in shown
    # the host is not on that network: the bridge has no address
    host = subprocess.run(["busybox", "ping", "-c", "1", "-W", "1", "10.77.0.1"],
                          capture_output=True)
    assert host.returncode != 0


def test_containers_on_different_bridges_do_not_reach_each_other(vms):
    a = vms.create(nics=[{"nic_tag": "test", "ips": ["10.78.0.1/24"]}])
    vms.create(nics=[{"nic_tag": "other", "ips": ["10.78.0.2/24"]}])
    assert zlogin(a, "ping -c 1 -W 1 10.78.0.2").returncode != 0


def test_a_container_without_nics_has_only_loopback(vms):
    vm = vms.create()
    out = zlogin(vm, "ls /sys/class/net; ping -c 1 -W 2 127.0.0.1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "lo" and "1 packets received" in out.stdout


def test_dhcp_and_an_unfiltered_vlan_are_warnings(vms, capsys):
    vms.create(nics=[{"nic_tag": "test", "ips": ["dhcp"], "vlan_id": 12}])
    err = capsys.readouterr().err
    assert "nics.0.ips: dhcp is not supported by containers" in err
    assert "nics.0.vlan_id: bridge" in err and "vlan_id 12 is not enforced" in err


def test_a_bad_address_fails_the_start_and_leaves_nothing(vms):
    vm = vms.create(start=False, nics=[{"nic_tag": "test", "ips": ["10.80.0.300/24"]}])
    try:
        vms.rt.start(vm, vms.vmdir(vm))
    except Exception as exc:  # noqa: BLE001 - the message is what is checked
        assert "ip:" in str(exc) and "10.80.0.300" in str(exc), exc
    else:
        raise AssertionError("a start with an invalid address succeeded")
    assert vms.rt.state(vm, vms.vmdir(vm)) == "failed"
    assert net.host_ends(vm["uuid"]) == []
