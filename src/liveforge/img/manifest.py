"""Image manifests (version 2): the field table, and one validator that reports every bad field.

The table is data: validation, error messages and the docs read it. A manifest stays the JSON
object it came as (``imgadm get`` and the server hand it on unchanged); ``Manifest`` gives the
typed view of the fields the tools use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from liveforge.img.errors import ManifestValidation
from liveforge.util.fields import TYPES, Field, typed

TYPES_OF_IMAGE = ("zone-dataset", "lx-dataset", "zvol", "docker", "other")
OSES = ("smartos", "linux", "windows", "bsd", "illumos", "other")
STATES = ("active", "unactivated", "disabled", "creating", "failed")
COMPRESSIONS = ("gzip", "bzip2", "xz", "zstd", "none")
# the image types whose file is a root file-system tree (a tar stream); zvol's is a disk image
TREE_TYPES = frozenset({"zone-dataset", "lx-dataset", "docker", "other"})

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
SHA1_RE = re.compile(r"[0-9a-f]{40}\Z")
# ISO 8601 in UTC, as IMGAPI writes it: 2026-12-03T12:00:00Z or with .123 milliseconds
DATE_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z\Z")
NAME_MAX = 512
VERSION_MAX = 128

Problems = list[tuple[str, Any]]


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.match(value) is not None


def _uuid(value: str) -> Problems:
    return [] if is_uuid(value) else [("not a UUID", None)]


def _one_of(choices: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def check(value: str) -> Problems:
        return [] if value in choices else [(f"must be one of {', '.join(choices)}", None)]
    return check


def _length(limit: int):  # type: ignore[no-untyped-def]
    def check(value: str) -> Problems:
        if not value:
            return [("must not be empty", None)]
        return [] if len(value) <= limit else [(f"longer than {limit} characters", None)]
    return check


def _date(value: str) -> Problems:
    if DATE_RE.match(value) is None:
        return [("not an ISO 8601 UTC date like 2026-01-31T12:00:00Z", None)]
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return [("not a real date", None)]
    return []


def _version(value: int) -> Problems:
    return [] if value == 2 else [("must be 2", None)]


def _files(value: list[Any]) -> Problems:
    if len(value) != 1:
        return [("must hold exactly one file", None)]
    file = value[0]
    if not isinstance(file, dict):
        return [("the file must be an object", None)]
    problems: Problems = []
    if not (isinstance(file.get("sha1"), str) and SHA1_RE.match(file["sha1"])):
        problems.append(("sha1 must be 40 hexadecimal digits", None))
    size = file.get("size")
    if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
        problems.append(("size must be a whole number of bytes", None))
    if file.get("compression") not in COMPRESSIONS:
        problems.append((f"compression must be one of {', '.join(COMPRESSIONS)}", None))
    return problems


def _positive(value: int) -> Problems:
    return [] if value > 0 else [("must be greater than 0", None)]


def _string_values(value: dict[str, Any]) -> Problems:
    bad = [k for k, v in value.items() if not isinstance(v, (str, int, float, bool, list))]
    return [(f"tag {k!r} must be a string, number, boolean or list", None) for k in bad]


# One declaration per manifest field. ``default`` is unused here (a manifest's absent optional
# field stays absent); ``check`` adds problems of a well-typed value.
FIELDS = (
    Field("v", "int", check=_version),
    Field("uuid", "str", check=_uuid),
    Field("owner", "str", check=_uuid),
    Field("name", "str", check=_length(NAME_MAX)),
    Field("version", "str", check=_length(VERSION_MAX)),
    Field("description", "str"),
    Field("homepage", "str"),
    Field("eula", "str"),
    Field("icon", "bool"),
    Field("state", "str", check=_one_of(STATES)),
    Field("disabled", "bool"),
    Field("public", "bool"),
    Field("published_at", "str", check=_date),
    Field("type", "str", check=_one_of(TYPES_OF_IMAGE)),
    Field("os", "str", check=_one_of(OSES)),
    Field("origin", "str", check=_uuid),
    Field("files", "list", check=_files),
    Field("acl", "list"),
    Field("requirements", "table"),
    Field("users", "list"),
    Field("billing_tags", "list"),
    Field("traits", "table"),
    Field("tags", "table", check=_string_values),
    Field("generate_passwords", "bool"),
    Field("inherited_directories", "list"),
    Field("nic_driver", "str"),
    Field("disk_driver", "str"),
    Field("cpu_type", "str"),
    Field("image_size", "int", check=_positive),
    Field("channels", "list"),
    Field("error", "table"),
)
FIELD_BY_KEY = {f.key: f for f in FIELDS}
REQUIRED = ("v", "uuid", "name", "version", "type", "os")
# the requirements object's known keys and their types
REQUIREMENTS = {"networks": "list", "brand": "str", "ssh_key": "bool", "min_ram": "int",
                "max_ram": "int", "min_platform": "table", "max_platform": "table",
                "bootrom": "str"}


def problems(data: Any, *, need_files: bool = True) -> list[tuple[str, str]]:
    """Every (field, problem) of a manifest, in the table's order; empty when it is valid.

    ``need_files``: whether ``files`` is required (a manifest POSTed to a server gets its file
    later, so it may lack one)."""
    if not isinstance(data, dict):
        return [("manifest", "must be a JSON object")]
    found: list[tuple[str, str]] = []
    for key in REQUIRED + (("files",) if need_files else ()):
        if key not in data:
            found.append((key, "is required"))
    for field in FIELDS:
        if field.key not in data:
            continue
        value = data[field.key]
        if not typed(value, field.type):
            found.append((field.key, f"must be {TYPES[field.type]}"))
        elif field.check is not None:
            found.extend((field.key, message) for message, _ in field.check(value))
    requirements = data.get("requirements")
    if isinstance(requirements, dict):
        for key, type_ in REQUIREMENTS.items():
            if key in requirements and not typed(requirements[key], type_):
                found.append((f"requirements.{key}", f"must be {TYPES[type_]}"))
    if data.get("type") == "zvol" and "image_size" not in data:
        found.append(("image_size", "is required for a zvol image"))
    return found


def validate(data: Any, where: str = "", *, need_files: bool = True) -> Manifest:
    """The manifest ``data`` as a ``Manifest``; ``ManifestValidation`` listing every bad field
    otherwise (``where`` names the file or URL it came from)."""
    found = problems(data, need_files=need_files)
    if found:
        raise ManifestValidation(found, where)
    return Manifest(data)


@dataclass(frozen=True, slots=True)
class ImageFile:
    """The one file of an image: its SHA-1, size in bytes and compression."""

    sha1: str
    size: int
    compression: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A valid manifest: the JSON object itself (``data``) and a typed view of it."""

    data: dict[str, Any]

    @property
    def uuid(self) -> str:
        return str(self.data["uuid"])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def version(self) -> str:
        return str(self.data["version"])

    @property
    def type(self) -> str:
        return str(self.data["type"])

    @property
    def os(self) -> str:
        return str(self.data["os"])

    @property
    def origin(self) -> str | None:
        origin = self.data.get("origin")
        return str(origin) if origin is not None else None

    @property
    def state(self) -> str:
        return str(self.data.get("state", "active"))

    @property
    def file(self) -> ImageFile | None:
        files = self.data.get("files")
        if not files:
            return None
        first = files[0]
        return ImageFile(first["sha1"], int(first["size"]), first["compression"])

    @property
    def is_tree(self) -> bool:
        """Whether the image file is a root file-system tree (else a disk image)."""
        return self.type in TREE_TYPES

    @property
    def label(self) -> str:
        """``name@version``, as imgadm's progress lines name an image."""
        return f"{self.name}@{self.version}"
