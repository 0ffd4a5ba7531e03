"""``GET /images``: the query's filters, sort and page, as IMGAPI's ListImages defines them.

Filters (all must match): ``owner``, ``os``, ``public`` (``true``/``false``; absent = false),
``state`` (default ``active``; ``all`` matches any), ``name`` and ``version`` (exact, or
``~sub`` for a substring), ``type`` (exact, or ``!type`` to exclude one), ``tag.K=V`` (the tag's
value as text: ``true``, ``42``). ``sort`` is ``FIELD`` or ``FIELD.asc|desc`` (default
``published_at``; ties go by uuid). ``limit`` is 1..1000 (default 1000). ``marker`` is an
image's uuid (the page starts after that image in the sort order) or a date (the page starts at
the first image published at or after it; at or before it when descending).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from liveforge.img.manifest import DATE_RE, is_uuid
from liveforge.img.server.errors import ApiError

LIMIT_MAX = 1000
SORT_FIELDS = ("published_at", "name", "version", "uuid", "owner", "type", "os", "state")


def invalid(field: str, message: str) -> ApiError:
    return ApiError("InvalidParameter", f"{field}: {message}",
                    [{"field": field, "code": "Invalid", "message": message}])


def text(value: Any) -> str:
    """A value as a filter compares it: JSON's spelling for booleans and numbers."""
    return value if isinstance(value, str) else json.dumps(value)


def date_key(value: Any) -> str:
    """A date in a form that sorts as text: ``2026-01-31T12:00:00.000`` (a missing or odd
    date sorts first)."""
    if not isinstance(value, str) or DATE_RE.match(value) is None:
        return ""
    seconds, _, fraction = value[:-1].partition(".")
    return f"{seconds}.{fraction:0<3}"


def _exact_or_sub(key: str) -> Callable[[str], Callable[[dict[str, Any]], bool]]:
    def make(wanted: str) -> Callable[[dict[str, Any]], bool]:
        if wanted.startswith("~"):
            return lambda m: wanted[1:] in text(m.get(key, ""))
        return lambda m: text(m.get(key, "")) == wanted
    return make


def _exact(key: str) -> Callable[[str], Callable[[dict[str, Any]], bool]]:
    return lambda wanted: lambda m: key in m and text(m[key]) == wanted


def _type(wanted: str) -> Callable[[dict[str, Any]], bool]:
    if wanted.startswith("!"):
        return lambda m: m.get("type") != wanted[1:]
    return lambda m: m.get("type") == wanted


def _state(wanted: str) -> Callable[[dict[str, Any]], bool]:
    if wanted == "all":
        return lambda m: True
    return lambda m: m.get("state", "active") == wanted


def _public(wanted: str) -> Callable[[dict[str, Any]], bool]:
    if wanted not in ("true", "false"):
        raise invalid("public", "must be true or false")
    return lambda m: bool(m.get("public", False)) == (wanted == "true")


def _tag(tag: str, wanted: str) -> Callable[[dict[str, Any]], bool]:
    def test(m: dict[str, Any]) -> bool:
        tags = m.get("tags")
        return isinstance(tags, dict) and tag in tags and text(tags[tag]) == wanted
    return test


# one entry per filter parameter: what turns its value into a test of a manifest
FILTERS: dict[str, Callable[[str], Callable[[dict[str, Any]], bool]]] = {
    "owner": _exact("owner"),
    "os": _exact("os"),
    "name": _exact_or_sub("name"),
    "version": _exact_or_sub("version"),
    "type": _type,
    "state": _state,
    "public": _public,
}
# the other parameters a client may send (Accept-Version style extras are ignored silently)
KNOWN = frozenset(FILTERS) | {"sort", "limit", "marker", "account", "channel", "inclAdminFields"}


@dataclass(frozen=True, slots=True)
class Query:
    tests: tuple[Callable[[dict[str, Any]], bool], ...]
    sort: str
    descending: bool
    limit: int
    marker: str | None


def parse(params: Mapping[str, str]) -> Query:
    """The query of ``GET /images``; InvalidParameter naming the parameter when one is bad."""
    tests = [FILTERS["state"]("active")] if "state" not in params else []
    for key, value in params.items():
        if key in FILTERS:
            tests.append(FILTERS[key](value))
        elif key.startswith("tag.") and len(key) > 4:
            tests.append(_tag(key[4:], value))
        elif key not in KNOWN:
            raise invalid(key, "unknown parameter")
    field, _, direction = params.get("sort", "published_at").partition(".")
    if field not in SORT_FIELDS or direction not in ("", "asc", "desc"):
        raise invalid("sort", f"must be FIELD or FIELD.asc or FIELD.desc, FIELD one of "
                      f"{', '.join(SORT_FIELDS)}")
    raw_limit = params.get("limit", str(LIMIT_MAX))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIMIT_MAX:
        raise invalid("limit", f"must be a whole number from 1 to {LIMIT_MAX}")
    marker = params.get("marker")
    if marker is not None and not is_uuid(marker) and DATE_RE.match(marker) is None:
        raise invalid("marker", "must be an image's uuid or a date like 2026-01-31T12:00:00Z")
    return Query(tuple(tests), field, direction == "desc", int(raw_limit), marker)


def select(manifests: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    """The page of ``manifests`` the query asks for."""
    def key(m: dict[str, Any]) -> tuple[str, str]:
        if query.sort == "published_at":
            return date_key(m.get("published_at")), str(m["uuid"])
        return text(m.get(query.sort, "")), str(m["uuid"])

    ordered = sorted(manifests, key=key, reverse=query.descending)
    if query.marker is not None:
        ordered = _after(manifests, ordered, query, key)
    return [m for m in ordered if all(test(m) for test in query.tests)][:query.limit]


def _after(manifests: list[dict[str, Any]], ordered: list[dict[str, Any]], query: Query,
           key: Callable[[dict[str, Any]], tuple[str, str]]) -> list[dict[str, Any]]:
    marker = query.marker or ""
    if is_uuid(marker):
        found = [m for m in manifests if m["uuid"] == marker]
        if not found:
            raise invalid("marker", f'no image "{marker}"')
        mark = key(found[0])
        if query.descending:
            return [m for m in ordered if key(m) < mark]
        return [m for m in ordered if key(m) > mark]
    when = date_key(marker)
    if query.descending:
        return [m for m in ordered if date_key(m.get("published_at")) <= when]
    return [m for m in ordered if date_key(m.get("published_at")) >= when]
