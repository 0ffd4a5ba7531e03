"""The ``deb`` kind: prebuilt Debian binary packages unpacked into proto/.

platform.toml::

    [components.kernel]
    kind = "deb"
    packages = ["linux-image-amd64", "busybox-static"]
    manifest = "manifests/kernel.manifest"    # optional, relative to the workspace
    include = ["boot/vmlinuz-*"]              # optional: what it delivers and a generated
                                              # manifest lists
    links = { "boot/vmlinuz" = "boot/vmlinuz-*" }   # optional: symlinks to single glob matches
    license = "GPL-2.0-only"                  # optional: the packages' licence (the SBOM),
                                              # declared: it beats their copyright files

``liveforge configure`` resolves each name (a metapackage to the one package it depends on) to
an exact version, pool file and sha256 and records it in ``platform.lock``, a TOML file the user
commits (:func:`lock_packages`; ``--refresh-lock`` resolves every name again). Builds use only
the lock: each .deb is taken from the cache (verified) or downloaded with apt, then unpacked with
the tar-slip checks, keeping modes. A locked version that the archive no longer has is an error
telling to run ``liveforge configure --refresh-lock``.

The component's manifest: with ``manifest``, that file with ``$VAR`` substitution (build.env,
plus ``<REQUEST>_VERSION`` and ``<REQUEST>_PACKAGE`` of every locked name, e.g.
``LINUX_IMAGE_AMD64_PACKAGE``); without it, one generated from everything unpacked (directories,
files with their modes, symlinks, hard links; owner and group from the package), narrowed to the
paths matching ``include`` (and their parent directories) when given, plus the ``links``.
With ``include``, only those paths (and each package's ``usr/share/doc/<name>/copyright``,
for the SBOM) are delivered into proto/: the rest of the packages, a kernel's modules say, is
left out of the step's output, and so of the build cache.

platform.lock::

    format = 1

    [[deb]]
    component = "kernel"
    request = "linux-image-amd64"
    name = "linux-image-6.1.0-56-amd64"
    version = "6.1.192-2"
    arch = "amd64"
    filename = "pool/main/l/linux-signed-amd64/linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb"
    size = 70550672
    sha256 = "..."
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveforge.build.config import LICENSE_FIELD, ComponentSpec, workspace_path_problem
from liveforge.build.kinds.base import MAIN, Kind, make_fetcher
from liveforge.build.kinds.base.context import BuildContext
from liveforge.build.kinds.base.origin import Origin
from liveforge.build.workspace import Workspace
from liveforge.util.errors import InputError
from liveforge.util.events import Reporter
from liveforge.util.fetch import DEB_NAME_RE, DebPin, plain_file_name
from liveforge.util.fields import Field, read_table
from liveforge.util.fileio import read_text, write_atomic
from liveforge.util.hashing import file_digest
from liveforge.util.keyvalue import substitute
from liveforge.util.paths import path_problem
from liveforge.util.toml import dumps, read_toml
from liveforge.util.unpack import Entry, install_deb

LOCK_FILE = "platform.lock"
LOCK_FORMAT = 1
# a deb component's table: the keys checked by hand in validate take any value here
FIELDS = (
    Field("kind", "any"),
    Field("env", "any"),
    Field("packages", "any"),
    Field("manifest", "any"),
    Field("include", "any"),
    Field("links", "any"),
    LICENSE_FIELD,
)
SETTINGS = {f.key for f in FIELDS}
PIN_FIELDS = ("name", "version", "arch", "filename", "size", "sha256")
LOCK_COMMENT = """platform.lock: exact versions and sha256 of fetched inputs, written by
`liveforge configure`. Commit it; `liveforge configure --refresh-lock` resolves
every name again."""


@dataclass(frozen=True, slots=True)
class Locked:
    component: str
    request: str
    pin: DebPin


# -- platform.lock --------------------------------------------------------------------------
def lock_path(ws: Workspace) -> Path:
    return ws.root / LOCK_FILE


def read_lock(ws: Workspace) -> tuple[dict[tuple[str, str], Locked], dict[str, Any]]:
    """The locked packages by (component, request), and the file's other data (kept)."""
    path = lock_path(ws)
    if not path.is_file():
        return {}, {}
    try:
        data, _ = read_toml(path)
    except InputError as exc:
        raise InputError(f"unreadable lock file: {exc.message}; run `liveforge configure "
                         "--refresh-lock`", path, exc.line) from None
    locked: dict[tuple[str, str], Locked] = {}
    for number, item in enumerate(data.get("deb", []), 1):
        try:
            pin = DebPin(**{k: item[k] for k in PIN_FIELDS})
            entry = Locked(str(item["component"]), str(item["request"]), pin)
        except (KeyError, TypeError) as exc:
            raise InputError(f"[[deb]] entry {number} is incomplete ({exc}); run `liveforge "
                             "configure --refresh-lock`", path) from None
        if not plain_file_name(pin.basename):
            raise InputError(f"[[deb]] entry {number}: filename {pin.filename!r} does not end "
                             "in a plain file name; run `liveforge configure --refresh-lock`",
                             path)
        locked[(entry.component, entry.request)] = entry
    return locked, {k: v for k, v in data.items() if k not in ("deb", "format")}


def format_lock(locked: Mapping[tuple[str, str], Locked], other: Mapping[str, Any]) -> str:
    """platform.lock's text: the format, ``other`` (the data of a read lock that is not ours,
    kept) and the ``[[deb]]`` entries in (component, request) order."""
    entries = [{"component": e.component, "request": e.request,
                **{k: getattr(e.pin, k) for k in PIN_FIELDS}}
               for e in sorted(locked.values(), key=lambda e: (e.component, e.request))]
    return dumps({"format": LOCK_FORMAT, **({"deb": entries} if entries else {}), **other},
                 LOCK_COMMENT)


def lock_packages(ws: Workspace, refresh: bool = False, note: Callable[[str], None] | None = None,
                  only: str | None = None) -> dict[tuple[str, str], Locked]:
    """Resolve every deb component's package names not yet locked (all of them with
    ``refresh``; just component ``only``'s when given) and rewrite platform.lock when anything
    changed; entries of names no longer listed are dropped. Called by ``liveforge configure``
    (through :meth:`DebKind.configure`); offline (``ws.offline``) only the cache is asked."""
    locked, other = read_lock(ws)
    wanted = {(spec.name, req): spec for spec in ws.components.values() if spec.kind == "deb"
              for req in spec.settings.get("packages", [])}
    result = {k: v for k, v in locked.items() if k in wanted}
    todo = [k for k in wanted if (refresh or k not in result) and only in (None, k[0])]
    if todo:
        fetcher = make_fetcher(ws, note)
        if not ws.offline:
            fetcher.apt.update()  # resolve against the archive as it is now
        for component, request in todo:
            pin, via = fetcher.apt.resolve(request)
            if note:
                note(f"locked {request}{f' (via {via})' if via else ''}: "
                     f"{pin.name}={pin.version}")
            result[(component, request)] = Locked(component, request, pin)
    if result != locked or not lock_path(ws).is_file():
        write_atomic(lock_path(ws), format_lock(result, other))
    return result


# -- the kind -------------------------------------------------------------------------------
def var_prefix(request: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", request).upper()


class DebKind(Kind):
    name = "deb"
    version = 2  # 2: with include, only what it selects (and the copyright files) is delivered

    def validate(self, spec: ComponentSpec) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        settings = spec.settings

        def report(message: str, key: str, item: object) -> None:
            if message.startswith("unknown key"):
                message = f"unknown setting {key!r} for kind \"deb\" " \
                    f"(known: {', '.join(sorted(SETTINGS))})"
            problems.append((key, message))

        read_table(settings, FIELDS, report)
        packages = settings.get("packages")
        if not isinstance(packages, list) or not packages or \
                not all(isinstance(p, str) and p for p in packages):
            problems.append(("packages", "packages must be a non-empty list of Debian "
                                         "package names"))
        else:
            problems += [("packages", f"packages: {p!r} is not a Debian package name")
                         for p in packages if not DEB_NAME_RE.match(p)]
        manifest = settings.get("manifest", "")
        if not isinstance(manifest, str):
            problems.append(("manifest", "manifest must be a path relative to the workspace"))
        elif "manifest" in settings and (problem := workspace_path_problem(manifest)):
            problems.append(("manifest", f"manifest: {problem} (the manifest is a file inside "
                                         "the workspace)"))
        include = settings.get("include", [])
        if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
            problems.append(("include", "include must be a list of path patterns"))
        links = settings.get("links", {})
        if not isinstance(links, dict) or not all(isinstance(v, str) for v in links.values()):
            problems.append(("links", "links must be a table of path = \"glob\""))
        else:
            for name, pattern in links.items():
                if problem := path_problem(name):
                    problems.append(("links", f"links: {problem}"))
                elif path_problem(pattern):
                    problems.append(("links", f"links: pattern {pattern!r} is not a path "
                                              "inside proto/"))
        return problems

    def phases(self, spec: ComponentSpec) -> Sequence[str]:
        return [MAIN]

    def toolchain(self, ws: Workspace, spec: ComponentSpec) -> Sequence[str]:
        return []  # unpacks prebuilt packages: no compiler touches the output

    def locked(self, ws: Workspace, spec: ComponentSpec) -> list[tuple[str, Locked | None]]:
        entries, _ = read_lock(ws)
        return [(req, entries.get((spec.name, req))) for req in spec.settings["packages"]]

    def inputs(self, ws: Workspace, spec: ComponentSpec, phase: str) -> dict[str, str]:
        own = {f"package:{req}": f"{e.pin.describe()} sha256:{e.pin.sha256}" if e else
               "unlocked" for req, e in self.locked(ws, spec)}
        manifest = spec.settings.get("manifest")
        if manifest:
            path = ws.root / manifest
            own["manifest"] = file_digest(path) if path.is_file() else "missing"
        return own

    def configure(self, ws: Workspace, spec: ComponentSpec, reporter: Reporter,
                  refresh: bool) -> None:
        """Lock the component's Debian packages in platform.lock."""
        lock_packages(ws, refresh=refresh, note=reporter.info, only=spec.name)

    def build(self, ctx: BuildContext) -> None:
        ws, spec = ctx.ws, ctx.spec
        pins: list[tuple[str, Locked]] = []
        for req, entry in self.locked(ws, spec):
            if entry is None:
                raise InputError(f"package {req!r} of component {spec.name!r} is not locked: "
                                 "run `liveforge configure`", lock_path(ws))
            pins.append((req, entry))
        fetcher = ctx.fetcher()
        entries: list[Entry] = []
        for _req, entry in pins:
            deb = fetcher.fetch_deb(entry.pin)
            ctx.note(f"unpacking {deb.name} into {ctx.stage}")
            entries += install_deb(deb, ctx.stage, ws.state_dir / "deb")
        links = self.make_links(ctx)
        include = spec.settings.get("include", [])
        if include:
            # what ships, and each package's copyright file (the SBOM reads its licence)
            notices = {f"usr/share/doc/{entry.pin.name}/copyright" for _, entry in pins}
            keep_only(ctx.stage, selected(entries, include) | set(links) | notices)
        self.write_manifest(ctx, pins, entries, links)

    def make_links(self, ctx: BuildContext) -> dict[str, str]:
        """Create the ``links`` symlinks in the staging tree: name -> the single match of its
        glob there."""
        made: dict[str, str] = {}
        proto = ctx.stage
        for name, pattern in sorted(ctx.spec.settings.get("links", {}).items()):
            matches = sorted(p for p in proto.glob(pattern) if p.name != Path(name).name)
            if len(matches) != 1:
                raise InputError(f"links: {pattern!r} matches {len(matches)} paths in proto/ "
                                 f"({', '.join(str(m.relative_to(proto)) for m in matches)})"
                                 " but must match exactly one", ctx.ws.toml_path)
            link = proto / name
            target = os.path.relpath(matches[0], link.parent)
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(target, link)
            made[name] = target
        return made

    def write_manifest(self, ctx: BuildContext, pins: list[tuple[str, Locked]],
                       entries: list[Entry], links: Mapping[str, str]) -> None:
        ws, spec = ctx.ws, ctx.spec
        out = ctx.manifest_dir / f"{spec.name}.manifest"
        ctx.manifest_dir.mkdir(parents=True, exist_ok=True)
        given = spec.settings.get("manifest")
        if given:
            source = ws.root / given
            if not source.is_file():
                raise InputError(f"component {spec.name!r}: manifest {given!r} does not exist",
                                 ws.toml_path, spec.line)
            values = {**ws.build_config, **ws.build_env}
            for req, entry in pins:
                values[f"{var_prefix(req)}_VERSION"] = entry.pin.version
                values[f"{var_prefix(req)}_PACKAGE"] = entry.pin.name
            write_atomic(out, substitute(read_text(source), values, keep_undefined=True))
            return
        write_atomic(out, generated_manifest(entries, spec.settings.get("include", []), links))
        ctx.note(f"wrote generated manifest {out}")

    def origins(self, ws: Workspace, spec: ComponentSpec) -> list[Origin]:
        """Each locked package: its pool URL and sha256, and its licence: the one platform.toml
        declares (``license``), else the one its machine-readable copyright file (unpacked in
        proto/) gives, else NOASSERTION."""
        from liveforge.util.dep5 import copyright_licence

        mirror = {**ws.build_config, **ws.build_env}.get("DEBIAN_MIRROR", "").rstrip("/")
        origins: list[Origin] = []
        for req, entry in self.locked(ws, spec):
            if entry is None:
                origins.append(Origin(req, "NOASSERTION", "NOASSERTION",
                                      note=f"{req} is not locked"))
                continue
            pin = entry.pin
            base = mirror or ("https://security.debian.org/debian-security"
                              if pin.filename.startswith("pool/updates/")
                              else "https://deb.debian.org/debian")
            declared = spec.settings.get("license")
            if isinstance(declared, str):
                origins.append(Origin(
                    name=pin.name, version=pin.version, source=f"{base}/{pin.filename}",
                    sha256=pin.sha256, license=declared))
                continue
            copyright = ws.proto / "usr/share/doc" / pin.name / "copyright"
            try:
                if not os.path.realpath(copyright).startswith(os.path.realpath(ws.proto) + "/"):
                    raise OSError("leads outside proto/")
                found = copyright_licence(read_text(copyright))
                note = "" if found else f"{copyright.relative_to(ws.root)} is not " \
                    "machine-readable (DEP-5)"
            except (OSError, InputError):
                found, note = None, f"no {copyright.relative_to(ws.root)}"
            origins.append(Origin(
                name=pin.name, version=pin.version, source=f"{base}/{pin.filename}",
                sha256=pin.sha256, license=found.expression if found else "NOASSERTION",
                refs=found.refs if found else (), note=note))
        return origins

    def check(self, ctx: BuildContext) -> None:
        for req, entry in self.locked(ctx.ws, ctx.spec):
            if entry is None:
                raise InputError(f"package {req!r} is not locked: run `liveforge configure`",
                                 lock_path(ctx.ws))


def selected(entries: list[Entry], include: Sequence[str]) -> set[str]:
    """The unpacked paths matching ``include`` (all without it), with their parents."""
    by_path = {e.path for e in entries}
    if not include:
        return by_path
    keep = {p for p in by_path if any(fnmatch.fnmatch(p, pat) for pat in include)}
    for path in list(keep):
        parent = os.path.dirname(path)
        while parent:
            if parent in by_path:
                keep.add(parent)
            parent = os.path.dirname(parent)
    return keep


def keep_only(tree: Path, keep: set[str]) -> None:
    """Remove from ``tree`` every file, link and folder whose path is not in ``keep`` (nor a
    parent of one)."""
    from liveforge.util.scratch import remove_tree

    parents: set[str] = set()
    for path in keep:
        while path := os.path.dirname(path):
            parents.add(path)
    for dirpath, dirnames, filenames in os.walk(tree, topdown=True):
        rel = os.path.relpath(dirpath, tree)
        rel = "" if rel == "." else rel + "/"
        for name in list(dirnames):
            path = rel + name
            if path not in keep and path not in parents:
                remove_tree(os.path.join(dirpath, name))
                dirnames.remove(name)
        for name in filenames:
            if rel + name not in keep:
                os.unlink(os.path.join(dirpath, name))


def generated_manifest(entries: list[Entry], include: Sequence[str],
                       links: Mapping[str, str]) -> str:
    """Manifest lines for unpacked entries (the last of a repeated path wins)."""
    by_path = {e.path: e for e in entries}
    keep = selected(entries, include)
    lines = ["# generated by liveforge from the unpacked Debian packages"]
    for path in sorted(keep):
        e = by_path[path]
        if e.kind in ("d", "f"):
            lines.append(f"{e.kind} {path} {e.mode:04o} {e.owner} {e.group}")
        else:
            lines.append(f"{e.kind} {path}={e.target}")
    for name, target in sorted(links.items()):
        lines.append(f"s {name}={target}")
    return "\n".join(lines) + "\n"


KIND = DebKind()
