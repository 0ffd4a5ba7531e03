"""platform.toml and configure-projects: what the platform is, as checked, frozen specs.

Every problem is an error naming the file and line. Kinds are not imported here: the caller
passes the known kinds, whose ``validate`` hooks check each component's own settings.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from liveforge.util.errors import InputError, InputErrors
from liveforge.util.fields import Field, read_table
from liveforge.util.fileio import optional_file, read_bytes, read_text
from liveforge.util.toml import Lines, read_toml

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Protocol

    class Kind(Protocol):  # what loading asks of a kind (kinds/base.py has the whole protocol)
        def validate(self, spec: ComponentSpec) -> list[tuple[str | None, str]]: ...

PLATFORM_FILE = "platform.toml"
PROJECTS_FILE = "configure-projects"
BUILD_CONFIG_FILE = "configure-build"
BUILD_ENV_FILE = "build.env"
# a plain name: of a platform, a component, a package of an extra component, a driver
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")

ARCHES = ("aarch64", "armv7l", "i686", "loongarch64", "ppc64le", "riscv64", "s390x", "x86_64")
COMPRESSIONS = ("gzip", "zstd")
# build.env keys that never change what a component produces, so are never hashed.
# keys that change no output: the build cache's settings neither
UNHASHED_KEYS = {"MAX_JOBS", "FORCE_STRAP_REBUILD", "CLOBBER", "CACHE_MODE", "CACHE_URL",
                 "CACHE_DIR", "CACHE_MAX_SIZE", "CACHE_TIMEOUT", "CACHE_PUSH_DIRTY"}
NOASSERTION = "NOASSERTION"  # SPDX's "no licence is known"
# keys of a component's table (and of an extra package's package.toml) that say what the output
# is, not how it is made: the licence, for the SBOM. No step's input hash or cache key covers
# them, so declaring or correcting a licence rebuilds nothing (the next SBOM shows it).
UNHASHED_SETTINGS = frozenset({"license"})


def hashed_settings(table: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a settings table that is a build input (:data:`UNHASHED_SETTINGS` left
    out): the one place that decides it, for platform.toml and package.toml alike."""
    return {k: v for k, v in table.items() if k not in UNHASHED_SETTINGS}


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One ``[components.NAME]`` table of platform.toml."""

    name: str
    kind: str
    path: Path | None
    depends: tuple[str, ...]
    env: tuple[str, ...]
    settings: dict[str, Any] = field(compare=False)  # not compared (nor hashed)
    line: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """The ``[platform]`` table of platform.toml, defaults filled in."""

    name: str
    overlays: tuple[str, ...]
    kernel: str
    arch: str
    compression: str
    templates: tuple[str, ...] = ("etc/release",)
    license: str = NOASSERTION  # of the platform's own files: overlays, version files


@dataclass(frozen=True, slots=True)
class Project:
    """One line of configure-projects: ``<path under projects/>:<branch>:<url|origin|empty>``."""

    path: str
    branch: str
    url: str
    line: int


# .liveforge/platform.cache: platform.toml parsed, with its table header lines, as long as the
# file's stat signature is unchanged (so a no-op run neither imports nor runs the TOML parser)
PARSED_CACHE = "platform.cache"
PARSED_FORMAT = 1


def _stat_signature(path: Path) -> tuple[int, ...]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def parse_platform(path: Path) -> tuple[dict[str, Any], Lines]:
    """platform.toml's tables and their :class:`Lines`, from ``.liveforge/platform.cache``
    (which keeps the table header lines) when the file's stat signature matches it, else read
    with :func:`read_toml` (and the cache written when ``.liveforge`` exists)."""
    import marshal

    signature = _stat_signature(path)  # before reading: a later change makes the cache stale
    cache = path.parent / ".liveforge" / PARSED_CACHE
    try:
        cached = marshal.loads(read_bytes(cache))
        if (type(cached) is tuple and len(cached) == 4 and cached[0] == PARSED_FORMAT
                and cached[1] == signature and type(cached[2]) is dict
                and type(cached[3]) is dict):
            return cached[2], Lines(path, headers=cached[3])
    except (OSError, EOFError, ValueError, TypeError):
        pass
    data, lines = read_toml(path)
    if cache.parent.is_dir():
        try:
            blob = marshal.dumps((PARSED_FORMAT, signature, data, lines.headers()))
        except ValueError:  # dates and times: not cached
            pass
        else:
            from liveforge.util.fileio import write_atomic

            try:
                write_atomic(cache, blob)
            except OSError:
                pass
    return data, lines


# -- [platform] -------------------------------------------------------------------------------
# A check returns the problems of a given value: (message, the list item it is about or None).
Problems = list[tuple[str, str | None]]


def _check_name(value: Any) -> Problems:
    if isinstance(value, str) and NAME_RE.match(value):
        return []
    return [(f"name must be a plain name (letters, digits and _.+-), not {value!r}", None)]


def _check_kernel(value: Any) -> Problems:
    from liveforge.util.paths import path_problem

    if not isinstance(value, str):
        return [(f"kernel must be an image path, not {value!r}", None)]
    problem = path_problem(value)
    return [(f"kernel: {problem}", None)] if problem else []


def _check_templates(value: Any) -> Problems:
    from liveforge.util.paths import path_problem

    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        return [("templates must be a list of image paths", None)]
    return [(f"templates: {problem}", t) for t in value if (problem := path_problem(t))]


def _check_overlays(value: Any) -> Problems:
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        return [("overlays must be a list of paths", None)]
    problems: Problems = []
    for overlay in value:
        problem = workspace_path_problem(overlay)
        if problem:
            problems.append((f"overlays: {problem} (an overlay is a directory inside the "
                             "workspace)", overlay))
    return problems


def _check_arch(value: Any) -> Problems:
    if value in ARCHES:
        return []
    return [(f"arch must be a known architecture ({', '.join(ARCHES)}), not {value!r}", None)]


def _check_compression(value: Any) -> Problems:
    if value in COMPRESSIONS:
        return []
    return [(f'compression must be "gzip" or "zstd", not {value!r}', None)]


# -- licences ---------------------------------------------------------------------------------
# an SPDX license expression, by its syntax: ids (LicenseRef-x, GPL-2.0-or-later, MIT+), the
# operators AND, OR and WITH, parentheses. Whether an id is on the SPDX list is checked where
# the list is loaded (manifest lint, the SBOM), not on every load of platform.toml.
_LICENSE_TOKEN_RE = re.compile(r"\s*(\(|\)|[A-Za-z0-9][A-Za-z0-9.:+-]*)")


def license_problem(expr: Any) -> str | None:
    """Why ``expr`` is not an SPDX license expression (by its syntax), or None."""
    if not isinstance(expr, str) or not expr.strip():
        return f"license must be an SPDX license expression (e.g. \"MIT\"), not {expr!r}"
    tokens: list[str] = []
    pos = 0
    while pos < len(expr.rstrip()):
        match = _LICENSE_TOKEN_RE.match(expr, pos)
        if match is None:
            return f"license {expr!r}: unexpected {expr[pos:].strip()[:10]!r}"
        tokens.append(match.group(1))
        pos = match.end()
    depth, want_term = 0, True
    for token in tokens:
        operator = token.upper() in ("AND", "OR", "WITH")
        if token == "(":
            depth += 1
            if not want_term:
                return f"license {expr!r}: '(' after a term"
        elif token == ")":
            depth -= 1
            if depth < 0 or want_term:
                return f"license {expr!r}: unbalanced ')'"
        elif operator:
            if want_term:
                return f"license {expr!r}: {token} without a term before it"
            want_term = True
        else:
            if not want_term:
                return f"license {expr!r}: two terms without AND, OR or WITH between them"
            want_term = False
    if depth or want_term:
        return f"license {expr!r} is incomplete"
    return None


def _check_license(value: Any) -> Problems:
    problem = license_problem(value)
    return [(problem, None)] if problem else []


# The licence of what a component (or an extra package, or the platform's own files) ships:
# one declaration, read by platform.toml's [platform] and make components and package.toml.
LICENSE_FIELD = Field("license", "str", NOASSERTION, _check_license)


# [platform]: each check names the key's type too, so the fields take any value; the default
# of name (None) is the workspace directory's name
PLATFORM_FIELDS = (
    Field("name", "any", None, _check_name),                      # the platform's name
    Field("overlays", "any", [], _check_overlays),                # searched in order
    Field("kernel", "any", "boot/vmlinuz", _check_kernel),        # its path in the image
    Field("arch", "any", "x86_64", _check_arch),
    Field("compression", "any", "gzip", _check_compression),      # of the boot archive
    Field("templates", "any", ["etc/release"], _check_templates),  # @NAME@, @STAMP@ filled in
    LICENSE_FIELD,                          # of the overlays' files and the version files
)


def workspace_path_problem(path: str) -> str | None:
    """Why ``path`` (relative to the workspace) is not a path inside it, or None."""
    if not path or "\0" in path:
        return f"{path!r} is not a path"
    if path.startswith("/"):
        return f"{path} is absolute"
    normal = os.path.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return f"{path} leads outside the workspace"
    return None


def holds(directory: str, path: str) -> bool:
    """Whether ``directory`` is ``path`` or one of its parents (both absolute, normalized)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def load_platform(path: Path, kinds: Mapping[str, Kind]
                  ) -> tuple[PlatformSpec, dict[str, ComponentSpec]]:
    """Parse and check platform.toml; every problem is reported as file:line. ``kinds``: the
    known kinds, whose ``validate`` checks each component's own settings."""
    data, lines = parse_platform(path)
    errors: list[InputError] = []
    root = path.parent
    root_dir = str(root)
    abs_root = os.path.abspath(root_dir)

    def err(msg: str, line: int | None) -> None:
        errors.append(InputError(msg, path, line))

    for key in data:
        if key not in ("platform", "components"):
            err(f"unknown table [{key}] (expected [platform] and [components.NAME])",
                lines.table(key) or lines.key("", key))
    plat = data.get("platform", {})
    if not isinstance(plat, dict):
        err("[platform] must be a table", None)
        plat = {}

    def report(message: str, key: str, item: Any) -> None:
        err(message if message.startswith("unknown key") else f"[platform] {message}",
            lines.key("platform", key) if item is None else lines.value("platform", key, item))

    values = read_table(plat, PLATFORM_FIELDS, report, " in [platform]")
    for overlay in values["overlays"]:
        if not (root / overlay).is_dir():
            err(f"overlay {overlay!r} is not a directory",
                lines.value("platform", "overlays", overlay))
    platform = PlatformSpec(
        name=values["name"] or root.name, overlays=tuple(values["overlays"]),
        kernel=values["kernel"], arch=values["arch"], compression=values["compression"],
        templates=tuple(values["templates"]), license=values["license"])

    components: dict[str, ComponentSpec] = {}
    tables = data.get("components", {})
    if not isinstance(tables, dict):
        err("[components] must hold tables [components.NAME]", lines.table("components"))
        tables = {}
    for cname, table in tables.items():
        line = lines.table(f"components.{cname}")
        if not NAME_RE.match(cname):
            err(f"invalid component name {cname!r}", line)
            continue
        if not isinstance(table, dict):
            err(f"components.{cname} must be a table", line)
            continue
        kind = table.get("kind")
        if kind is None:
            err(f"component {cname!r} has no kind (one of: {', '.join(sorted(kinds))})", line)
            continue
        if kind not in kinds:
            err(f"component {cname!r}: unknown kind {kind!r} (known: {', '.join(sorted(kinds))})",
                lines.key(f"components.{cname}", "kind"))
            continue
        depends = table.get("depends", [])
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            err(f"component {cname!r}: depends must be a list of component names",
                lines.key(f"components.{cname}", "depends"))
            depends = []
        env = table.get("env", [])
        if not isinstance(env, list) or not all(isinstance(d, str) for d in env):
            err(f"component {cname!r}: env must be a list of build.env keys",
                lines.key(f"components.{cname}", "env"))
            env = []
        cpath: Path | None = None
        if "path" in table:
            if not isinstance(table["path"], str):
                err(f"component {cname!r}: path must be a string",
                    lines.key(f"components.{cname}", "path"))
            else:
                normal = os.path.normpath(os.path.join(root_dir, table["path"]))
                cpath = Path(normal)
                if holds(os.path.abspath(normal), abs_root):
                    err(f"component {cname!r}: path {table['path']!r} holds the workspace (its "
                        "build outputs would be the component's source: always stale)",
                        lines.key(f"components.{cname}", "path"))
        settings = {k: v for k, v in table.items() if k not in ("depends",)}
        components[cname] = ComponentSpec(
            name=cname, kind=kind, path=cpath, depends=tuple(depends), env=tuple(env),
            settings=settings, line=line)
        for problem in kinds[kind].validate(components[cname]):
            where = problem[0]
            err(f"component {cname!r}: {problem[1]}",
                lines.key(f"components.{cname}", where) if where else line)
    for cname, spec in components.items():
        for dep in spec.depends:
            if dep not in components:
                err(f"component {cname!r} depends on unknown component {dep!r}",
                    lines.value(f"components.{cname}", "depends", dep))
    if errors:
        raise InputErrors(errors)
    return platform, components


def load_projects(path: Path) -> list[Project]:
    """Parse configure-projects (absent file: no projects)."""
    if not optional_file(path):
        return []
    projects: list[Project] = []
    errors: list[InputError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(read_text(path).splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        line = "".join(line.split())
        parts = line.split(":", 2)
        if len(parts) != 3:
            errors.append(InputError(
                f"expected <path>:<branch>:<url|origin|empty>, got {raw.strip()!r}", path, number))
            continue
        ppath, branch, url = parts
        if not ppath or ppath.startswith("/") or ".." in Path(ppath).parts:
            errors.append(InputError(f"project path {ppath!r} must be relative to projects/ "
                                     "and stay inside it", path, number))
            continue
        if not branch and url:
            errors.append(InputError(f"project {ppath!r} has no branch", path, number))
            continue
        if ppath in seen:
            errors.append(InputError(f"project {ppath!r} is already listed on line "
                                     f"{seen[ppath]}", path, number))
            continue
        seen[ppath] = number
        projects.append(Project(path=ppath, branch=branch, url=url, line=number))
    if errors:
        raise InputErrors(errors)
    return projects
