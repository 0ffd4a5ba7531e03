"""Where what a component ships comes from: the SBOM's record of one package of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    """Where part of what a component ships comes from, for the SBOM: a package of it (the
    project itself, a Debian package, an extra package) with its version, the source it is
    made from (a download URL and its sha256, or a git remote and commit) and its licence (an
    SPDX expression, or NOASSERTION with ``note`` saying why)."""

    name: str
    version: str
    license: str
    source: str = ""        # a download URL or git remote; "" when unknown
    sha256: str = ""        # of the download
    commit: str = ""        # of the git checkout
    note: str = ""          # why the licence is NOASSERTION
    refs: tuple[tuple[str, str], ...] = ()  # each LicenseRef-x in the licence, and its text
