"""The insight parts on their own, without building the demo: the timeline of given events,
licence syntax, the SBOM round trip and its determinism, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liveforge.build.config import license_problem
from liveforge.build.insight.bom import Bom, Component, ShippedFile
from liveforge.build.insight.sbom import cyclonedx_json, read_spdx, spdx_json
from liveforge.build.insight.timeline import read_events, svg, text, timeline
from liveforge.build.kinds.base.origin import Origin
from liveforge.util.errors import BuildError, LiveforgeError

STAMP = "20261129T101500Z"


def ev(event: str, time: float, **fields: object) -> dict[str, object]:
    return {"event": event, "time": 1000.0 + time, **fields}


EVENTS = [
    ev("stale", 0.0, component="a", why=["never built"]),
    ev("start", 0.0, component="a"), ev("start", 0.0, component="b"),
    ev("finish", 2.0, component="b", duration=2.0),
    ev("finish", 3.0, component="a", duration=3.0),
    ev("start", 3.0, component="c"),          # waited for a (the later of its two deps)
    ev("finish", 5.0, component="c", duration=2.0),
    ev("start", 5.0, component="d"),
    ev("fail", 5.5, component="d", error="x"),
    ev("step", 6.0, text="combining manifests"),
    ev("step", 6.5, text="writing platform-x"),
    ev("platform", 8.0, path="/p"),
]
DEPS = {"a": (), "b": (), "c": ("a", "b"), "d": ("b",)}


def test_timeline_bars_parallelism_and_critical_path() -> None:
    line = timeline(EVENTS, DEPS, STAMP)
    bars = {b.name: b for b in line.bars}
    assert [(b.name, b.start, b.end) for b in line.bars] == [
        ("b", 0.0, 2.0), ("a", 0.0, 3.0), ("c", 3.0, 5.0), ("d", 5.0, 5.5),
        ("combining manifests", 6.0, 6.5), ("writing platform-x", 6.5, 8.0)]
    assert not bars["d"].ok and bars["c"].ok
    # d ended last, and waited for b only
    assert line.critical_path() == ["b", "d", "combining manifests", "writing platform-x"]
    assert line.parallel == ((0.0, 2), (2.0, 1), (3.0, 1), (5.0, 1), (5.5, 0))
    assert line.total == 8.0
    assert "total 8.00s" in text(line)
    chart = svg(line)
    assert chart.startswith("<svg") and chart == svg(timeline(EVENTS, DEPS, STAMP))


@pytest.mark.parametrize("steps", [2, 6, 30])
def test_the_timelines_panels_leave_no_band_between_them(steps: int) -> None:
    """The bars and the running-steps panel below them: nothing between them but the
    lower panel's margin (the bars show no time labels of their own)."""
    import re

    events = [ev(kind, float(i), component=f"s{i}", **({"duration": 1.0} if kind == "finish"
                                                     else {}))
              for i in range(steps) for kind in ("start", "finish")]
    chart = svg(timeline(events, {f"s{i}": () for i in range(steps)}, STAMP))
    height = float(re.search(r'viewBox="0 0 [\d.]+ ([\d.]+)"', chart).group(1))  # type: ignore[union-attr]
    # each axes' background rectangle: M x bottom L x bottom L x top L x top z
    boxes = [(float(m.group(2)), float(m.group(1))) for m in re.finditer(
        r'<g id="axes_\d+">\s*<g id="patch_\d+">\s*<path d="M [\d.]+ ([\d.]+) \s*'
        r'L [\d.]+ [\d.]+ \s*L [\d.]+ ([\d.]+)', chart)]
    [(bars_top, bars_bottom), (running_top, running_bottom)] = boxes
    assert bars_top < bars_bottom <= running_top < running_bottom
    assert running_top - bars_bottom < max(0.05 * height, 14), (boxes, height)
    assert "seconds" in chart


def test_a_run_cut_short_leaves_open_steps_failed() -> None:
    line = timeline([ev("start", 0.0, component="a"), ev("start", 1.0, component="b"),
                     ev("finish", 2.0, component="b", duration=1.0)], {}, STAMP)
    assert [(b.name, b.end, b.ok) for b in line.bars] == [("a", 2.0, False), ("b", 2.0, True)]


def test_a_broken_event_log_is_one_error_naming_the_line(tmp_path: Path) -> None:
    log = tmp_path / "build.x.jsonl"
    log.write_text(json.dumps(ev("start", 0, component="a")) + "\n{not json\n")
    with pytest.raises(LiveforgeError, match=r"build\.x\.jsonl:2: not an event"):
        read_events(log)
    log.write_text('["a list"]\n')
    with pytest.raises(LiveforgeError, match=":1: not an event"):
        read_events(log)
    with pytest.raises(LiveforgeError, match="no event log"):
        read_events(tmp_path / "none.jsonl")


@pytest.mark.parametrize("expr,problem", [
    ("MIT", None), ("MIT OR Apache-2.0", None), ("(MIT OR BSD-3-Clause) AND Zlib", None),
    ("GPL-2.0-or-later WITH Linux-syscall-note", None), ("LicenseRef-x.y", None),
    ("", "must be an SPDX license expression"), ("MIT OR", "is incomplete"),
    ("MIT Apache-2.0", "two terms"), ("(MIT", "is incomplete"), ("MIT)", "unbalanced"),
    ("AND MIT", "without a term"), ("MIT; rm -rf /", "unexpected"), ("MIT\nOR Zlib", None),
])
def test_licence_syntax(expr: str, problem: str | None) -> None:
    found = license_problem(expr)
    assert (found is None) if problem is None else (problem in (found or "")), found


def bom(paths: list[str], licence: str = "MIT") -> Bom:
    origins = (Origin("lib", "1.0", licence, "https://example.org/lib-1.0.tar.gz", "ab" * 32),
               Origin("tool", "2.0", "LicenseRef-Odd", "", "", "c0ffee" * 6 + "abcd",
                      refs=(("LicenseRef-Odd", "odd terms"),)))
    return Bom("demo", STAMP, (
        Component("comp_1", "extra", origins),
        Component("app", "make", (Origin("app", "tree-1", "Zlib"),), ("comp_1",))),
        tuple(ShippedFile(p, "app" if p.startswith("bin") else "comp_1", "1" * 40, "2" * 64)
              for p in sorted(paths)))


def test_the_sbom_round_trips_through_spdx(tmp_path: Path) -> None:
    original = bom(["bin/app", "lib/libx.so", "lib/ünïcode name"])
    path = tmp_path / "sbom.spdx.json"
    path.write_text(spdx_json(original, validate=True))  # spdx-tools finds no problem
    back = read_spdx(path)
    assert back == original
    assert spdx_json(back) == path.read_text()   # the same bytes again
    data = json.loads(path.read_text())
    assert {p["name"]: p["licenseDeclared"] for p in data["packages"]}["comp_1"] == \
        "MIT AND LicenseRef-Odd"
    assert data["hasExtractedLicensingInfos"][0]["extractedText"] == "odd terms"
    # SPDX ids hold only letters, digits, '.' and '-'
    assert all(set(p["SPDXID"]) <= set("SPDXRef-abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.")
               for p in data["packages"])


def test_cyclonedx_is_valid_and_deterministic() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    made = cyclonedx_json(bom(["bin/app"]))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(made) is None
    assert made == cyclonedx_json(bom(["bin/app"]))


def test_cyclonedx_is_converted_once_per_spdx_document(tmp_path: Path) -> None:
    """The CycloneDX view is kept beside the SPDX document it names by digest: converted
    again only when that document is another, or the kept view is not a whole one."""
    import hashlib

    from liveforge.build.insight.sbom import CYCLONEDX_FILE, MADE_FROM, SPDX_FILE, cyclonedx_of

    platform = tmp_path / "platform"
    platform.mkdir()
    spdx = platform / SPDX_FILE
    spdx.write_text(spdx_json(bom(["bin/app", "lib/libx.so"])))
    kept = platform / CYCLONEDX_FILE
    assert cyclonedx_of(platform, keep=False) == cyclonedx_json(
        bom(["bin/app", "lib/libx.so"]), made_from=hashlib.sha256(spdx.read_bytes()).hexdigest())
    assert not kept.exists()                     # ``sbom`` writes nothing
    made = cyclonedx_of(platform, keep=True)     # ``report`` keeps it
    assert kept.read_text() == made
    assert {"name": MADE_FROM, "value": hashlib.sha256(spdx.read_bytes()).hexdigest()} in \
        json.loads(made)["metadata"]["properties"]
    inode = kept.stat().st_ino
    assert cyclonedx_of(platform, keep=True) == made and kept.stat().st_ino == inode
    # another SPDX document (a rebuild of the stamp): converted again, from it
    spdx.write_text(spdx_json(bom(["bin/app", "lib/liby.so"])))
    again = cyclonedx_of(platform, keep=True)
    assert "lib/liby.so" in again and "lib/libx.so" not in again and kept.read_text() == again
    # a torn or foreign view is converted again, never trusted
    for broken in (again[: len(again) // 2], "[]", '{"metadata": {"properties": 5}}'):
        kept.write_text(broken)
        assert cyclonedx_of(platform, keep=True) == again == kept.read_text()


def test_an_unknown_licence_id_is_an_error_naming_the_component() -> None:
    with pytest.raises(BuildError, match="component 'comp_1': license 'Not-A-Licence': "
                       "Not-A-Licence is not an SPDX license id"):
        spdx_json(bom(["bin/app"], licence="Not-A-Licence"))


def test_the_reports_files_are_the_platforms_views() -> None:
    from liveforge.build.image.layout import VIEWS
    from liveforge.build.insight.sbom import CYCLONEDX_FILE
    from liveforge.build.verbs.insight import REPORT_FILE

    assert VIEWS == {REPORT_FILE, CYCLONEDX_FILE}


def test_a_broken_sbom_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_text('{"spdxVersion": "SPDX-2.3"')
    with pytest.raises(LiveforgeError, match="not an SPDX document"):
        read_spdx(path)
    with pytest.raises(LiveforgeError, match="does not exist"):
        read_spdx(tmp_path / "none.json")


EXPAT = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
         "Files: *\nCopyright: 2024 t\nLicense: Expat\n")


@pytest.mark.parametrize("copyright,links,licence,note", [
    ({"usr/share/doc/lf-lic/copyright": EXPAT}, {}, "MIT", ""),
    ({"usr/share/doc/lf-lic/copyright": "Free-form text.\n"}, {}, "NOASSERTION",
     "is not machine-readable"),
    ({}, {}, "NOASSERTION", "no proto/usr/share/doc/lf-lic/copyright"),
    # a copyright file leading out of proto/ is not read (the host's /etc/passwd)
    ({}, {"usr/share/doc/lf-lic/copyright": "/etc/passwd"}, "NOASSERTION", "no proto"),
])
def test_deb_licence_from_the_copyright_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             copyright: dict[str, str],
                                             links: dict[str, str], licence: str,
                                             note: str) -> None:
    from liveforge.build.cli import main
    from liveforge.build.kinds import get_kind, known_kinds
    from liveforge.build.workspace import Workspace
    from tests.support.debs import build_deb, index_repo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    repo = tmp_path / "repo"
    repo.mkdir()
    build_deb(repo / "lf-lic_1.0_amd64.deb", "lf-lic", "1.0",
              files={"usr/bin/x": "x\n", **copyright}, links=links)
    index_repo(repo)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "platform.toml").write_text('[platform]\nname = "t"\n\n[components.tools]\n'
                                        'kind = "deb"\npackages = ["lf-lic"]\n')
    (root / "configure-build").write_text(
        f"DEBIAN_MIRROR=file://{repo}\nDEBIAN_SUITES=./\nDEBIAN_TRUSTED=yes\n")
    assert main(["-C", str(root), "configure"]) == 0
    assert main(["-C", str(root), "world"]) == 0
    # the build's events, as --json writes them, in log/build.<stamp>.jsonl
    [log] = (root / "log").glob("build.*.jsonl")
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events == ["stale", "start", "finish"]
    ws = Workspace(root, known_kinds())
    [origin] = get_kind("deb").origins(ws, ws.components["tools"])
    assert (origin.name, origin.version, origin.license) == ("lf-lic", "1.0", licence)
    assert note in origin.note
    assert origin.source == f"file://{repo}/./lf-lic_1.0_amd64.deb" or \
        origin.source.endswith("lf-lic_1.0_amd64.deb")
    assert len(origin.sha256) == 64


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_small_platform_sbom_size_and_timeline(tmp_path: Path, compression: str) -> None:
    """A workspace of a git component (its commit in the SBOM), a plain directory and an
    overlay, its boot archive gzip or zstd: the sizes add up, whoever ships each file."""
    from liveforge.build.image.archive import read_cpio
    from tests.support.cli import cli
    from tests.support.workspaces import LIVE_STAMP, live_workspace

    root = live_workspace(tmp_path / "ws", tmp_path / "upstream")
    toml = root / "platform.toml"
    toml.write_text(toml.read_text().replace('name = "test"', f'name = "test"\n'
                                             f'compression = "{compression}"'))
    assert cli(root, "live", stamp=LIVE_STAMP, pythonpath=True).returncode == 0
    platform = root / "output" / f"platform-{LIVE_STAMP}"
    back = read_spdx(platform / "sbom.spdx.json")
    comp = back.component("comp")
    [origin] = comp.origins
    assert len(origin.commit) == 40 and origin.license == "NOASSERTION"
    assert back.component("plain").origins[0].version.startswith("tree-")
    owners = back.owners()
    assert owners["etc/passwd"] == "overlay" and "boot/vmlinuz" in owners
    proc = cli(root, "size", "--json", pythonpath=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    archive = platform / "x86_64/boot_archive"
    assert sum(r["compressed"] for r in data["rows"]) == archive.stat().st_size
    members = read_cpio(archive)
    assert sum(r["bytes"] for r in data["rows"] if r["name"] != "(archive)") == \
        sum(m.size for m in members.values() if m.kind == "f")
    # the timeline of the build that made it
    line = cli(root, "timeline", pythonpath=True)
    assert line.returncode == 0, line.stderr
    # two independent steps: the critical path holds the one that ended last, not both
    assert ("*comp" in line.stdout) != ("*plain" in line.stdout), line.stdout
    if compression == "gzip":  # bad requests: one line each, never a traceback
        for args, code, message in [
                (("size", "--top", "0"), 2, "--top must be at least 1"),
                (("size", "--diff", "nosuch", f"platform-{LIVE_STAMP}"), 2, "no platform"),
                (("timeline", "20990101T000000Z"), 1, "no event log"),
                (("sbom", "-o", str(tmp_path / "no/such/dir/x.json")), 1, "cannot write"),
                (("sbom", "--format", "xml"), 2, "invalid choice"),
                (("graph", "nosuch"), 2, "no component 'nosuch'")]:
            bad = cli(root, *args, pythonpath=True)
            assert (bad.returncode, "Traceback" in bad.stderr) == (code, False), bad.stderr
            assert message in bad.stderr, bad.stderr
        (platform / "sbom.spdx.json").write_text("{broken")   # (inside the generation)
        bad = cli(root, "size", pythonpath=True)
        assert bad.returncode == 1 and "not an SPDX document" in bad.stderr, bad.stderr
    lint = cli(root, "manifest", "lint", pythonpath=True).stdout
    assert "component 'comp' (comp): license NOASSERTION: no license declared" in lint
    if compression == "gzip":  # a live that built nothing: its timeline names the last build
        (root / "plain" / ".liveforgeignore").write_text("build/\n")  # (its make's output)
        built, later = "20300101T000000Z", "20991231T235959Z"
        assert cli(root, "world", stamp=built, pythonpath=True).returncode == 0
        assert cli(root, "live", stamp=later, pythonpath=True).returncode == 0
        none = cli(root, "timeline", pythonpath=True)
        assert none.returncode == 1 and "Traceback" not in none.stderr
        assert f"nothing was built for {later} (its steps were up to date); the latest " \
            f"build recorded before it is {built}: 'liveforge timeline {built}'" \
            in none.stderr, none.stderr
        assert "*plain" in cli(root, "timeline", built, pythonpath=True).stdout


def test_a_declared_deb_licence_beats_the_copyright_file_and_rebuilds_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``license`` on a deb component is declared: it beats a free-form copyright file. A
    licence is no build input: declaring it leaves every step up to date, and the no-op run
    after it keeps the build's event log (the durations the timeline shows)."""
    from liveforge.build.cli import main
    from liveforge.build.kinds import get_kind, known_kinds
    from liveforge.build.verbs.status import status
    from liveforge.build.workspace import Workspace
    from tests.support.debs import build_deb, index_repo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BUILDSTAMP", STAMP)
    monkeypatch.setenv("LIVEFORGE_CACHE_DIR", str(tmp_path / "steps"))
    repo = tmp_path / "repo"
    repo.mkdir()
    build_deb(repo / "lf-lic_1.0_amd64.deb", "lf-lic", "1.0",
              files={"usr/bin/x": "x\n", "usr/share/doc/lf-lic/copyright": "Free text.\n"})
    index_repo(repo)
    root = tmp_path / "ws"
    root.mkdir()
    toml = root / "platform.toml"
    plain = '[platform]\nname = "t"\n\n[components.tools]\nkind = "deb"\npackages = ["lf-lic"]\n'
    toml.write_text(plain)
    (root / "configure-build").write_text(
        f"DEBIAN_MIRROR=file://{repo}\nDEBIAN_SUITES=./\nDEBIAN_TRUSTED=yes\n")
    assert main(["-C", str(root), "configure"]) == 0
    assert main(["-C", str(root), "world"]) == 0
    log = root / "log" / f"build.{STAMP}.jsonl"
    built = log.read_bytes()
    assert b'"event": "start"' in built and b'"duration"' in built

    def origin() -> Origin:
        ws = Workspace(root, known_kinds())
        assert [r["state"] for r in status(ws)] == ["up to date"]
        [found] = get_kind("deb").origins(ws, ws.components["tools"])
        return found

    assert (origin().license, origin().note) == \
        ("NOASSERTION", "proto/usr/share/doc/lf-lic/copyright is not machine-readable (DEP-5)")
    toml.write_text(plain + 'license = "GPL-2.0-only"\n')
    assert (origin().license, origin().note) == ("GPL-2.0-only", "")
    # the run after the edit builds nothing, and keeps the build's log (no temporary left)
    capsys.readouterr()
    assert main(["-C", str(root), "--json", "world"]) == 0
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert "start" not in events and "restored" not in events
    assert log.read_bytes() == built
    assert sorted(p.name for p in log.parent.iterdir() if p.name.startswith(".")) == []
    # a bad declared licence: one line naming platform.toml's line
    toml.write_text(plain + 'license = "GPL-2.0-only OR"\n')
    assert main(["-C", str(root), "status"]) != 0
    err = capsys.readouterr().err
    assert "platform.toml:7:" in err and "'GPL-2.0-only OR' is incomplete" in err
    assert "Traceback" not in err


def test_an_event_log_is_kept_from_runs_that_did_not_build(tmp_path: Path) -> None:
    """The event log is written to a temporary and replaces the file only when the run
    emitted one of the events that keep it; a dead run's temporary goes with the next run."""
    from liveforge.util.events import EventLog, Reporter

    log = tmp_path / "log" / "build.x.jsonl"
    quiet = Reporter(verbose=-1)
    with EventLog(quiet, log, keep=("start",)) as reporter:
        reporter.emit("start", component="a")
        reporter.emit("finish", component="a", duration=1.0)
    first = log.read_text()
    assert [json.loads(line)["event"] for line in first.splitlines()] == ["start", "finish"]
    dead = log.parent / ".build.x.jsonl.lf-tmp-999999999"   # no such process
    dead.write_text("half\n")
    with EventLog(quiet, log, keep=("start",)) as reporter:
        reporter.emit("step", text="assembling")
    assert log.read_text() == first and not dead.exists()
    assert [p.name for p in log.parent.iterdir()] == ["build.x.jsonl"]
    with EventLog(quiet, log) as reporter:  # no keep: every run replaces it
        reporter.emit("step", text="assembling")
    assert '"step"' in log.read_text() and '"start"' not in log.read_text()
