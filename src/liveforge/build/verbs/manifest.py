"""The workspace's manifests: combined for ``live``, linted and shown for ``manifest`` and
``check``.

``manifest lint|show`` and ``check`` are read-only: they write nothing in the workspace. They
see what ``live`` would ship for the last buildstamp, its version files (image/version.py)
written to a private temporary directory searched where ``live`` searches
``.liveforge/generated``; ``manifest.gen`` is written by ``live`` only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from liveforge.build.image.lint import LintReport, ShowRow, lint, show
from liveforge.build.image.manifest import Manifest, combine, manifest_files
from liveforge.build.image.version import (
    GENERATED_DIR,
    last_stamp,
    version_files,
    write_version_dir,
)
from liveforge.build.workspace import Workspace
from liveforge.util.events import Reporter


def combine_manifests(ws: Workspace, reporter: Reporter, strict: bool = False) -> Manifest:
    """manifest.d/* in name order, then each overlay's manifest, variables filled in from
    build.config and build.env."""
    reporter.step("combining manifests")
    env = {**ws.build_config, **ws.build_env}
    return combine(manifest_files(ws.manifest_d, ws.overlay_dirs()), env, strict,
                   reporter.warn)


def workspace_version_files(ws: Workspace, stamp: str) -> dict[str, str]:
    """The version files of a build of ``ws`` stamped ``stamp``, image path -> text."""
    return version_files(stamp, name=ws.platform.name, dirname=ws.platform_dirname(stamp),
                         templates=ws.platform.templates,
                         search=[*ws.overlay_dirs(), ws.proto], toml_path=ws.toml_path)


def search_path(ws: Workspace, generated: Path) -> list[Path]:
    """Where shipped files are found: the build's version files (in ``generated``), the
    overlays in order, proto."""
    return [generated, *ws.overlay_dirs(), ws.proto]


def generated_dir(ws: Workspace) -> Path:
    """Where ``live`` writes the version files."""
    return ws.state_dir / GENERATED_DIR


@contextmanager
def _last_search_path(ws: Workspace) -> Iterator[list[Path]]:
    """The search path of the last assembly, its version files in a private temporary
    directory (removed on leaving)."""
    files = workspace_version_files(ws, last_stamp(ws.proto))
    with tempfile.TemporaryDirectory(prefix="liveforge-version.") as tmp:
        yield search_path(ws, write_version_dir(files, Path(tmp)))


def lint_manifests(ws: Workspace, reporter: Reporter, strict: bool = False) -> LintReport:
    """``manifest lint``: the combined manifest checked against the search path and proto."""
    manifest = combine_manifests(ws, reporter, strict)
    with _last_search_path(ws) as search:
        report = lint(manifest, search, ws.proto)
    return replace(report, licences=tuple(unknown_licences(ws)))


def unknown_licences(ws: Workspace) -> list[str]:
    """Each origin of a component whose licence is NOASSERTION, and why (the SBOM says
    NOASSERTION for it)."""
    from liveforge.build.kinds import get_kind

    problems = []
    for spec in ws.components.values():
        for origin in get_kind(spec.kind).origins(ws, spec):
            if origin.license == "NOASSERTION":
                why = origin.note or "no license declared"
                problems.append(f"component {spec.name!r} ({origin.name}): license "
                                f"NOASSERTION: {why}")
    return problems


def show_manifests(ws: Workspace, reporter: Reporter, strict: bool = False) -> list[ShowRow]:
    """``manifest show``: each entry, the manifest it came from and the directory delivering
    it (the version files named by where ``live`` writes them)."""
    manifest = combine_manifests(ws, reporter, strict)
    with _last_search_path(ws) as search:
        rows = show(manifest, search)
    private, shown = str(search[0]), str(generated_dir(ws))
    return [replace(row, search_dir=shown) if row.search_dir == private else row
            for row in rows]
