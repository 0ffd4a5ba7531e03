"""The build cache against a real nginx on loopback: two workspaces at different paths share
it; faults of the server and of its entries end in a correct platform; credentials, dirty
trees and workspace paths decide what is pushed; a toolchain change misses."""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.nginx import PASSWORD, USER, Nginx
from tests.support.workspaces import LIVE_STAMP, commit_all, git, live_workspace

STAMP = LIVE_STAMP
STEPS = {"comp", "plain"}


def cache_env(store: Path, server: Nginx | None = None, auth: bool = True,
              **more: str) -> dict[str, str]:
    env = {"CACHE_MODE": "on", "LIVEFORGE_CACHE_DIR": str(store), "CACHE_TIMEOUT": "2"}
    if server is not None:
        env["CACHE_URL"] = server.url
    if auth:
        env["LIVEFORGE_CACHE_AUTH"] = f"{USER}:{PASSWORD}"
    env.update(more)
    return env


def live(ws: Path, env: dict[str, str], *args: str, ok: bool = True
         ) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    proc = cli(ws, "--json", *args, "live", stamp=STAMP, env=env, pythonpath=True,
               timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return events, proc


def named(events: list[dict], event: str, **match: str) -> set[str]:
    return {e["component"] for e in events if e["event"] == event
            and all(e.get(k) == v for k, v in match.items())}


def warnings(events: list[dict]) -> str:
    return "\n".join(e["text"] for e in events if e["event"] == "message"
                     and e.get("level") == "warning")


def platform_bytes(ws: Path) -> dict[str, bytes]:
    """Every file of the latest platform and its tarball, by path."""
    out = ws / "output"
    platform = (out / "platform-latest").resolve()
    files = {str(p.relative_to(platform)): p.read_bytes()
             for p in sorted(platform.rglob("*")) if p.is_file()}
    files["<tarball>"] = (out / "platform-latest.tgz").resolve().read_bytes()
    assert len(files) > 5
    return files


def big_text(size: int) -> str:
    """Text that compresses badly, the same in every workspace."""
    return random.Random(13).randbytes(size // 2 + 1).hex()[:size]


def workspace(base: Path, name: str, upstream: Path, big: int = 0) -> Path:
    """A live workspace (components comp and plain) under ``base``, at a path of its own;
    ``big``: that many bytes of poorly compressible text in plain's output."""
    ws = cached_workspace(base / name / "deeper" / "ws", upstream)
    if big:
        (ws / "plain" / "src" / "b.txt").write_text(big_text(big))
    return ws


def cached_workspace(root: Path, upstream: Path) -> Path:
    """live_workspace's, with plain's build products out of its source hash."""
    ws = live_workspace(root, upstream)
    (ws / "plain" / ".liveforgeignore").write_text("build/\n")
    return ws


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two workspaces of the same platform at different paths (different lengths, too)."""
    upstream = tmp_path / "upstream"
    return (cached_workspace(tmp_path / "one" / "ws", upstream),
            cached_workspace(tmp_path / "second-builder" / "x" / "ws", upstream))


# -- the round trip ----------------------------------------------------------------------------

def test_second_workspace_restores_every_step_and_builds_none(
        tmp_path: Path, pair: tuple[Path, Path], nginx: Nginx) -> None:
    first, second = pair
    events, _ = live(first, cache_env(tmp_path / "store1", nginx))
    assert named(events, "finish") == STEPS
    assert named(events, "stored", store="local") == STEPS
    assert named(events, "stored", store="shared") == STEPS
    assert len(nginx.entries("ac")) == 2 and len(nginx.entries("cas")) == 2
    for name, data in nginx.entries("cas").items():  # content-addressed: named by sha256
        import hashlib
        assert hashlib.sha256(data).hexdigest() == name
        assert data[:4] == b"\x28\xb5\x2f\xfd"  # zstd

    env2 = cache_env(tmp_path / "store2", nginx)
    status = cli(second, "status", env=env2, pythonpath=True)
    assert status.stdout.count("never built (restorable from cache)") == 2, status.stdout
    events, _ = live(second, env2)
    assert named(events, "restored", store="shared") == STEPS
    assert named(events, "start") == set() and named(events, "finish") == set()
    assert all(len(e["key"]) == 64 for e in events if e["event"] == "restored")
    assert platform_bytes(second) == platform_bytes(first)
    # the same platform, from scratch at the second path, without the cache
    cli(second, "clobber", check=True, env=env2)
    cli(second, "configure", check=True, env=env2, stamp=STAMP)
    events, _ = live(second, env2, "--no-cache")
    assert named(events, "finish") == STEPS and not named(events, "restored")
    scratch = platform_bytes(second)
    assert scratch == platform_bytes(first)
    # a third build, from the warm local store: the server is not needed
    nginx.stop()
    cli(second, "clean", check=True, env=env2)
    events, _ = live(second, env2)
    assert named(events, "restored", store="local") == STEPS
    assert platform_bytes(second) == scratch

    stats = cli(second, "--json", "cache", "stats", env=env2, check=True)
    data = json.loads(stats.stdout)
    assert data["shared_hits"] == 2 and data["local_hits"] == 2 and data["local"]["entries"] == 2


def test_readonly_and_no_cache_store_nothing(tmp_path: Path, pair: tuple[Path, Path],
                                             nginx: Nginx) -> None:
    first, second = pair
    store = tmp_path / "store"
    events, _ = live(first, cache_env(store, nginx), "--cache-readonly")
    assert named(events, "finish") == STEPS and not named(events, "stored")
    assert not nginx.entries("ac") and not (store / "ac").exists()
    events, _ = live(second, cache_env(store, nginx), "--no-cache")
    assert named(events, "finish") == STEPS and not named(events, "stored")
    # readonly restores what is there
    cli(first, "clean", check=True)
    live(first, cache_env(store, nginx))
    cli(second, "clean", check=True)
    events, _ = live(second, cache_env(tmp_path / "other", nginx), "--cache-readonly")
    assert named(events, "restored", store="shared") == STEPS
    assert not (tmp_path / "other" / "ac").exists()  # nor kept locally


# -- faults ------------------------------------------------------------------------------------

def shared_first(tmp_path: Path, nginx: Nginx, big: int = 0) -> tuple[Path, Path, dict]:
    """A first workspace built and pushed; a second, not built; the first's platform."""
    upstream = tmp_path / "upstream"
    first = workspace(tmp_path, "a", upstream, big)
    second = workspace(tmp_path, "bb", upstream, big)
    events, _ = live(first, cache_env(tmp_path / "store1", nginx))
    assert named(events, "stored", store="shared") == STEPS, warnings(events)
    return first, second, platform_bytes(first)


def cas_file(nginx: Nginx, step_events: list[dict], store: Path) -> Path:
    """The server's archive of plain, the step with the big output."""
    record = json.loads((nginx.root / "ac" / next(
        e["key"] for e in step_events if e["event"] == "stored"
        and e["component"] == "plain" and e["store"] == "shared")).read_bytes())
    return nginx.root / "cas" / record["archive"]


def plain_key(nginx: Nginx) -> str:
    """The key whose archive is the biggest (plain's, with the big file)."""
    sizes = {k: json.loads(v)["size"] for k, v in nginx.entries("ac").items()}
    return max(sizes, key=lambda k: sizes[k])


def plain_archive(nginx: Nginx) -> Path:
    return nginx.root / "cas" / json.loads(nginx.entries("ac")[plain_key(nginx)])["archive"]


@pytest.mark.parametrize("fault", ["corrupt", "truncated", "missing"])
def test_a_damaged_entry_is_a_warning_and_a_build(tmp_path: Path, nginx: Nginx,
                                                  fault: str) -> None:
    first, second, expected = shared_first(tmp_path, nginx, big=64 << 10)
    archive = plain_archive(nginx)
    data = archive.read_bytes()
    if fault == "corrupt":  # same length, other bytes, under the good key
        archive.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:])
    elif fault == "truncated":
        archive.write_bytes(data[: len(data) // 2])
    else:
        archive.unlink()
    events, _ = live(second, cache_env(tmp_path / "store2", nginx))
    assert named(events, "restored", store="shared") == {"comp"}
    assert named(events, "finish") == {"plain"}
    assert "plain: the shared cache entry" in warnings(events)
    assert {"corrupt": "is corrupt: its sha256 is", "truncated": "is truncated:",
            "missing": "HTTP 404"}[fault] in warnings(events), warnings(events)
    assert platform_bytes(second) == expected


def test_server_errors_and_stalls_are_warnings_and_builds(tmp_path: Path,
                                                          nginx: Nginx) -> None:
    first, second, expected = shared_first(tmp_path, nginx)
    # every archive answers 500
    nginx.start('        location /cas/ { return 500; }')
    events, _ = live(second, cache_env(tmp_path / "store2", nginx))
    assert named(events, "finish") == STEPS and not named(events, "restored")
    assert "HTTP 500" in warnings(events)
    assert platform_bytes(second) == expected
    # every archive stalls: nginx waits on an upstream that never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        port = silent.getsockname()[1]
        nginx.start(f"        location /cas/ {{ proxy_pass http://127.0.0.1:{port}; "
                    "proxy_read_timeout 60s; }")
        cli(second, "clean", check=True)
        events, _ = live(second, cache_env(tmp_path / "store3", nginx, CACHE_TIMEOUT="1"))
    finally:
        silent.close()
    assert named(events, "finish") == STEPS and not named(events, "restored")
    assert "no answer within 1 s" in warnings(events) or "timed out" in warnings(events), \
        warnings(events)
    assert platform_bytes(second) == expected
    # no server at all
    nginx.stop()
    cli(second, "clean", check=True)
    events, _ = live(second, cache_env(tmp_path / "store4", nginx))
    assert named(events, "finish") == STEPS
    assert "Connection refused" in warnings(events)
    assert platform_bytes(second) == expected


def test_server_killed_mid_download(tmp_path: Path, nginx: Nginx) -> None:
    first, second, expected = shared_first(tmp_path, nginx, big=3 << 20)
    archive = plain_archive(nginx)
    assert archive.stat().st_size > 1 << 20
    # archives trickle out at 256 KiB/s: the download takes seconds
    nginx.start("        location /cas/ { limit_rate 256k; }")
    server = nginx.proc
    assert server is not None

    def kill_when_downloading() -> None:
        log = nginx.state / "access.log"
        for _ in range(400):  # until the first request shows in the log
            if server.poll() is not None:
                return
            try:
                started = log.stat().st_size > 0
            except OSError:
                started = False
            if started:
                break
            threading.Event().wait(0.05)
        threading.Event().wait(1.0)
        nginx.kill()

    killer = threading.Thread(target=kill_when_downloading)
    killer.start()
    events, _ = live(second, cache_env(tmp_path / "store2", nginx))
    killer.join()
    assert "plain" in named(events, "finish")
    assert "plain: the shared cache entry" in warnings(events)
    size = archive.stat().st_size
    assert re.search(rf"cas/{archive.name} is truncated: \d+ bytes of {size}",
                     warnings(events)) or f"cannot download cas/{archive.name}" in \
        warnings(events), warnings(events)
    assert platform_bytes(second) == expected
    # no partial download kept: each local archive is whole (plain's, built here, too)
    import hashlib
    for kept in (tmp_path / "store2" / "cas").iterdir():
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == kept.name
    assert not list((tmp_path / "store2" / "tmp").iterdir())


# -- writes: credentials, dirty trees, leaks ----------------------------------------------------

def test_writes_need_credentials(tmp_path: Path, pair: tuple[Path, Path], nginx: Nginx) -> None:
    first, second = pair
    # the server refuses an unauthenticated PUT (and one with a wrong password)
    for auth in (None, f"{USER}:wrong"):
        request = urllib.request.Request(f"{nginx.url}/ac/{'0' * 64}", data=b"{}",
                                         method="PUT")
        if auth:
            import base64
            request.add_header("Authorization",
                               "Basic " + base64.b64encode(auth.encode()).decode())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
    assert not nginx.entries("ac")
    # without credentials the client only reads: stored locally, nothing pushed
    events, proc = live(first, cache_env(tmp_path / "store1", nginx, auth=False))
    assert named(events, "stored", store="local") == STEPS, proc.stdout + proc.stderr
    assert not named(events, "stored", store="shared") and not nginx.entries("ac")
    # wrong credentials: the server refuses, the build goes on with a warning
    cli(first, "clean", check=True)
    events, _ = live(first, cache_env(tmp_path / "store-x", nginx, auth=False,
                                      LIVEFORGE_CACHE_AUTH=f"{USER}:wrong"))
    assert "HTTP 401" in warnings(events) and not nginx.entries("ac")
    # cache push uploads what was built here, with credentials
    pushed = cli(first, "cache", "push", env=cache_env(tmp_path / "store1", nginx),
                 pythonpath=True)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed 2 entries" in pushed.stdout + pushed.stderr
    assert len(nginx.entries("ac")) == 2
    events, _ = live(second, cache_env(tmp_path / "store2", nginx, auth=False))
    assert named(events, "restored", store="shared") == STEPS
    assert platform_bytes(second) == platform_bytes(first)
    refused_push = cli(first, "cache", "push",
                       env=cache_env(tmp_path / "store1", nginx, auth=False))
    assert refused_push.returncode != 0
    assert "no credentials to write" in refused_push.stderr
    assert "Traceback" not in refused_push.stderr


def test_dirty_trees_are_not_pushed_unless_asked(tmp_path: Path, pair: tuple[Path, Path],
                                                  nginx: Nginx) -> None:
    first, _ = pair
    source = first / "projects" / "comp" / "src" / "a.txt"
    source.write_text("an uncommitted change\n")
    events, proc = live(first, cache_env(tmp_path / "store1", nginx))
    assert named(events, "stored", store="local") == STEPS
    assert named(events, "stored", store="shared") == {"plain"}  # a plain tree: no git
    assert "comp: " in proc.stdout and "uncommitted changes" in proc.stdout
    pushed = cli(first, "cache", "push", env=cache_env(tmp_path / "store1", nginx,
                                                       CACHE_PUSH_DIRTY="yes"))
    assert "pushed 1 entries" in pushed.stdout + pushed.stderr, pushed.stderr
    commit_all(first / "projects" / "comp", "now clean")
    assert git(first / "projects" / "comp", "status", "--porcelain") == ""


LEAKY = """\
world:
\t@true
install:
\tmkdir -p "$(DESTDIR)/etc"
\techo "built in $(CURDIR)" > "$(DESTDIR)/etc/where"
manifest:
\techo 'f etc/where 0644 root root' > "$(DESTDIR)/$(DESTNAME)"
"""


def test_an_output_holding_the_workspace_path_is_never_cached(
        tmp_path: Path, pair: tuple[Path, Path], nginx: Nginx) -> None:
    first, second = pair
    for ws in pair:
        (ws / "leaky").mkdir()
        (ws / "leaky" / "Makefile").write_text(LEAKY)
        with open(ws / "platform.toml", "a") as toml:
            toml.write('\n[components.leaky]\nkind = "make"\npath = "leaky"\n')
    events, _ = live(first, cache_env(tmp_path / "store1", nginx))
    assert named(events, "stored", store="shared") == STEPS
    assert named(events, "uncacheable") == {"leaky"}
    assert "leaky: its output holds the workspace path" in warnings(events)
    assert "tree/etc/where" in warnings(events)
    events, _ = live(second, cache_env(tmp_path / "store2", nginx))
    assert named(events, "restored") == STEPS and named(events, "finish") == {"leaky"}
    where = (second / "output" / "platform-latest").resolve()
    assert where.is_dir()


# -- concurrency and invalidation ---------------------------------------------------------------

def test_two_builders_push_the_same_keys_at_once(tmp_path: Path, nginx: Nginx) -> None:
    upstream = tmp_path / "upstream"
    a = workspace(tmp_path, "a", upstream, big=1 << 20)
    b = workspace(tmp_path, "b", upstream, big=1 << 20)
    c = workspace(tmp_path, "c", upstream, big=1 << 20)
    procs = [subprocess.Popen(
        [__import__("sys").executable, "-m", "liveforge.build.cli", "-C", str(ws), "--json",
         "live"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**__import__("os").environ, "BUILDSTAMP": STAMP,
             **cache_env(tmp_path / f"store-{ws.parent.parent.name}", nginx)})
        for ws in (a, b)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    pushed = [{json.loads(line)["component"] for line in out.splitlines()
               if '"stored"' in line and '"shared"' in line} for out, _ in outputs]
    assert pushed[0] | pushed[1] == STEPS  # each key went up once or twice, whole
    records = nginx.entries("ac")
    assert len(records) == 2
    import hashlib
    for data in records.values():
        archive = json.loads(data)["archive"]
        assert hashlib.sha256((nginx.root / "cas" / archive).read_bytes()).hexdigest() == archive
    assert platform_bytes(a) == platform_bytes(b)
    events, _ = live(c, cache_env(tmp_path / "store-c", nginx))
    assert named(events, "restored", store="shared") == STEPS
    assert platform_bytes(c) == platform_bytes(a)


def test_a_different_compiler_misses(tmp_path: Path, pair: tuple[Path, Path],
                                     nginx: Nginx) -> None:
    first, second = pair
    live(first, cache_env(tmp_path / "store1", nginx))
    (second / "configure-build").write_text("CC=gcc\n")  # the others use cc
    cli(second, "configure", check=True, stamp=STAMP)
    env2 = cache_env(tmp_path / "store2", nginx)
    status = cli(second, "status", env=env2)
    assert "restorable" not in status.stdout
    events, _ = live(second, env2)
    assert named(events, "finish") == STEPS and not named(events, "restored")
    # and the same compiler hits again
    (second / "configure-build").write_text("")
    cli(second, "configure", check=True, stamp=STAMP)
    cli(second, "clean", check=True)
    events, _ = live(second, env2)
    assert named(events, "restored") == STEPS


# -- the local store ---------------------------------------------------------------------------

def test_prune_keeps_the_most_recently_used(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    first, _ = pair
    store = tmp_path / "store"
    live(first, cache_env(store, None))
    cas = sorted((store / "cas").iterdir())
    assert len(cas) == 2
    sizes = {p.name: p.stat().st_size for p in cas}
    newest = max(cas, key=lambda p: p.stat().st_mtime)
    import os
    for p in cas:  # make the other one older
        if p != newest:
            os.utime(p, (1_000_000, 1_000_000))
    pruned = cli(first, "cache", "prune", "--max-size", str(sizes[newest.name]),
                 env=cache_env(store, None))
    assert pruned.returncode == 0, pruned.stderr
    assert [p.name for p in (store / "cas").iterdir()] == [newest.name]
    assert len(list((store / "ac").iterdir())) == 1  # the record of the removed one went too
    bad = cli(first, "cache", "prune", "--max-size", "lots", env=cache_env(store, None))
    assert bad.returncode != 0 and "--max-size: 'lots' is not a size" in bad.stderr


def test_a_corrupt_local_entry_is_rebuilt(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    first, _ = pair
    store = tmp_path / "store"
    live(first, cache_env(store, None))
    expected = platform_bytes(first)
    for archive in (store / "cas").iterdir():
        archive.write_bytes(archive.read_bytes()[:-10])
    cli(first, "clean", check=True)
    events, _ = live(first, cache_env(store, None))
    assert named(events, "finish") == STEPS and not named(events, "restored")
    assert "the local cache entry" in warnings(events)
    assert platform_bytes(first) == expected


# -- the demo ----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.network
def test_demo_round_trip_across_workspaces(tmp_path: Path, nginx: Nginx) -> None:
    """The demo built in one workspace and pushed; restored whole in another (every step,
    the strap phase and the deb, extra and make steps alike), byte for byte the same."""
    from tests.support.demo import copy_demo
    from tests.support.kernel import cache_dir

    downloads = cache_dir() / "demo"  # the demo tests' download cache: debs, sources
    first = copy_demo(tmp_path / "a" / "ws", downloads)
    second = copy_demo(tmp_path / "other-builder" / "b" / "ws", downloads)
    stamp = "20261129T101500Z"
    for ws in (first, second):
        configured = cli(ws, "configure", "--offline", stamp=stamp, timeout=600)
        if configured.returncode != 0:
            cli(ws, "configure", stamp=stamp, timeout=600, check=True)

    def demo_live(ws: Path, env: dict[str, str]) -> list[dict]:
        proc = cli(ws, "--json", "live", stamp=stamp, env=env, unset=("SOURCE_DATE_EPOCH",),
                   timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    events = demo_live(first, cache_env(tmp_path / "store1", nginx, CACHE_TIMEOUT="30"))
    steps = {"kernel", "busybox", "extra:strap", "extra", "src", "platinfo"}
    assert named(events, "stored", store="shared") == steps, warnings(events)
    events = demo_live(second, cache_env(tmp_path / "store2", nginx, CACHE_TIMEOUT="30"))
    assert named(events, "restored", store="shared") == steps
    assert not named(events, "start") and not named(events, "finish")
    assert platform_bytes(second) == platform_bytes(first)


# -- parts: the extra kind's package variants ----------------------------------------------

def test_extra_variants_are_restored_one_by_one(tmp_path: Path, nginx: Nginx,
                                                www: tuple[Path, str]) -> None:
    """A change to one package misses the extra step as a whole; the variants of the other
    package come from the cache, each on its own, and the result is the same."""
    from tests.support.extras import extra_workspace

    first = extra_workspace(tmp_path / "a" / "ws", www)
    second = extra_workspace(tmp_path / "builder-b" / "ws", www)
    third = extra_workspace(tmp_path / "c" / "ws", www)
    (third / "projects" / "extra" / "app" / "Patches" / "0001-greeting.patch").write_text(
        (second / "projects" / "extra" / "app" / "Patches" / "0001-greeting.patch").read_text()
        .replace("patched app", "re-patched app"))

    def world(ws: Path, store: str) -> list[dict]:
        proc = cli(ws, "--json", "world", env=cache_env(tmp_path / store, nginx),
                   pythonpath=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    events = world(first, "store1")
    parts = {e["part"] for e in events if e["event"] == "stored" and e.get("store") == "shared"
             and "part" in e}
    assert parts == {"libdemo/libdemo-1.0-64strap", "libdemo/libdemo-1.0-32",
                     "libdemo/libdemo-1.0-64", "app/app-2.0-64"}
    events = world(second, "store2")  # the same: whole steps, no parts asked
    assert named(events, "restored") == {"extra", "extra:strap"}
    assert not [e for e in events if "part" in e]
    events = world(third, "store3")  # app changed: the step misses, libdemo's variants hit
    assert named(events, "restored") == {"extra:strap", "extra"}  # extra: by parts only
    assert named(events, "finish") == {"extra"}
    restored = {e["part"] for e in events if e["event"] == "restored" and "part" in e}
    assert restored == {"libdemo/libdemo-1.0-32", "libdemo/libdemo-1.0-64"}
    log = next((third / "log").glob("extra.*.log")).read_text()
    assert "building app app-2.0-64" in log and "building libdemo" not in log
    for lib in ("usr/lib/libdemo.so.1", "usr/lib/32/libdemo.so.1"):
        assert (third / "proto" / lib).read_bytes() == (first / "proto" / lib).read_bytes()
    app = subprocess.run([str(third / "proto" / "usr" / "bin" / "app")], capture_output=True,
                         text=True, env={"LD_LIBRARY_PATH": str(third / "proto" / "usr" / "lib")})
    assert app.stdout == "re-patched app 1.0-liveforge\n"


def test_uploads_of_one_key_at_the_same_moment(tmp_path: Path, nginx: Nginx) -> None:
    """Eight clients put the same archive and record at once (a barrier starts them): none
    fails, and the server ends with one whole record and one whole archive."""
    import hashlib

    from liveforge.util.blobstore import HttpStore, Record

    archive = tmp_path / "archive"
    archive.write_bytes(big_text(4 << 20).encode())
    record = Record(hashlib.sha256(archive.read_bytes()).hexdigest(), archive.stat().st_size)
    key = "e" * 64
    barrier = threading.Barrier(8)
    results: list[object] = []

    def upload() -> None:
        store = HttpStore(nginx.url, (USER, PASSWORD), 10)
        barrier.wait()
        try:
            results.append(store.upload(key, record, archive))
        except Exception as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, bool) for r in results), results
    assert any(results)
    assert nginx.entries("ac") == {key: record.to_bytes()}
    assert nginx.entries("cas")[record.archive] == archive.read_bytes()
    got = tmp_path / "got"
    HttpStore(nginx.url, None, 5).download(record, got)
    assert got.read_bytes() == archive.read_bytes()
