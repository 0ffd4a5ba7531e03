"""Talking to IMGAPI sources over HTTP (httpx)."""

from __future__ import annotations

from liveforge.img.errors import ImgadmError

ACCEPT_VERSION = "~2"
PING_TIMEOUT = 10.0


def ping(url: str, timeout: float = PING_TIMEOUT) -> None:
    """Check that ``url`` is an IMGAPI server: ``GET /ping`` answers 200 with ``imgapi: true``;
    ``SourcePing`` naming the URL and what is wrong otherwise."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/ping", timeout=timeout,
                             headers={"Accept-Version": ACCEPT_VERSION})
    except httpx.HTTPError as exc:
        raise ImgadmError("SourcePing", f'image source "{url}" is not reachable: '
                          f"{exc or type(exc).__name__}") from None
    if response.status_code != 200:
        raise ImgadmError("SourcePing", f'image source "{url}" answered GET /ping with HTTP '
                          f"{response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise ImgadmError("SourcePing", f'image source "{url}" answered GET /ping with '
                          "something that is not JSON") from None
    if not isinstance(body, dict) or body.get("imgapi") is not True:
        raise ImgadmError("SourcePing", f'image source "{url}" is not an IMGAPI server '
                          '(its /ping has no "imgapi": true)')
