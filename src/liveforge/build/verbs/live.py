"""``liveforge live``: world, then the platform assembled from manifests, overlays and proto.

The recipe reads as its steps::

    world -> combine manifests -> version files -> resolve -> write platform
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.buildstamp import buildstamp_now
from liveforge.build.image.assemble import Image, SearchPath, resolve
from liveforge.build.image.manifest import Manifest, combine, manifest_files, write_manifest
from liveforge.build.image.platform import gitstatus, write_platform
from liveforge.build.verbs.world import world
from liveforge.build.workspace import Workspace
from liveforge.util import toml as tomlpos
from liveforge.util.errors import InputError, InputErrors, LiveforgeError
from liveforge.util.events import Reporter
from liveforge.util.fileio import read_text, write_atomic


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
    image = resolve(manifest, search=search_path(ws, stamp), strict=strict, warn=reporter.warn)
    return write_outputs(ws, image, stamp, reporter, root_tarball=root_tarball)


def search_path(ws: Workspace, stamp: str) -> list[Path]:
    """Where shipped files are found: the build's version files, the overlays in order, proto."""
    return [write_version_files(ws, stamp), *ws.overlay_dirs(), ws.proto]


def last_stamp(ws: Workspace) -> str:
    """The buildstamp of the last assembly (proto/buildstamp), else a new one."""
    try:
        return (ws.proto / "buildstamp").read_text().strip()
    except OSError:
        return buildstamp_now()


def combine_manifests(ws: Workspace, reporter: Reporter, strict: bool = False) -> Manifest:
    """manifest.d/* in name order, then each overlay's manifest; written to manifest.gen."""
    reporter.step("combining manifests")
    env = {**ws.build_config, **ws.build_env}
    manifest = combine(manifest_files(ws.manifest_d, ws.overlay_dirs()), env, strict,
                       reporter.warn)
    write_manifest(manifest, ws.root / "manifest.gen")
    return manifest


def write_version_files(ws: Workspace, stamp: str) -> Path:
    """A search directory searched first, holding what only the build knows: the buildstamp
    (``etc/version/platform``) and templates (``etc/release``) with ``@NAME@``, ``@STAMP@``
    and ``@PLATFORM@`` filled in. Also records the stamp in ``proto/buildstamp``.

    A template is found like any shipped file (:class:`SearchPath`: the overlays in order,
    then proto; a symlink leading outside its directory is refused); one no longer listed or
    no longer found is removed."""
    generated = ws.state_dir / "generated"
    (generated / "etc" / "version").mkdir(parents=True, exist_ok=True)
    write_atomic(generated / "etc" / "version" / "platform", stamp + "\n")
    ws.proto.mkdir(parents=True, exist_ok=True)
    write_atomic(ws.proto / "buildstamp", stamp + "\n")
    values = {"@NAME@": ws.platform.name, "@STAMP@": stamp,
              "@PLATFORM@": ws.platform_dirname(stamp)}
    search = SearchPath([*ws.overlay_dirs(), ws.proto])
    written = {"etc/version/platform"}
    errors: list[InputError] = []
    for template in ws.platform.templates:
        found = search.find(template)
        if isinstance(found, str):
            line = tomlpos.value_line(read_text(ws.toml_path), "platform", "templates",
                                      template)
            errors.append(InputError(f"template {template!r}: {found}", ws.toml_path, line))
            continue
        if found is None:
            continue
        text = read_text(found[0])
        for mark, value in values.items():
            text = text.replace(mark, value)
        out = generated / template
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, text)
        written.add(template)
    _remove_others(generated, written)
    if errors:
        raise InputErrors(errors)
    return generated


def _remove_others(top: Path, keep: set[str]) -> None:
    """Remove every file under ``top`` but those in ``keep``, then the emptied directories."""
    for dirpath, _dirs, files in os.walk(top, topdown=False):
        relative = os.path.relpath(dirpath, top)
        for name in files:
            if posixpath.normpath(posixpath.join(relative, name)) not in keep:
                os.unlink(os.path.join(dirpath, name))
        if dirpath != str(top) and not os.listdir(dirpath):
            os.rmdir(dirpath)


def kernel_file(image: Image, path: str) -> str:
    """The image path of the kernel file, following symlinks within the image."""
    entries = image.by_path()
    seen: set[str] = set()
    while path in entries and entries[path].kind == "s" and path not in seen:
        seen.add(path)
        target = entries[path].target
        path = posixpath.normpath(target.lstrip("/") if target.startswith("/")
                                  else posixpath.join(posixpath.dirname(path), target))
    if path not in entries:
        raise InputError(f"the kernel {path!r} ([platform] kernel) is not in the image")
    return path


def write_outputs(ws: Workspace, image: Image, stamp: str, reporter: Reporter,
                  root_tarball: bool = False) -> LiveResult:
    """Boot archive, kernel, hash, manifest, gitstatus, the tarball of the platform directory
    (and with ``root_tarball`` one of the image root) and the latest links."""
    dirname = ws.platform_dirname(stamp)
    reporter.step(f"writing {dirname} ({len(image.entries)} entries)")
    trees = [spec.path for spec in ws.components.values() if spec.path is not None]
    kernel = kernel_file(image, ws.platform.kernel)
    platform = write_platform(ws.output_dir, dirname, image, stamp=stamp, kernel_path=kernel,
                              gitstatus=gitstatus(trees, ws.root),
                              compression=ws.platform.compression, arch=ws.platform.arch,
                              boot_archive_skip=frozenset({kernel, ws.platform.kernel}),
                              root_tarball=root_tarball)
    result = LiveResult(platform=platform, tarball=ws.output_dir / f"{dirname}.tgz",
                        latest=ws.output_dir / "platform-latest",
                        root_tarball=ws.output_dir / f"{dirname}-root.tgz" if root_tarball
                        else None)
    extra = {"root_tarball": str(result.root_tarball)} if result.root_tarball else {}
    reporter.emit("platform", path=str(result.platform), tarball=str(result.tarball),
                  latest=str(result.latest), stamp=stamp, **extra)
    return result


def latest_platform(ws: Workspace) -> tuple[Path, str]:
    """The platform ``platform-latest`` points at, and its buildstamp."""
    latest = ws.output_dir / "platform-latest"
    version = latest / "etc" / "version" / "platform"
    if not version.is_file():
        raise LiveforgeError(f"no platform built yet in {ws.root}: run 'liveforge live' "
                             "(or 'make live') first")
    return latest.resolve(), version.read_text().strip()
