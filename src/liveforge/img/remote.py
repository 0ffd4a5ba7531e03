"""The image sources as one: tried in order, the first answer wins.

A source that cannot be reached (or answers with something that is not IMGAPI's) is passed over
with a warning; when no source had what was asked for and one of them failed, its error is
what the caller gets (more useful than "not found").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from liveforge.img.client import Client
from liveforge.img.config import Source, check_url
from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import Manifest, validate
from liveforge.img.store import ImageStore

# looking for an active image (True) or any -> the error's code and how it names the image
NOT_FOUND = {True: ("ActiveImageNotFound", "an active image"), False: ("ImageNotFound", "image")}


def warner(verb: str, err: TextIO) -> Callable[[str], None]:
    """How a verb warns about a source it passed over: ``imgadm VERB: warning: ...``."""
    def warn(text: str) -> None:
        print(f"imgadm {verb}: warning: {text}", file=err, flush=True)
    return warn


def no_sources() -> ImgadmError:
    return ImgadmError("NoSources", "imgadm has no configured sources")


class Remote:
    """Clients for the sources, in order."""

    def __init__(self, sources: Sequence[Source], warn: Callable[[str], None]):
        if not sources:
            raise no_sources()
        self.clients = [Client(s.url, insecure=s.insecure) for s in sources]
        self.warn = warn
        self.failures: list[ImgadmError] = []

    @classmethod
    def of(cls, store: ImageStore, url: str | None, warn: Callable[[str], None]) -> Remote:
        """The configured sources, or only ``url`` (``-S URL``)."""
        sources = (Source(check_url(url)),) if url else store.config.sources
        return cls(sources, warn)

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failed(self, exc: ImgadmError) -> None:
        if exc.code != "SourcePing":
            raise exc
        self.failures.append(exc)
        self.warn(f"skipped: {exc.message}")

    def _or_failure(self, error: ImgadmError) -> ImgadmError:
        return self.failures[0] if self.failures else error

    def find(self, uuid: str, *, active: bool, first: Client | None = None
             ) -> tuple[Manifest, Client] | None:
        """The manifest of ``uuid`` from the first source that has it (``first`` asked
        first; with ``active``, only an active one counts). Validated: an invalid manifest is
        ManifestValidation naming its URL."""
        order = [first] if first is not None else []
        order += [c for c in self.clients if c is not first]
        for client in order:
            try:
                data = client.get_manifest(uuid)
            except ImgadmError as exc:
                self._failed(exc)
                continue
            if data is None or (active and data.get("state", "active") != "active"):
                continue
            return validate(data, f"{client.url}/images/{uuid}"), client
        return None

    def find_active(self, uuid: str) -> tuple[Manifest, Client]:
        """The first source's active image ``uuid`` (``ActiveImageNotFound`` if none has)."""
        return self._require(uuid, active=True)

    def find_any(self, uuid: str) -> tuple[Manifest, Client]:
        """The first source's image ``uuid``, in any state (``ImageNotFound`` if none has)."""
        return self._require(uuid, active=False)

    def _require(self, uuid: str, *, active: bool) -> tuple[Manifest, Client]:
        found = self.find(uuid, active=active)
        if found is None:
            code, what = NOT_FOUND[active]
            raise self._or_failure(ImgadmError(
                code, f'{what} "{uuid}" was not found in image sources'))
        return found

    def list(self, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every source's images as ``{"manifest", "source"}`` rows; an image in several sources
        is the first one's."""
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        answered = False
        for client in self.clients:
            try:
                manifests = client.list_images(filters)
            except ImgadmError as exc:
                self._failed(exc)
                continue
            answered = True
            for manifest in manifests:
                if manifest["uuid"] not in seen:
                    seen.add(manifest["uuid"])
                    rows.append({"manifest": manifest, "source": client.url})
        if not answered:
            raise self.failures[0]
        return rows
