"""Container VM times: create→running and stop→stopped, against ``unshare … chroot`` of the same
root in the same run.

A busybox image (one layer) is installed in a temporary image store (IMGADM_ROOT). Each run, taking
turns with the baseline so both see the same machine load:

* create→running: ``vmadm create`` of a payload (validation, defaults, the VM's directory,
  the image held, its storage: overlay view and a 1 GiB quota file system, start:
  namespaces, cgroup limits, one veth NIC on a bridge, pivot_root, the image's init running)
  until it exits (goal: <= 300 ms);
* the same two steps called in-process (what the runtime itself costs, without the
  interpreter's start);
* stop→stopped: ``vmadm stop``: SIGTERM to busybox init, which shuts down its way (it sleeps
  about 2 s between its SIGTERM and SIGKILL to all), and ``vmadm stop -F`` (SIGKILL);
* the baseline: ``unshare --mount --pid --fork --uts --ipc --net --cgroup chroot ROOT
  /bin/true`` (no overlay, no cgroup, no network, no init: a lower bound).

liveforge's modules are byte-compiled first, as an install does. Needs root.

    python bench/vm.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from tests.support.containers import busybox_root, install_image  # noqa: E402

IMAGE = "0b1e5a1e-0000-4000-8000-00000000be9c"


def timed(argv: list[str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, input=stdin)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{argv[:3]} failed: {proc.stderr[-2000:]}")
    return took


def payload(bridge_ip: int) -> dict[str, object]:
    return {"uuid": str(uuidlib.uuid4()), "brand": "joyent", "image_uuid": IMAGE,
            "quota": 1, "max_physical_memory": 256, "max_lwps": 2000,
            "cpu_cap": 100, "resolvers": ["192.0.2.1"], "customer_metadata": {"k": "v"},
            "nics": [{"nic_tag": "bench", "ips": [f"10.123.0.{bridge_ip}/24"]}]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/vm.py needs root (namespaces, mounts, cgroups)")
    import liveforge
    from liveforge.vm.brands.container import ContainerRuntime

    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(liveforge.__file__).parent)], check=True)
    vmadm = [str(Path(sys.executable).parent / "vmadm")]
    bridge = f"lfbench{os.getpid() % 10000}"
    samples: dict[str, list[float]] = {k: [] for k in (
        "create", "stop", "stop_force", "lib_create", "lib_stop_force", "unshare", "python")}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = busybox_root(base / "tree")
        install_image(base / "img", root, IMAGE, base / "files")
        (base / "zones").mkdir()
        (base / "nictags.json").write_text(json.dumps({"bench": bridge}))
        os.environ.update(IMGADM_ROOT=str(base / "img"), VMADM_ROOT=str(base / "zones"),
                          VMADM_NICTAGS=str(base / "nictags.json"))
        rt = ContainerRuntime()
        made = []
        try:
            for i in range(args.runs):
                for how in ("stop", "stop_force"):
                    vm = payload(2 + i % 200)
                    vmdir = base / "zones" / str(vm["uuid"])
                    made.append((vm, vmdir))
                    samples["create"].append(timed(vmadm + ["create"], json.dumps(vm)))
                    if rt.state(vm, vmdir) != "running":
                        sys.exit(f"VM {vm['uuid']} is not running after create")
                    samples[how].append(timed(vmadm + ["stop", str(vm["uuid"])]
                                              + (["-F"] if how == "stop_force" else [])))
                    if rt.state(vm, vmdir) != "stopped":
                        sys.exit(f"VM {vm['uuid']} is not stopped after stop")
                    timed(vmadm + ["delete", str(vm["uuid"])])
                vm = payload(2 + i % 200)
                vmdir = base / "zones" / str(vm["uuid"])
                made.append((vm, vmdir))
                vmdir.mkdir()
                start = time.perf_counter()
                rt.install(vm, vmdir)
                rt.start(vm, vmdir)
                samples["lib_create"].append(time.perf_counter() - start)
                start = time.perf_counter()
                rt.stop(vm, vmdir, 30, True)
                samples["lib_stop_force"].append(time.perf_counter() - start)
                rt.destroy(vm, vmdir)
                samples["python"].append(timed([sys.executable, "-c", "pass"]))
                samples["unshare"].append(timed(
                    ["unshare", "--mount", "--pid", "--fork", "--uts", "--ipc", "--net",
                     "--cgroup", "chroot", str(root), "/bin/true"]))
        finally:
            for vm, vmdir in made:
                if (vmdir / "config.json").exists():
                    subprocess.run(vmadm + ["delete", str(vm["uuid"])], capture_output=True)
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    n = len(samples["create"])
    print(f"create->running (vmadm create):                 {med['create']:.1f} ms "
          f"(median of {n}; goal <= 300 ms)")
    print(f"create->running (in-process runtime calls):     {med['lib_create']:.1f} ms "
          f"(median of {args.runs})")
    print(f"unshare ... chroot ROOT /bin/true:               {med['unshare']:.1f} ms "
          f"(median of {args.runs})")
    print(f"stop->stopped (vmadm stop, busybox init's own): {med['stop']:.1f} ms "
          f"(median of {args.runs})")
    print(f"stop->stopped (vmadm stop -F, SIGKILL):         {med['stop_force']:.1f} ms "
          f"(median of {args.runs})")
    print(f"stop->stopped (forced, in-process):              {med['lib_stop_force']:.1f} ms "
          f"(median of {args.runs})")
    print(f"python -c pass:                                 {med['python']:.1f} ms "
          "(the interpreter's start alone)")
    print(f"ratio create->running / unshare+chroot: {med['create'] / med['unshare']:.1f}")


if __name__ == "__main__":
    main()
