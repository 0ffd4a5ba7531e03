"""``package.toml``: one third-party package of an ``extra`` component, and the build order.

A package is a folder under the component holding ``package.toml``::

    name = "zlib"
    version = "1.2.13"
    build = "autotools"                  # autotools | make | commands
    variants = ["32", "64"]              # built in the main phase (against proto/)
    strap = true                         # also built in the strap phase (into proto.strap/)
    strap_variants = ["64"]              # default: the same as variants
    depends = ["other"]                  # packages of this component
    patches = ["Patches/0001-x.patch"]   # default: every file in Patches/, in name order
    configure_options = ["--shared"]     # for every variant
    make_options = []
    env = { CFLAGS_EXTRA = "" }
    vars = { ZLIB_SONAME = "1" }         # $VARs for the component manifest
    license = "Zlib"                     # an SPDX expression (default NOASSERTION), for the SBOM

    [source]                             # an upstream URL ...
    url = "https://example.org/zlib-1.2.13.tar.gz"
    sha256 = "..."
    # ... or a Debian source package (its orig tarball unless file says otherwise)
    # debian = "zlib"
    # debian_version = "1:1.2.13.dfsg-1"
    # file = "zlib_1.2.13.dfsg.orig.tar.bz2"

    [variant.32]                         # per-variant additions
    configure_options = ["--libdir=/usr/lib/32"]
    env = {}
    libdir = "/usr/lib/32"               # default /usr/lib/32 (32) and /usr/lib (64)

    [commands]                           # build = "commands": shell snippets, run in the tree
    configure = "./configure --prefix=$PREFIX"
    build = "make -j$MAX_JOBS"
    install = "make install DESTDIR=$DESTDIR"

Every key is declared once in :data:`FIELDS` (type, default); parsing, validation and the
documentation above all follow that table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveforge.build.config import LICENSE_FIELD, NAME_RE, hashed_settings
from liveforge.util.depgraph import DependencyCycle, topo_order
from liveforge.util.errors import InputError, InputErrors
from liveforge.util.fetch import (
    DEB_NAME_RE,
    DEB_VERSION_RE,
    DebianSource,
    Source,
    UrlSource,
    plain_file_name,
)
from liveforge.util.fields import Field, read_table
from liveforge.util.hashing import json_digest
from liveforge.util.paths import path_problem
from liveforge.util.toml import Lines, read_toml

PACKAGE_FILE = "package.toml"
BUILD_SYSTEMS = ("autotools", "make", "commands")
VARIANTS = ("32", "64")


FIELDS: tuple[Field, ...] = (
    Field("name", "str", None),                 # required; unique in the component
    Field("version", "str", None),              # required; names the variant folders
    Field("build", "str", "autotools"),         # build system: autotools, make or commands
    Field("variants", "strlist", ["64"]),       # the main phase's: 32 and/or 64
    Field("strap", "bool", False),              # also built in the strap phase
    Field("strap_variants", "strlist", None),   # default: variants
    Field("depends", "strlist", []),            # packages of this component
    Field("patches", "strlist", None),          # patch -p1, in order (default: Patches/*)
    Field("configure_options", "strlist", []),  # every variant
    Field("make_options", "strlist", []),       # build and install, every variant
    Field("env", "strmap", {}),                 # every variant
    Field("vars", "strmap", {}),                # $VARs for the component manifest
    Field("prefix", "str", "/usr"),             # installation prefix
    Field("source", "table", None),             # required: url or debian
    Field("variant", "table", {}),              # [variant.32], [variant.64]
    Field("commands", "table", {}),             # shell snippets (build = "commands")
    LICENSE_FIELD,                              # an SPDX expression, for the SBOM
)
VARIANT_FIELDS: tuple[Field, ...] = (
    Field("configure_options", "strlist", []),
    Field("make_options", "strlist", []),
    Field("env", "strmap", {}),
    Field("libdir", "str", None),               # default /usr/lib/32 (32), /usr/lib (64)
)
SOURCE_KEYS = {"url", "sha256", "file", "debian", "debian_version"}
COMMAND_KEYS = ("configure", "build", "install")


@dataclass(frozen=True, slots=True)
class VariantOptions:
    configure_options: tuple[str, ...] = ()
    make_options: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    libdir: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    dir: Path
    source: Source
    build: str
    variants: tuple[str, ...]
    strap: bool
    strap_variants: tuple[str, ...]
    depends: tuple[str, ...]
    patches: tuple[Path, ...]
    configure_options: tuple[str, ...]
    make_options: tuple[str, ...]
    env: Mapping[str, str]
    vars: Mapping[str, str]
    prefix: str
    per_variant: Mapping[str, VariantOptions]
    commands: Mapping[str, str]
    license: str = LICENSE_FIELD.default
    inputs: str = ""     # the digest of package.toml's build inputs (its licence left out)

    @property
    def toml(self) -> Path:
        return self.dir / PACKAGE_FILE

    def phase_variants(self, strap: bool) -> tuple[str, ...]:
        if strap:
            return self.strap_variants if self.strap else ()
        return self.variants

    def variant_dir(self, variant: str, strap: bool) -> str:
        """The folder name, exactly as illumos-extra: ``<name>-<version>-64strap``."""
        return f"{self.name}-{self.version}-{variant}{'strap' if strap else ''}"

    def libdir(self, variant: str) -> str:
        explicit = self.per_variant.get(variant, VariantOptions()).libdir
        if explicit:
            return explicit
        return f"{self.prefix.rstrip('/')}/lib/32" if variant == "32" else \
            f"{self.prefix.rstrip('/')}/lib"

    def manifest_vars(self) -> dict[str, str]:
        key = re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()
        return {f"{key}_VERSION": self.version, **self.vars}


def _in_table(err: Callable[[str, str, str], None], table: str
              ) -> Callable[[str, str, Any], None]:
    """A field reader's report, as an error at the key's line in ``table``."""
    return lambda message, key, _item: err(message, table, key)


def load_package(directory: Path) -> Package:
    """Parse ``directory/package.toml``; every problem is reported as file:line."""
    path = directory / PACKAGE_FILE
    if not path.is_file():
        raise InputError(f"{PACKAGE_FILE} is not a file", path)
    data, lines = read_toml(path)
    errors: list[InputError] = []

    def err(message: str, table: str = "", key: str = "") -> None:
        errors.append(InputError(message, path, lines.key(table, key) if key else
                                 lines.table(table) if table else None))

    top = read_table(data, FIELDS, _in_table(err, ""))
    for key in ("name", "version"):
        if not top[key]:
            err(f"{key} is required")
    name, version = str(top["name"] or directory.name), str(top["version"] or "0")
    if top["name"] and not NAME_RE.match(name):
        err(f"invalid package name {name!r}", "", "name")
    if not plain_file_name(version) or version.startswith("."):
        err(f"invalid version {version!r}", "", "version")
    if not install_path(top["prefix"]):
        err(f"prefix must be an absolute path without '..', not {top['prefix']!r}", "",
            "prefix")
    if top["build"] not in BUILD_SYSTEMS:
        err(f"build must be one of {', '.join(BUILD_SYSTEMS)}, not {top['build']!r}", "",
            "build")
    strap_variants = top["strap_variants"] if top["strap_variants"] is not None \
        else top["variants"]
    for key, values in (("variants", top["variants"]), ("strap_variants", strap_variants)):
        for v in values:
            if v not in VARIANTS:
                err(f"{key}: unknown variant {v!r} (known: 32, 64)", "", key)
    source = _source(top["source"], err)
    per_variant: dict[str, VariantOptions] = {}
    for vname, table in (top["variant"] or {}).items():
        if vname not in VARIANTS or not isinstance(table, dict):
            err(f"[variant.{vname}]: unknown variant (known: 32, 64)", f"variant.{vname}")
            continue
        vt = read_table(table, VARIANT_FIELDS, _in_table(err, f"variant.{vname}"))
        if vt["libdir"] is not None and not install_path(vt["libdir"]):
            err(f"libdir must be an absolute path without '..', not {vt['libdir']!r}",
                f"variant.{vname}", "libdir")
        per_variant[vname] = VariantOptions(tuple(vt["configure_options"]),
                                            tuple(vt["make_options"]), dict(vt["env"]),
                                            vt["libdir"])
    commands = dict(top["commands"] or {})
    for key, value in commands.items():
        if key not in COMMAND_KEYS or not isinstance(value, str):
            err(f"[commands] {key}: expected one of {', '.join(COMMAND_KEYS)} as a string",
                "commands", key)
    if top["build"] == "commands" and "build" not in commands and "install" not in commands:
        err("build = \"commands\" needs a [commands] table with build and install", "", "build")
    if top["patches"] is None:
        pdir = directory / "Patches"
        patches = sorted((p for p in pdir.iterdir() if not p.name.startswith(".")),
                         key=lambda p: p.name) if pdir.is_dir() else []
        if os.path.lexists(pdir) and not pdir.is_dir():
            errors.append(InputError("Patches is not a folder of patches", pdir))
        errors += [InputError("a patch is a file, not a folder", p) for p in patches
                   if not p.is_file()]
    else:
        patches = [directory / p for p in top["patches"]]
        for p, rel in zip(patches, top["patches"], strict=True):
            if path_problem(rel):
                errors.append(InputError(f"patch {rel!r} is not a path inside the package "
                                         "folder", path, lines.value("", "patches", rel)))
            elif not p.is_file():
                errors.append(InputError(f"patch {rel!r} does not exist", path,
                                         lines.value("", "patches", rel)))
    if errors:
        raise InputErrors(errors)
    assert source is not None
    return Package(
        name=name, version=version, dir=directory, source=source, build=top["build"],
        variants=tuple(top["variants"]), strap=bool(top["strap"]),
        strap_variants=tuple(strap_variants), depends=tuple(top["depends"]),
        patches=tuple(patches), configure_options=tuple(top["configure_options"]),
        make_options=tuple(top["make_options"]), env=dict(top["env"]), vars=dict(top["vars"]),
        prefix=top["prefix"], per_variant=per_variant, commands=commands,
        license=top["license"], inputs=json_digest(hashed_settings(data)))


def _source(table: Any, err: Any) -> Source | None:
    if not isinstance(table, dict):
        err("a [source] table is required (url + sha256, or debian + debian_version + sha256)")
        return None
    for key in table:
        if key not in SOURCE_KEYS:
            err(f"[source]: unknown key {key!r} (known: {', '.join(sorted(SOURCE_KEYS))})",
                "source", key)
    sha = table.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        err("[source] sha256 must be the file's sha256 (64 hex digits)", "source", "sha256")
        return None
    filename = table.get("file", "")
    if "file" in table and not (isinstance(filename, str) and plain_file_name(filename)):
        err(f"[source] file must be a plain file name, not {filename!r}", "source", "file")
        return None
    if isinstance(table.get("url"), str):
        source = UrlSource(url=table["url"], sha256=sha.lower(), filename=filename)
        if not plain_file_name(source.name):
            err(f"[source] url {source.url!r} ends in no plain file name: name the file with "
                'file = "NAME"', "source", "url")
            return None
        return source
    package, version = table.get("debian"), table.get("debian_version")
    if isinstance(package, str) and isinstance(version, str):
        if not DEB_NAME_RE.match(package):
            err(f"[source] debian must be a Debian package name, not {package!r}", "source",
                "debian")
            return None
        if not DEB_VERSION_RE.match(version):
            err(f"[source] debian_version must be a Debian version, not {version!r}", "source",
                "debian_version")
            return None
        return DebianSource(package=package, version=version, sha256=sha.lower(),
                            filename=filename)
    err("[source] needs url, or debian and debian_version", "source")
    return None


def install_path(path: str) -> bool:
    """Whether ``path`` is an absolute installation path that stays inside DESTDIR."""
    return path.startswith("/") and "\0" not in path and ".." not in path.split("/")


def load_packages(component: Path) -> dict[str, Package]:
    """Every package of a component: each folder holding package.toml (all errors at once)."""
    packages: dict[str, Package] = {}
    errors: list[InputError] = []
    if not component.is_dir():
        raise InputError("component folder does not exist", component)
    for sub in sorted(p for p in component.iterdir() if os.path.lexists(p / PACKAGE_FILE)):
        try:
            pkg = load_package(sub)
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except InputError as exc:
            errors.append(exc)
            continue
        if pkg.name in packages:
            errors.append(InputError(f"package {pkg.name!r} is also defined in "
                                     f"{packages[pkg.name].toml}", pkg.toml))
            continue
        packages[pkg.name] = pkg
    if errors:
        raise InputErrors(errors)
    return packages


def dependencies(packages: Mapping[str, Package]) -> dict[str, tuple[str, ...]]:
    """The packages' graph: each package's name -> the packages it depends on, by name."""
    return {n: p.depends for n, p in sorted(packages.items())}


def build_order(packages: Mapping[str, Package]) -> list[str]:
    """Packages in dependency order; an unknown dependency or a cycle is an InputError."""
    errors: list[InputError] = []
    for pkg in packages.values():
        for dep in pkg.depends:
            if dep not in packages:
                errors.append(InputError(
                    f"package {pkg.name!r} depends on unknown package {dep!r} "
                    f"(packages: {', '.join(sorted(packages))})", pkg.toml,
                    Lines(pkg.toml).value("", "depends", dep)))
    if errors:
        raise InputErrors(errors)
    try:
        return topo_order(dependencies(packages))
    except DependencyCycle as exc:
        cycle = exc.cycle
        first = packages[cycle[0]]
        raise InputError("package dependency cycle: " + " -> ".join(cycle), first.toml,
                         Lines(first.toml).key("", "depends")) from None
