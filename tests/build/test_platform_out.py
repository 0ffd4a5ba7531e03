"""Platform outputs: the layout of README "Outputs", atomic replacement, crash safety, gitstatus."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liveforge.build.buildstamp import stamp_epoch
from liveforge.build.image.archive import read_cpio, read_tar
from liveforge.build.image.assemble import resolve
from liveforge.build.image.lint import diff, format_diff
from liveforge.build.image.manifest import combine
from liveforge.build.image.platform import gitstatus, write_platform
from liveforge.util.errors import InputError
from tests.support.manifests import generate, write_proto

STAMP = "20240102T030405Z"

BUILD = """
import sys
from pathlib import Path
from liveforge.build.image.assemble import resolve
from liveforge.build.image.manifest import combine
from liveforge.build.image.platform import write_platform
root, stamp = Path(sys.argv[1]), sys.argv[2]
manifest = combine([root / "manifest"], {}, False, lambda _: None)
image = resolve(manifest, [root / "proto"])
print("ready", flush=True)
write_platform(root / "output", "platform-" + stamp, image, stamp=stamp,
               kernel_path="boot/vmlinuz", gitstatus=[], compression="gzip",
               arch="x86_64")
"""


def workspace(root: Path, entries: int = 600, big: int = 0) -> Path:
    generated = generate(entries, seed=9, big_every=big, big_size=2 << 20)
    write_proto(generated, root / "proto")
    (root / "manifest").write_text("\n".join(generated.lines) + "\n")
    return root


def platform(root: Path, stamp: str = STAMP, compression: str = "gzip",
             root_tarball: bool = False) -> Path:
    manifest = combine([root / "manifest"], {}, False, lambda _: None)
    image = resolve(manifest, [root / "proto"])
    status = [{"repo": "r", "branch": "main", "rev": "abc", "commit_date": "d", "url": "u"}]
    return write_platform(root / "output", f"platform-{stamp}", image, stamp=stamp,
                          kernel_path="boot/vmlinuz", gitstatus=status, compression=compression,
                          arch="x86_64", root_tarball=root_tarball)


def directory_listing(directory: Path) -> dict[str, tuple[str, str]]:
    """What a tarball of ``directory`` must hold: path (under the directory's name) -> kind and
    content digest."""
    name = directory.name
    listing = {name: ("d", "")}
    for path in sorted(directory.rglob("*")):
        rel = f"{name}/{path.relative_to(directory).as_posix()}"
        assert path.is_dir() or path.is_file(), path
        listing[rel] = ("d", "") if path.is_dir() else \
            ("f", hashlib.sha256(path.read_bytes()).hexdigest())
    return listing


def test_layout(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    final = platform(root)
    out = root / "output"
    name = f"platform-{STAMP}"
    assert final == out / name
    assert sorted(p.name for p in out.iterdir()) == sorted([
        name, f"{name}.tgz", "platform-latest", "platform-latest.tgz", f".{name}",
        os.readlink(out / f".{name}")])
    # the one link a rebuild switches leads to the generation, which holds the pair
    generation = out / os.readlink(out / f".{name}")
    assert re.fullmatch(rf"\.{name}@[0-9a-f]+", generation.name)
    assert sorted(os.listdir(generation)) == [name, f"{name}.tgz"]
    assert os.readlink(out / name) == f".{name}/{name}"
    assert os.readlink(out / f"{name}.tgz") == f".{name}/{name}.tgz"
    assert sorted(str(p.relative_to(final)) for p in final.rglob("*")) == [
        "etc", "etc/version", "etc/version/platform", "x86_64",
        *(f"x86_64/{n}" for n in ("boot_archive", "boot_archive.gitstatus", "boot_archive.hash",
                                  "boot_archive.manifest", "vmlinuz"))]
    arch = final / "x86_64"
    assert os.readlink(out / "platform-latest") == f"platform-{STAMP}"
    assert os.readlink(out / "platform-latest.tgz") == f"platform-{STAMP}.tgz"
    assert (final / "etc/version/platform").read_text() == STAMP + "\n"
    assert (arch / "vmlinuz").read_bytes() == (root / "proto/boot/vmlinuz").read_bytes()
    assert (arch / "boot_archive.hash").read_text().strip() == \
        hashlib.sha1((arch / "boot_archive").read_bytes()).hexdigest()
    lines = (arch / "boot_archive.manifest").read_text().splitlines()
    assert lines == sorted(lines, key=lambda line: line.split("  ", 1)[1])
    md5, path = lines[0].split("  ", 1)
    assert md5 == hashlib.md5((root / "proto" / path).read_bytes()).hexdigest()
    assert json.loads((arch / "boot_archive.gitstatus").read_text())[0]["rev"] == "abc"
    assert not (out / f"platform-{STAMP}-root.tgz").exists()


def test_tarball_is_the_platform_directory(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    final = platform(root)
    tgz = root / "output" / f"platform-{STAMP}.tgz"
    members = read_tar(tgz)
    assert list(members) == sorted(members)                         # path order, parents first
    assert {m.path: (m.kind, m.sha256) for m in members.values()} == directory_listing(final)
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, stamp_epoch(STAMP))}
    assert {m.path: m.mode for m in members.values() if m.kind == "d"} == dict.fromkeys(
        [final.name, f"{final.name}/etc", f"{final.name}/etc/version", f"{final.name}/x86_64"],
        0o755)
    assert {m.mode for m in members.values() if m.kind == "f"} == {0o644}
    # what a boot server does with it: GNU tar unpacks platform-<STAMP>/ with root's numeric ids
    listing = subprocess.run(["tar", "-tvzf", str(tgz), "--numeric-owner"], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    assert listing[0].split()[:2] == ["drwxr-xr-x", "0/0"]
    assert listing[0].split()[-1] == f"platform-{STAMP}/"
    assert all(line.split()[-1].startswith(f"platform-{STAMP}/") for line in listing)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(tgz), "-C", str(unpacked)], check=True)
    assert directory_listing(unpacked / final.name) == directory_listing(final)


def test_root_tarball_on_request(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    final = platform(root, root_tarball=True)
    out = root / "output"
    image_root = read_tar(out / f"platform-{STAMP}-root.tgz")
    assert image_root == read_cpio(final / "x86_64/boot_archive")
    assert "boot/vmlinuz" in image_root
    assert [m.path for m in read_tar(out / f"platform-{STAMP}.tgz").values()][0] == final.name
    # manifest diff reads all three forms as the same image
    assert diff(out / f"platform-{STAMP}-root.tgz", out / f"platform-{STAMP}.tgz").same
    assert diff(out / f"platform-{STAMP}.tgz", final).same
    # a rebuild of the same stamp without it takes it away: it would be a stale image
    platform(root)
    assert not os.path.lexists(out / f"platform-{STAMP}-root.tgz")


def test_rebuild_same_stamp_replaces_and_new_stamp_moves_links(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    platform(root)
    first = (root / "output" / f"platform-{STAMP}.tgz").read_bytes()
    platform(root)
    assert (root / "output" / f"platform-{STAMP}.tgz").read_bytes() == first
    platform(root, "20250101T000000Z")
    assert os.readlink(root / "output/platform-latest") == "platform-20250101T000000Z"
    assert diff(root / f"output/platform-{STAMP}", root / "output/platform-latest.tgz").same
    hidden = {p.name for p in (root / "output").iterdir() if p.name.startswith(".")}
    assert hidden == in_use(root / "output") and len(hidden) == 4    # two links, two generations


def in_use(out: Path) -> set[str]:
    """The hidden names the published platforms lead through: switch links and generations."""
    names = set()
    for path in out.iterdir():
        if path.is_symlink() and not path.name.startswith(".") and "/" in os.readlink(path):
            switch = os.readlink(path).split("/")[0]
            names |= {switch, os.readlink(out / switch)}
    return names


def test_diff_reports_changes(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    platform(root)
    manifest = (root / "manifest").read_text().splitlines()
    changed = [line for line in manifest if line.startswith("f ") and "boot/" not in line][0]
    path = changed.split()[1]
    (root / "proto" / path).write_bytes(b"new content")
    (root / "manifest").write_text("\n".join(manifest + ["d extra 0700 root root"]) + "\n")
    platform(root, "20250101T000000Z")
    report = diff(root / f"output/platform-{STAMP}.tgz", root / "output/platform-latest")
    assert [m.path for m in report.added] == ["extra"] and not report.removed
    assert [(c.path, c.what) for c in report.changed] == [(path, ("content",))]
    assert f"~ {path}: content" in format_diff(report)


def snapshot(out: Path) -> dict[str, bytes | str]:
    state: dict[str, bytes | str] = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if path.is_symlink():
            state[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def test_killed_runs_leave_previous_outputs_intact(tmp_path: Path) -> None:
    root = workspace(tmp_path, 400, big=100)
    platform(root, "20200101T000000Z")
    before = snapshot(root / "output")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    rng = random.Random(1)
    # How long a whole run takes, so kills land anywhere in it.
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", BUILD, str(root), "20990101T000000Z"], env=env,
                   check=True, capture_output=True)
    full = time.monotonic() - start
    subprocess.run(["rm", "-rf", str(root / "output/platform-20990101T000000Z"),
                    str(root / "output/platform-20990101T000000Z.tgz")], check=True)
    platform(root, "20200101T000000Z")
    before = snapshot(root / "output")
    kept = in_use(root / "output")
    outcomes = set()
    for trial in range(20):
        stamp = f"2030{trial + 1:02d}01T000000Z"
        proc = subprocess.Popen([sys.executable, "-c", BUILD, str(root), stamp], env=env,
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0, full * 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out = root / "output"
        visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
        name = f"platform-{stamp}"
        latest = os.readlink(out / "platform-latest")
        if latest == name:                    # the run got to the links: all must be complete
            outcomes.add("finished")
            assert (out / name / "x86_64/boot_archive.gitstatus").is_file()
            assert os.readlink(out / "platform-latest.tgz") in (f"{name}.tgz",
                                                                 "platform-20200101T000000Z.tgz")
        else:
            outcomes.add("killed")
            assert latest == "platform-20200101T000000Z"
            assert os.readlink(out / "platform-latest.tgz") == "platform-20200101T000000Z.tgz"
            if name in visible:               # renamed into place: must be complete
                assert (out / name / "etc/version/platform").read_text() == stamp + "\n"
                read_cpio(out / name / "x86_64/boot_archive")
            if f"{name}.tgz" in visible:
                read_tar(out / f"{name}.tgz")
        now = snapshot(out)
        for key, value in before.items():       # the previous platform is untouched
            if not key.startswith("platform-latest"):
                assert now[key] == value, key
        for leftover in [p.name for p in out.iterdir() if p.name.startswith(".")]:
            # temporaries, the killed run's generation, and the previous platform's
            assert ".lf-tmp-" in leftover or leftover.startswith(f".{name}") or leftover in kept
        for extra in visible - {p.split("/")[0] for p in before}:
            subprocess.run(["rm", "-rf", str(out / extra)], check=True)
        for link in ("platform-latest", "platform-latest.tgz"):
            target = "platform-20200101T000000Z" + (".tgz" if link.endswith("tgz") else "")
            if os.readlink(out / link) != target:
                os.unlink(out / link)
                os.symlink(target, out / link)
    assert "killed" in outcomes
    platform(root, "20400101T000000Z")        # the next run clears the leftovers
    hidden = {p.name for p in (root / "output").iterdir() if p.name.startswith(".")}
    assert hidden == in_use(root / "output")


KILL_AT = """
import os, signal, sys
from pathlib import Path
from liveforge.build.image import platform as platform_out
from liveforge.build.image.assemble import resolve
from liveforge.build.image.manifest import combine
root, stamp, kill_at = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def step(name):
    if name == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
platform_out._step = step
manifest = combine([root / "manifest"], {}, False, lambda _: None)
platform_out.write_platform(root / "output", "platform-" + stamp,
                            resolve(manifest, [root / "proto"]), stamp=stamp,
                            kernel_path="boot/vmlinuz", gitstatus=[], compression="gzip",
                            arch="x86_64")
"""


def pair(out: Path, name: str) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """What ``name/`` and ``name.tgz`` hold, as listings (empty when missing)."""
    directory = directory_listing(out / name) if (out / name).is_dir() else {}
    tarball = {m.path: (m.kind, m.sha256) for m in read_tar(out / f"{name}.tgz").values()} \
        if (out / f"{name}.tgz").is_file() else {}
    return directory, tarball


def test_a_rebuild_killed_at_any_step_leaves_the_old_pair_or_the_new(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from liveforge.build.image import platform as platform_out

    root = workspace(tmp_path, 300)
    out, name = root / "output", f"platform-{STAMP}"
    steps: list[str] = []
    monkeypatch.setattr(platform_out, "_step", steps.append)
    platform(root, stamp="20200101T000000Z")
    platform(root)
    steps.clear()
    platform(root)
    assert len(steps) >= 4, steps
    monkeypatch.undo()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    changed = next(line.split()[1] for line in (root / "manifest").read_text().splitlines()
                   if line.startswith("f ") and "boot/" not in line)
    for number, step in enumerate(steps):
        old = pair(out, name)
        assert old[0] and old[0] == old[1]
        (root / "proto" / changed).write_text(f"content {number}\n")
        # the new pair, as a finished run writes it (the same bytes, elsewhere)
        subprocess.run([sys.executable, "-c", KILL_AT.replace('"output"', '"expected"'),
                        str(root), STAMP, "-"], env=env, check=True)
        new = pair(root / "expected", name)
        assert new[0] == new[1] != old[0]
        proc = subprocess.run([sys.executable, "-c", KILL_AT, str(root), STAMP, step], env=env)
        assert proc.returncode == -signal.SIGKILL, step
        now = pair(out, name)
        assert now in (old, new), f"killed after {step!r}: a mix of old and new"
        assert os.readlink(out / "platform-latest") == name
        assert os.readlink(out / "platform-latest.tgz") == f"{name}.tgz"
        # the next run finishes and clears what was left
        subprocess.run([sys.executable, "-c", KILL_AT, str(root), STAMP, "-"], env=env,
                       check=True)
        assert pair(out, name) == new
        assert not [p.name for p in out.iterdir() if ".lf-tmp-" in p.name]


def test_an_older_liveforges_platform_directory_is_replaced(tmp_path: Path) -> None:
    root = workspace(tmp_path, 300)
    out, name = root / "output", f"platform-{STAMP}"
    (out / name / "etc/version").mkdir(parents=True)      # the layout before generations
    (out / name / "etc/version/platform").write_text(STAMP + "\n")
    (out / f"{name}.tgz").write_bytes(b"an image root")
    final = platform(root)
    assert os.readlink(out / name) == f".{name}/{name}"
    assert directory_listing(final) == pair(out, name)[1]
    assert {p.name for p in out.iterdir() if p.name.startswith(".")} == in_use(out)


def test_zstd_boot_archive(tmp_path: Path) -> None:
    root = workspace(tmp_path, 300)
    final = platform(root, compression="zstd")
    assert (final / "x86_64/boot_archive").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"


def test_kernel_must_be_shipped(tmp_path: Path) -> None:
    from liveforge.util.errors import BuildError
    root = workspace(tmp_path, 300)
    manifest = combine([root / "manifest"], {}, False, lambda _: None)
    image = resolve(manifest, [root / "proto"])
    with pytest.raises(BuildError, match="kernel 'boot/nope'"):
        write_platform(root / "output", "p", image, stamp=STAMP, kernel_path="boot/nope",
                       gitstatus=[], compression="gzip", arch="x86_64")


def test_gitstatus(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    for args in (["init", "-q", "-b", "trunk"], ["remote", "add", "origin", "https://x/r.git"],
                 ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    plain = tmp_path / "plain"
    plain.mkdir()
    records = gitstatus([repo, plain])
    assert records[0]["branch"] == "trunk" and records[0]["url"] == "https://x/r.git"
    assert len(records[0]["rev"]) == 40 and records[0]["commit_date"].startswith("2026-01-01")
    assert records[1] == {"repo": "plain", "warning": "plain is not a git checkout"}
    nested = tmp_path / "projects" / "local" / "plain"
    nested.mkdir(parents=True)
    assert gitstatus([nested], tmp_path)[0]["warning"] == \
        "projects/local/plain is not a git checkout"


def test_diff_of_a_tarball_whose_hard_link_leads_nowhere_names_it(tmp_path: Path) -> None:
    """A hard link to no earlier member (``../../x``): one line naming the tarball."""
    import io
    import tarfile

    from liveforge.build.cli import main

    tarball = tmp_path / "odd.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, kind, target in (("a", tarfile.REGTYPE, ""), ("h", tarfile.LNKTYPE, "../../x")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, target, int(kind == tarfile.REGTYPE)
            archive.addfile(info, io.BytesIO(b"a"))
    other = tmp_path / "other.tgz"
    with tarfile.open(other, "w:gz"):
        pass
    with pytest.raises(InputError) as info:
        diff(other, tarball)
    assert str(info.value) == f"{tarball}: hard link 'h' to '../../x', no member before it"
    assert main(["manifest", "diff", str(other), str(tarball)]) == 2
