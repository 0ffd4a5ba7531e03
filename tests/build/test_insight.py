"""Looking inside the demo platform: licences, the SBOM (validated by the SPDX and CycloneDX
libraries' own validators), sizes, the timeline, the graph and the report (in headless
Chromium). The demo is built once per session (the ``demo`` fixture)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from liveforge.build.image.archive import read_cpio
from tests.support import REPO
from tests.support.demo import STAMP, lf

pytestmark = [pytest.mark.slow, pytest.mark.network]


def platform_of(ws: Path) -> Path:
    return ws / "output" / f"platform-{STAMP}"


def test_sbom_is_valid_spdx(demo: Path) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = platform_of(demo) / "sbom.spdx.json"
    document = parse_file(str(path))
    problems = validate_full_spdx_document(document)
    print(f"spdx-tools validate_full_spdx_document({path.name}): {len(problems)} problems")
    assert problems == []
    data = json.loads(path.read_text())
    assert data["spdxVersion"] == "SPDX-2.3"
    assert data["creationInfo"]["created"] == "2026-11-29T10:15:00Z"
    assert data["documentNamespace"].endswith(f"/demo-{STAMP}")
    packages = {p["name"]: p for p in data["packages"] if p["SPDXID"].startswith(
        "SPDXRef-Component-")}
    origins = {p["name"]: p for p in data["packages"] if p["SPDXID"].startswith(
        "SPDXRef-Origin-")}
    assert origins["busybox-static"]["versionInfo"] == "1:1.35.0-4+deb12u1+b1"
    assert origins["zlib"]["downloadLocation"].endswith("/zlib_1.2.13.dfsg.orig.tar.bz2")
    assert {"kernel", "busybox", "extra", "src", "platinfo", "overlay/generic"} <= set(packages)
    assert packages["extra"]["licenseDeclared"] == "Zlib"
    assert packages["extra"]["checksums"][0]["checksumValue"] == \
        "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1"
    assert packages["src"]["licenseDeclared"] == "MIT"
    assert packages["kernel"]["licenseDeclared"].startswith("GPL-2.0-only")  # from DEP-5
    # busybox's copyright file is no DEP-5: platform.toml declares its licence
    assert packages["busybox"]["licenseDeclared"] == "GPL-2.0-only"
    assert origins["busybox-static"]["licenseDeclared"] == "GPL-2.0-only"
    assert "licenseComments" not in packages["busybox"]
    # a file per shipped regular file, with the sha256 of what the boot archive holds
    members = read_cpio(platform_of(demo) / "x86_64/boot_archive")
    files = {f["fileName"][2:]: f for f in data["files"]}
    for path_, member in members.items():
        if member.kind in ("f", "h"):
            sums = {c["algorithm"]: c["checksumValue"] for c in files[path_]["checksums"]}
            assert sums["SHA256"] == member.sha256, path_
    ids = {f["SPDXID"]: name for name, f in files.items()}
    owner = {ids[r["relatedSpdxElement"]]: r["spdxElementId"] for r in data["relationships"]
             if r["relationshipType"] == "CONTAINS" and r["relatedSpdxElement"] in ids}
    assert owner["usr/bin/platinfo"] == packages["platinfo"]["SPDXID"]
    assert owner["etc/passwd"] == packages["overlay/generic"]["SPDXID"]
    assert owner.keys() == files.keys()


def test_sbom_cyclonedx_is_valid(demo: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = lf(demo, "sbom", "--format", "cyclonedx").stdout
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    print(f"cyclonedx JsonStrictValidator(1.6): {errors or 'valid'}")
    assert errors is None
    data = json.loads(text)
    assert data["metadata"]["timestamp"] == "2026-11-29T10:15:00+00:00"
    names = {c["name"]: c for c in data["components"]}
    assert names["extra"]["licenses"] == [{"expression": "Zlib"}]
    origin = next(c for c in names["busybox"]["components"] if c["type"] != "file")
    assert origin["name"] == "busybox-static"
    assert origin["purl"].startswith("pkg:deb/debian/busybox-static@1:1.35.0")
    spdx = json.loads(lf(demo, "sbom").stdout)
    assert len(spdx["files"]) == sum(1 for c in data["components"]
                                     for inner in c.get("components", [])
                                     if inner["type"] == "file")


def test_sbom_of_two_builds_of_one_stamp_is_byte_identical(demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again"
    shutil.copytree(demo, copy, symlinks=True)
    shutil.rmtree(copy / "output")
    lf(copy, "live")
    name = f"output/platform-{STAMP}/sbom.spdx.json"
    assert (copy / name).read_bytes() == (demo / name).read_bytes()


def test_size_adds_up_to_the_archive(demo: Path) -> None:
    data = json.loads(lf(demo, "size", "--json").stdout)
    archive = platform_of(demo) / "x86_64/boot_archive"
    members = read_cpio(archive)
    shipped = sum(m.size for m in members.values() if m.kind == "f")
    rows = {r["name"]: r for r in data["rows"]}
    assert sum(r["bytes"] for n, r in rows.items() if n != "(archive)") == shipped
    assert sum(r["compressed"] for r in data["rows"]) == archive.stat().st_size
    assert data["archive_bytes"] == archive.stat().st_size
    assert rows["busybox"]["files"] == 1 and rows["busybox"]["bytes"] == \
        members["bin/busybox"].size
    assert "kernel" not in rows  # it boots beside the archive
    assert data["kernel_bytes"] == (platform_of(demo) / "x86_64/vmlinuz").stat().st_size
    assert data["kernel_component"] == "kernel"
    top = lf(demo, "size", "--by", "file", "--top", "2").stdout.splitlines()
    assert top[1].startswith("bin/busybox") and len(top) == 4
    by_dir = json.loads(lf(demo, "size", "--by", "dir", "--json").stdout)["rows"]
    assert {r["name"] for r in by_dir} >= {"bin", "usr/bin", "usr/lib/32"}


def test_size_diff_names_what_grew(demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "grown"
    shutil.copytree(demo, copy, symlinks=True)
    profile = copy / "overlay/generic/etc/profile"
    profile.write_text(profile.read_text() + "# " + "x" * 5000 + "\n")
    lf(copy, "live", stamp="20261130T000000Z")
    out = json.loads(lf(copy, "--json", "size", "--diff", f"platform-{STAMP}",
                        "platform-20261130T000000Z").stdout)
    # the component that grew, by exactly what it grew (the archive's own bytes: the padding
    # of its last block changes with it)
    assert [(r["name"], r["delta"]) for r in out["rows"] if r["name"] != "(archive)"] == \
        [("overlay/generic", 5003)]
    text = lf(copy, "size", "--diff", f"platform-{STAMP}", "platform-20261130T000000Z").stdout
    assert "overlay/generic" in text and "5.0 kB" in text
    # the report of the new platform holds the same difference, against the one before it;
    # `make report` writes it and prints where
    make = subprocess.run(["make", "-s", "-C", str(REPO), "report", f"WS={copy}"],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "BUILDSTAMP": STAMP})
    report = copy / "output/platform-20261130T000000Z/report.html"
    assert make.stdout == f"{report}\n"
    html = report.read_text()
    diff = html[html.index('id="diff"'):html.index('id="sbom"')]
    assert f"Against platform-{STAMP}" in diff
    assert "<td>overlay/generic</td><td class=\"n\">376 B</td><td class=\"n\">5.4 kB</td>" \
        "<td class=\"n\">5.0 kB</td>" in diff


def test_timeline_matches_the_events(demo: Path) -> None:
    events = [json.loads(line) for line in
              (demo / "log" / f"build.{STAMP}.jsonl").read_text().splitlines()]
    starts = {e["component"]: e["time"] for e in events if e["event"] == "start"}
    ends = {e["component"]: e["time"] for e in events if e["event"] == "finish"}
    assert set(starts) == {"kernel", "busybox", "extra:strap", "extra", "src", "platinfo"}
    line = json.loads(lf(demo, "timeline", "--format", "json").stdout)
    t0 = min(e["time"] for e in events)
    bars = {b["name"]: b for b in line["bars"] if b["kind"] == "step"}
    assert set(bars) == set(starts)
    for name, bar in bars.items():
        assert bar["start"] == pytest.approx(starts[name] - t0, abs=0.002)
        assert bar["end"] == pytest.approx(ends[name] - t0, abs=0.002)
    # the critical path ends at the step that ended last and runs through its dependencies
    chain = [b["name"] for b in line["bars"] if b["critical"] and b["kind"] == "step"]
    assert max(bars.values(), key=lambda b: b["end"])["name"] in chain
    if "platinfo" in chain:
        assert "extra" in chain or "extra:strap" in chain
    assert max(c for _, c in line["parallel"]) >= 1
    assert [b["name"] for b in line["bars"] if b["kind"] == "assembly"][-1].startswith(
        "writing platform-")
    svg = lf(demo, "timeline", "--format", "svg").stdout
    assert svg.startswith("<svg") and svg.count("<g id=\"patch_") >= len(bars)
    assert svg == lf(demo, "timeline", "--format", "svg").stdout  # the same bytes


def test_graph_marks_stale_steps(demo: Path, tmp_path: Path) -> None:
    text = lf(demo, "graph").stdout
    assert '"extra" -> "platinfo";' in text and "stale" not in text
    copy = tmp_path / "touched"
    shutil.copytree(demo, copy, symlinks=True)
    (copy / "projects/src/Makefile").write_text((copy / "projects/src/Makefile").read_text()
                                                + "\n# changed\n")
    stale = lf(copy, "graph").stdout
    assert '"src" [label="src\\nmake\\nstale", fillcolor="#ffd27f", tooltip="src: stale ' \
        '(source changed)"' in stale
    one = lf(copy, "graph", "platinfo").stdout
    assert '"platinfo"' in one and '"src"' not in one and '"busybox"' not in one
    svg = lf(copy, "graph", "--format", "svg").stdout
    assert svg.startswith("<svg") and "source changed" in svg
    bad = lf(copy, "graph", "nosuch", check=False)
    assert bad.returncode == 2 and "no component 'nosuch'" in bad.stderr


def test_report_in_headless_chromium(demo: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    out = lf(demo, "report").stdout.strip()
    report = platform_of(demo) / "report.html"
    assert out == str(report)
    html = report.read_text()
    assert "<script" not in html and "<link" not in html and " src=" not in html
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(report.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        # the page loaded nothing but itself
        assert driver.execute_script(
            "return performance.getEntriesByType('resource').length") == 0
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('.chart svg')).map(function(s) {"
            " var r = s.getBoundingClientRect(); return [s.parentNode.id, r.width, r.height];})")
        assert [s[0] for s in sizes] == ["chart-graph", "chart-timeline", "chart-size"]
        assert all(w > 50 and h > 50 for _, w, h in sizes), sizes
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#components ~ table tr'))"
            ".slice(1, 7).map(function(r) { return r.cells[0].textContent; })")
        assert set(rows) == {"kernel", "busybox", "extra", "src", "platinfo",
                             "overlay/generic"}
        # the kernel is shown by its file's bytes, with why it has no share of the archive
        kernel_row = driver.execute_script(
            "return Array.from(document.querySelectorAll('#components ~ table tr'))"
            ".filter(function(r) { return r.cells[0].textContent == 'kernel'; })"
            ".map(function(r) { return Array.from(r.cells).map(function(c) {"
            " return c.textContent; }); })[0]")
        kernel_bytes = (platform_of(demo) / "x86_64/vmlinuz").stat().st_size
        from liveforge.build.insight.size import human

        assert kernel_row[4:6] == ["1", f"{human(kernel_bytes)} (the kernel, beside the boot "
                                        "archive)"], kernel_row
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(int(height) + 400, 8000))
        shot = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "liveforge-report.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10000
    finally:
        driver.quit()
    for name in ("sbom.spdx.json", "sbom.cdx.json"):
        assert f'href="{name}"' in html and (platform_of(demo) / name).is_file()
    # the report's files are views: the media made afterwards do not change because of them
    from liveforge.build.media.layout import platform_files

    dests = [f.dest for f in platform_files(platform_of(demo), STAMP, "x86_64")]
    assert "platform/sbom.spdx.json" in dests
    assert "platform/report.html" not in dests and "platform/sbom.cdx.json" not in dests


def test_licence_errors_name_the_file_and_line(tmp_path: Path) -> None:
    from tests.support.demo import copy_demo

    ws = copy_demo(tmp_path / "ws")
    toml = ws / "platform.toml"
    toml.write_text(toml.read_text().replace('path = "projects/src"\nlicense = "MIT"',
                                             'path = "projects/src"\nlicense = "MIT OR"'))
    proc = lf(ws, "status", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    line = toml.read_text().splitlines().index('license = "MIT OR"') + 1
    assert f"platform.toml:{line}:" in proc.stderr and "'MIT OR' is incomplete" in proc.stderr
    package = ws / "projects/extra/zlib/package.toml"
    toml.write_text(toml.read_text().replace('"MIT OR"', '"MIT"'))
    package.write_text(package.read_text().replace('license = "Zlib"', "license = 3"))
    proc = lf(ws, "status", check=False)
    assert proc.returncode != 0 and "package.toml" in proc.stderr and \
        "license must be a string" in proc.stderr


def test_manifest_lint_warns_of_unknown_licences(demo: Path, tmp_path: Path) -> None:
    # the demo declares busybox's licence (its copyright file is free-form): no warning
    proc = lf(demo, "manifest", "lint", check=False)
    assert "license" not in proc.stdout + proc.stderr
    copy = tmp_path / "undeclared"
    shutil.copytree(demo, copy, symlinks=True)
    toml = copy / "platform.toml"
    text = toml.read_text()
    assert '\nlicense = "GPL-2.0-only"' in text
    toml.write_text(text.replace('\nlicense = "GPL-2.0-only"', "\n", 1))
    proc = lf(copy, "manifest", "lint", check=False)
    assert "warning: component 'busybox' (busybox-static): license NOASSERTION: " \
        "proto/usr/share/doc/busybox-static/copyright is not machine-readable" in proc.stdout
    assert "'kernel'" not in proc.stdout and "'src'" not in proc.stdout


def licences(platform: Path) -> dict[str, str]:
    data = json.loads((platform / "sbom.spdx.json").read_text())
    return {p["name"]: p["licenseDeclared"] for p in data["packages"]}


def test_a_licence_edit_rebuilds_nothing_and_reaches_the_sbom(demo: Path, tmp_path: Path) -> None:
    """A licence is no build input: changing one in platform.toml (a make and a deb
    component) and in an extra package's package.toml leaves every step up to date, and
    ``live`` restores and builds nothing, yet writes the new licences into the SBOM."""
    copy = tmp_path / "relicensed"
    shutil.copytree(demo, copy, symlinks=True)
    before = licences(platform_of(copy))
    assert (before["src"], before["busybox-static"], before["zlib"]) == \
        ("MIT", "GPL-2.0-only", "Zlib")
    toml = copy / "platform.toml"
    text = toml.read_text()
    text = text.replace('path = "projects/src"\nlicense = "MIT"',
                        'path = "projects/src"\nlicense = "MIT OR Apache-2.0"')
    text = text.replace('license = "GPL-2.0-only"', 'license = "GPL-2.0-or-later"')
    toml.write_text(text)
    package = copy / "projects/extra/zlib/package.toml"
    package.write_text(package.read_text().replace('license = "Zlib"', 'license = "Zlib OR MIT"'))
    rows = json.loads(lf(copy, "--json", "status").stdout)
    assert {r["component"]: r["state"] for r in rows} == \
        {r["component"]: "up to date" for r in rows}, rows
    events = [json.loads(line) for line in lf(copy, "--json", "live").stdout.splitlines()]
    assert not [e for e in events if e["event"] in ("start", "restored", "stale")], events
    after = licences(platform_of(copy))
    assert (after["src"], after["busybox-static"], after["zlib"]) == \
        ("MIT OR Apache-2.0", "GPL-2.0-or-later", "Zlib OR MIT")


def test_a_run_that_builds_nothing_keeps_the_build_log(demo: Path, tmp_path: Path) -> None:
    """A second ``live`` of the same BUILDSTAMP that builds nothing keeps the build's event
    log, so the timeline still shows the steps and how long they took; a run that builds
    something replaces it."""
    copy = tmp_path / "again"
    shutil.copytree(demo, copy, symlinks=True)
    log = copy / "log" / f"build.{STAMP}.jsonl"
    built = log.read_bytes()
    steps = {json.loads(line)["component"] for line in built.splitlines()
             if json.loads(line)["event"] == "finish"}
    assert {"kernel", "busybox", "src", "platinfo"} <= steps
    lf(copy, "live")
    assert log.read_bytes() == built
    bars = {b["name"] for b in json.loads(lf(copy, "timeline", "--json").stdout)["bars"]}
    assert steps <= bars
    assert [p.name for p in log.parent.iterdir() if p.name.startswith(".")] == []
    (copy / "projects/src/Makefile").write_text((copy / "projects/src/Makefile").read_text()
                                                + "\n# changed\n")
    lf(copy, "live")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["component"] for e in events if e["event"] in ("start", "restored")} == {"src"}


def test_insight_verbs_without_a_platform_say_so(tmp_path: Path) -> None:
    from tests.support.demo import copy_demo

    ws = copy_demo(tmp_path / "fresh")
    for verb in ("sbom", "size", "report", "timeline"):
        proc = lf(ws, verb, check=False)
        assert proc.returncode == 1 and "no platform built yet" in proc.stderr, verb
