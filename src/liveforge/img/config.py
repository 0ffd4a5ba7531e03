"""imgadm.conf: the image sources (tried in order) and the pools (named storage roots).

``<root>/var/imgadm/imgadm.conf`` is JSON: ``{"sources": [{"url", "type", "insecure"}],
"pools": {"zones": "/zones"}}``; other keys are kept as they are. Without a ``sources`` key
there is one default source; without ``pools``, ``zones`` is ``/zones``. Pool paths are
absolute and lie under ``IMGADM_ROOT`` (``/`` when it is unset), as every path of the store.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveforge.img.errors import ImgadmError
from liveforge.util.fileio import read_bytes, write_atomic

DEFAULT_SOURCE = "https://images.smartos.org"
DEFAULT_POOL = "zones"  # the pool of an image or a VM that names none
DEFAULT_POOLS = {DEFAULT_POOL: "/" + DEFAULT_POOL}
SOURCE_TYPES = ("imgapi",)


@dataclass(frozen=True, slots=True)
class Source:
    """An image source: an IMGAPI server's URL."""

    url: str
    type: str = "imgapi"
    insecure: bool = False

    def record(self) -> dict[str, Any]:
        return {"url": self.url, "type": self.type, "insecure": self.insecure}


@dataclass(frozen=True, slots=True)
class Config:
    """The parsed configuration; ``extra`` holds the keys imgadm does not read, kept on save."""

    sources: tuple[Source, ...]
    pools: dict[str, str]
    explicit_sources: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        data = dict(self.extra)
        data["sources"] = [s.record() for s in self.sources]
        if self.pools != DEFAULT_POOLS:
            data["pools"] = dict(self.pools)
        return data


def root_from_env() -> Path:
    return Path(os.environ.get("IMGADM_ROOT") or "/")


def _bad(path: Path, message: str) -> ImgadmError:
    return ImgadmError("ConfigError", f"{path}: {message}")


def normalise_url(url: str) -> str:
    """A source URL as stored: no trailing slash."""
    return url.rstrip("/")


def check_url(url: str) -> str:
    """The URL if it is an http(s) URL, else a ``Usage`` error naming it."""
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise ImgadmError("Usage", f'invalid source URL "{url}": expected http:// or https://')
    return normalise_url(url)


def _source(path: Path, index: int, value: Any) -> Source:
    where = f"sources[{index}]"
    if isinstance(value, str):
        return Source(check_url(value))
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise _bad(path, f"{where} must be an object with a \"url\" string")
    kind = value.get("type", "imgapi")
    if kind not in SOURCE_TYPES:
        raise _bad(path, f"{where}.type {kind!r} is not one of {', '.join(SOURCE_TYPES)}")
    insecure = value.get("insecure", False)
    if not isinstance(insecure, bool):
        raise _bad(path, f"{where}.insecure must be true or false")
    return Source(normalise_url(value["url"]), kind, insecure)


def load(path: Path) -> Config:
    """The configuration in ``path``; the defaults when it does not exist."""
    try:
        text = read_bytes(path)
    except FileNotFoundError:
        return Config((Source(DEFAULT_SOURCE),), dict(DEFAULT_POOLS))
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad(path, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _bad(path, "must hold a JSON object")
    extra = {k: v for k, v in data.items() if k not in ("sources", "pools")}
    if "sources" in data:
        if not isinstance(data["sources"], list):
            raise _bad(path, "sources must be a list")
        sources = tuple(_source(path, i, v) for i, v in enumerate(data["sources"]))
    else:
        sources = (Source(DEFAULT_SOURCE),)
    pools = data.get("pools", DEFAULT_POOLS)
    if not isinstance(pools, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.startswith("/")
            for k, v in pools.items()):
        raise _bad(path, "pools must map pool names to absolute paths")
    return Config(sources, dict(pools), "sources" in data, extra)


def save(path: Path, config: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(config.record(), indent=2) + "\n")
