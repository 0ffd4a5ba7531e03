"""``liveforge live``: world, then the platform assembled from manifests, overlays and proto.

The recipe reads as its steps::

    world -> combine manifests -> version files -> resolve -> write platform
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liveforge.build.image.assemble import Image, resolve
from liveforge.build.image.manifest import write_manifest
from liveforge.build.image.platform import LATEST, gitstatus, kernel_file, write_platform
from liveforge.build.image.version import record_stamp, write_version_dir
from liveforge.build.insight.bom import gather
from liveforge.build.insight.sbom import SPDX_FILE, spdx_json
from liveforge.build.verbs.manifest import (
    combine_manifests,
    generated_dir,
    search_path,
    workspace_version_files,
)
from liveforge.build.verbs.world import world
from liveforge.build.workspace import Workspace
from liveforge.util.events import Reporter


@dataclass(frozen=True, slots=True)
class LiveResult:
    platform: Path
    tarball: Path
    latest: Path
    root_tarball: Path | None = None


def live(ws: Workspace, reporter: Reporter, stamp: str, strict: bool = False,
         root_tarball: bool = False) -> LiveResult:
    world(ws, reporter, stamp)
    manifest = combine_manifests(ws, reporter, strict)
    write_manifest(manifest, ws.root / "manifest.gen")
    files = workspace_version_files(ws, stamp)
    generated = write_version_dir(files, generated_dir(ws))
    record_stamp(ws.proto, stamp)
    image = resolve(manifest, search=search_path(ws, generated), strict=strict,
                    warn=reporter.warn)
    return write_outputs(ws, image, stamp, reporter, root_tarball=root_tarball)


def write_outputs(ws: Workspace, image: Image, stamp: str, reporter: Reporter,
                  root_tarball: bool = False) -> LiveResult:
    """Boot archive, kernel, hash, manifest, gitstatus, the tarball of the platform directory
    (and with ``root_tarball`` one of the image root) and the latest links."""
    dirname = ws.platform_dirname(stamp)
    reporter.step("making the SBOM")
    sbom = spdx_json(gather(ws, image, stamp))
    reporter.step(f"writing {dirname} ({len(image.entries)} entries)")
    trees = [spec.path for spec in ws.components.values() if spec.path is not None]
    kernel = kernel_file(image, ws.platform.kernel)
    platform = write_platform(ws.output_dir, dirname, image, stamp=stamp, kernel_path=kernel,
                              gitstatus=gitstatus(trees, ws.root),
                              compression=ws.platform.compression, arch=ws.platform.arch,
                              boot_archive_skip=frozenset({kernel, ws.platform.kernel}),
                              root_tarball=root_tarball, extras={SPDX_FILE: sbom})
    result = LiveResult(platform=platform, tarball=ws.output_dir / f"{dirname}.tgz",
                        latest=ws.output_dir / LATEST,
                        root_tarball=ws.output_dir / f"{dirname}-root.tgz" if root_tarball
                        else None)
    extra = {"root_tarball": str(result.root_tarball)} if result.root_tarball else {}
    reporter.emit("platform", path=str(result.platform), tarball=str(result.tarball),
                  latest=str(result.latest), stamp=stamp, **extra)
    return result

