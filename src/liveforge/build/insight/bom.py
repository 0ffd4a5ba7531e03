"""What a platform is made of, as data: its components (with their origins and licences) and
every regular file it ships, with its digests and the component that ships it.

:func:`gather` makes it at assembly, from the workspace and the resolved image; the SBOM
(:mod:`.sbom`) is this data in SPDX, and every reader (``sbom``, ``size``, ``report``) reads it
back from the platform's ``sbom.spdx.json``, so they all see what shipped, not what the
workspace holds now.

A file belongs to the component whose manifest ships it (``manifest.d/<component>.manifest``);
a file an overlay's manifest ships belongs to the overlay, a package of kind ``overlay`` with
the ``[platform] license``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liveforge.build.kinds import get_kind
from liveforge.build.kinds.base.origin import Origin
from liveforge.util.hashing import file_digests

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from liveforge.build.image.assemble import Image
    from liveforge.build.workspace import Workspace

OVERLAY_KIND = "overlay"


@dataclass(frozen=True, slots=True)
class Component:
    """A component (or an overlay) of the platform."""

    name: str
    kind: str
    origins: tuple[Origin, ...]
    depends: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return ", ".join(dict.fromkeys(o.version for o in self.origins)) or "NOASSERTION"

    @property
    def license(self) -> str:
        """The conjunction of the origins' licences; NOASSERTION when one of them is."""
        licences = list(dict.fromkeys(o.license for o in self.origins))
        if not licences or "NOASSERTION" in licences:
            return "NOASSERTION"
        if len(licences) == 1:
            return licences[0]
        return " AND ".join(f"({x})" if " " in x else x for x in licences)


@dataclass(frozen=True, slots=True)
class ShippedFile:
    """A regular file of the image (a hard link too: it is one), and who ships it."""

    path: str
    component: str
    sha1: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Bom:
    """A platform's bill of materials."""

    platform: str                      # the platform's name
    stamp: str                         # its buildstamp
    components: tuple[Component, ...]  # in platform.toml order, then the overlays
    files: tuple[ShippedFile, ...]     # sorted by path

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def owners(self) -> dict[str, str]:
        """Image path -> the component shipping it."""
        return {f.path: f.component for f in self.files}


def overlay_name(ws: Workspace, directory: Path) -> str:
    return directory.relative_to(ws.root).as_posix() if directory.is_relative_to(ws.root) \
        else directory.name


def gather(ws: Workspace, image: Image, stamp: str) -> Bom:
    """The bill of materials of ``image``, a build of ``ws`` stamped ``stamp``."""
    components = [Component(spec.name, spec.kind,
                            tuple(get_kind(spec.kind).origins(ws, spec)), spec.depends)
                  for spec in ws.components.values()]
    manifests = {str(ws.manifest_d / f"{c.name}.manifest"): c.name for c in components}
    for overlay in ws.overlay_dirs():
        name = overlay_name(ws, overlay)
        manifests[str(overlay / "manifest")] = name
        components.append(Component(name, OVERLAY_KIND, (Origin(
            name=name, version=stamp, license=ws.platform.license,
            note="" if ws.platform.license != "NOASSERTION" else
            "platform.toml's [platform] declares no license"),)))
    entries = image.by_path()
    files: list[ShippedFile] = []
    digests: dict[str, tuple[str, str]] = {}
    for entry in image.entries:
        if entry.kind not in ("f", "h") or entry.entry is None:
            continue
        source = entries[entry.target] if entry.kind == "h" else entry
        if source.path not in digests:
            assert source.source is not None
            sha1, sha256 = file_digests(source.source, "sha1", "sha256")
            digests[source.path] = (sha1, sha256)
        sha1, sha256 = digests[source.path]
        owner = manifests.get(str(Path(entry.entry.file)), Path(entry.entry.file).stem)
        files.append(ShippedFile(entry.path, owner, sha1, sha256))
    return Bom(ws.platform.name, stamp, tuple(components),
               tuple(sorted(files, key=lambda f: f.path)))
