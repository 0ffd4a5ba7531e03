"""Names that are not UTF-8 where the user chooses them: the workspace's own path. What
liveforge writes that holds such a name holds its bytes; nothing crashes on it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cli import cli
from tests.support.workspaces import LIVE_STAMP, live_workspace


def test_the_report_of_a_workspace_whose_path_is_not_utf8(tmp_path: Path) -> None:
    root = live_workspace(tmp_path / os.fsdecode(b"ws-\xff"), tmp_path / "upstream")
    (root / "plain" / ".liveforgeignore").write_text("build/\n")   # its make's output
    cli(root, "live", stamp=LIVE_STAMP, check=True)
    # a second platform that built nothing: it has no event log, which the report says,
    # naming the log by its path (its bytes)
    cli(root, "live", stamp="20250101T000000Z", check=True)
    proc = cli(root, "report")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    page = (root / "output/platform-20250101T000000Z/report.html").read_bytes()
    assert b"no event log " + os.fsencode(root) + b"/log/build.20250101T000000Z.jsonl" in page
