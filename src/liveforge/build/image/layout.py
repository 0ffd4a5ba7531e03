"""The platform directory's layout, defined once for any architecture.

``<D>`` being the platform's name (``platform-<STAMP>``) and ``<arch>`` the workspace's
``[platform] arch`` (checked against config.ARCHES when platform.toml is loaded)::

    <D>/<arch>/vmlinuz                  the image's kernel, copied out
    <D>/<arch>/boot_archive             cpio newc, gzip (or zstd)
    <D>/<arch>/boot_archive.hash        sha1 of boot_archive
    <D>/<arch>/boot_archive.manifest    md5 of each shipped file (md5sum format)
    <D>/<arch>/boot_archive.gitstatus   JSON list of component repos
    <D>/etc/version/platform            the buildstamp, as in the image

:class:`PlatformLayout` names these files relative to the platform directory; each place that
holds a platform puts them under its own root: ``output/<D>/`` (image/platform.py), the boot
media's ``platform/`` (media/layout.py), the netboot script's ``<D>/`` (media/pxe.py) and the
platform directory a direct boot reads (media/boot.py).
"""

from __future__ import annotations

from dataclasses import dataclass

#: the buildstamp's file, in the image and in the platform directory
VERSION = "etc/version/platform"
KERNEL = "vmlinuz"
BOOT_ARCHIVE = "boot_archive"
# files `liveforge report` adds to a platform directory after the build: views of it, in
# neither its tarball nor the media made from it (which stay the same bytes either way)
VIEWS = frozenset({"report.html", "sbom.cdx.json"})


@dataclass(frozen=True, slots=True)
class PlatformLayout:
    """The files of a platform for ``arch``, as paths relative to the platform directory."""

    arch: str

    @property
    def kernel(self) -> str:
        return f"{self.arch}/{KERNEL}"

    @property
    def boot_archive(self) -> str:
        return f"{self.arch}/{BOOT_ARCHIVE}"

    @property
    def hash(self) -> str:
        return f"{self.boot_archive}.hash"

    @property
    def manifest(self) -> str:
        return f"{self.boot_archive}.manifest"

    @property
    def gitstatus(self) -> str:
        return f"{self.boot_archive}.gitstatus"

    @property
    def version(self) -> str:
        return VERSION

    @property
    def needed(self) -> tuple[str, ...]:
        """What a platform must hold to boot: the kernel, the boot archive, the buildstamp."""
        return (self.kernel, self.boot_archive, self.version)
