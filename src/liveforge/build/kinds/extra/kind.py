"""The ``extra`` kind: third-party packages from pinned upstream sources plus our patches.

smartos-live's illumos-extra as a component kind. The component folder holds one folder per
package (see :mod:`.extra_package` for ``package.toml``) and a ``manifest`` file. Two phases:

``strap``  packages with ``strap = true``, built against the host into proto.strap/ before the
           rest of the world. Like every step, it comes from the build cache when its key
           matches, whole or variant by variant (``FORCE_STRAP_REBUILD=yes`` in build.env
           always builds it locally).
``main``   every package's ``variants``, built against proto/ and installed into it; then the
           component ``manifest`` is written to ``manifest.d/<component>.manifest`` with
           ``$VAR``/``${VAR}`` replaced (``<NAME>_VERSION`` and ``vars`` of every package, then
           build.env; unknown names are left for the manifest combiner).

Each package has its own stamp in ``.liveforge/extra/<component>/stamps/<phase>/``, so only
packages whose inputs changed (package folder, patches, variants, their dependencies, the
build.env keys the component sees, the compiler; in the main phase also the component's
dependencies and the strap packages) are rebuilt. Build and staging folders live in
``.liveforge/extra/<component>/{build,stage}/<package>/<name>-<version>-<variant>``.

platform.toml keys: ``path`` (required), ``manifest`` (default ``"manifest"``, relative to the
component folder), plus the common ``env``/``depends``.

From the build context: ``package`` (build just this package, forced, with its stale
dependencies), ``variant`` (``32``/``64``: only that variant of ``package``), ``phase`` (the
strap phase for ``liveforge build --strap``), and its fetcher (offline with ``--offline``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from liveforge.build.config import ComponentSpec
from liveforge.build.kinds.base import MAIN, STRAP, Kind
from liveforge.build.kinds.base.context import BuildContext
from liveforge.build.kinds.base.origin import Origin
from liveforge.build.kinds.extra.build import Variant, build_variant, toolchain_env
from liveforge.build.kinds.extra.package import (
    PACKAGE_FILE,
    Package,
    build_order,
    dependencies,
    load_packages,
)
from liveforge.build.workspace import Workspace
from liveforge.util.depgraph import closure
from liveforge.util.errors import InputError, UsageError
from liveforge.util.fetch import Fetcher
from liveforge.util.fileio import read_json, read_text, write_atomic
from liveforge.util.hashing import file_digest, json_digest
from liveforge.util.keyvalue import substitute
from liveforge.util.paths import path_problem
from liveforge.util.scratch import remove_tree
from liveforge.util.unpack import collisions, merge_tree, refuse_collisions, tree_paths

SETTINGS = {"kind", "path", "env", "manifest"}
STRAP_FORMAT = 1


def strap_key(hashes: Mapping[str, str]) -> str:
    """The identity of a set of strap packages (name -> package input hash): part of every
    main-phase package's hash, so a change to the strap rebuilds what builds against it."""
    return json_digest({"format": STRAP_FORMAT, "packages": dict(hashes)})
_compilers: dict[str, str] = {}


def compiler_id(cc: str) -> str:
    """Version and target of the host compiler (part of every package hash)."""
    if cc not in _compilers:
        try:
            proc = subprocess.run([*cc.split(), "-dumpfullversion", "-dumpmachine"],
                                  capture_output=True, text=True, check=False)
            _compilers[cc] = " ".join(proc.stdout.split()) or "unknown"
        except OSError:
            _compilers[cc] = "missing"
    return _compilers[cc]


def install_against(stage: Path, against: Path, package: str,
                    delivered: dict[str, tuple[str, str]], owned: Mapping[str, str]) -> None:
    """Merge a variant's staging folder into the area built against, refusing an entry that
    another package of the step, or another step (``owned``: path -> step, see
    :meth:`BuildContext.owned`), put there with different content, as the engine refuses one
    of another step (:func:`~liveforge.util.unpack.collisions`). The variants of one package
    may replace each other's files: the 64-bit install goes over the 32-bit one.
    ``delivered`` (path -> package, variant folder) is what the step's packages put there so
    far; this one's entries are added."""
    variant = stage.name
    others = dict(owned)
    others.update({p: f"package {name} ({folder})" for p, (name, folder) in delivered.items()
                   if name != package})
    refuse_collisions(f"extra package {package} ({variant})", against,
                      collisions(stage, against, others))
    merge_tree(stage, against)
    for path in tree_paths(stage):
        delivered[path] = (package, variant)


class ExtraKind(Kind):
    name = "extra"
    has_packages = True

    # -- the plan ---------------------------------------------------------------------------
    def validate(self, spec: ComponentSpec) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if spec.path is None:
            problems.append((None, "kind \"extra\" needs a path"))
        for key in spec.settings:
            if key not in SETTINGS:
                problems.append((key, f"unknown setting {key!r} for kind \"extra\" "
                                      f"(known: {', '.join(sorted(SETTINGS))})"))
        manifest = spec.settings.get("manifest", "manifest")
        if not isinstance(manifest, str):
            problems.append(("manifest", "manifest must be a path relative to the component"))
        elif path_problem(manifest):
            problems.append(("manifest", f"manifest {manifest!r} is not a path inside the "
                                         "component"))
        return problems

    def cacheable(self, ws: Workspace, spec: ComponentSpec, phase: str) -> bool:
        """Not the strap phase when FORCE_STRAP_REBUILD=yes says to build it locally."""
        return phase != STRAP or ws.env_value("FORCE_STRAP_REBUILD", "no").lower() != "yes"

    def packages(self, ws: Workspace, spec: ComponentSpec) -> dict[str, Package]:
        return load_packages(ws.component_path(spec))

    def phases(self, spec: ComponentSpec) -> Sequence[str]:
        if spec.path is None or not spec.path.is_dir():
            return [MAIN]
        packages = load_packages(spec.path)
        return [STRAP, MAIN] if any(p.strap for p in packages.values()) else [MAIN]

    def package_hashes(self, ws: Workspace, spec: ComponentSpec, strap: bool,
                       deps: Mapping[str, str] | None = None) -> dict[str, str]:
        """Input hash of every package in a phase (those without variants there included,
        since dependents hash them). At build time, ``deps`` (``BuildContext.deps``) gives the
        main phase the input hashes of the component's dependencies, which the engine's own
        stamp covers by itself."""
        packages = self.packages(ws, spec)
        order = build_order(packages)
        # package.toml counts by its build inputs (Package.inputs), not its bytes: a licence
        # declared or corrected there rebuilds nothing
        trees = dict(zip(order, ws.hasher.hash_all((packages[n].dir for n in order),
                                                   without=(PACKAGE_FILE,)), strict=True))
        context: dict[str, object] = {
            "phase": STRAP if strap else MAIN,
            "env": ws.component_env(spec),
            "compiler": compiler_id(ws.env_value("CC", "gcc")),
        }
        if not strap:
            stp = {n: p for n, p in packages.items() if p.strap}
            if stp:
                context["strap"] = strap_key(
                    {n: h for n, h in self.package_hashes(ws, spec, True).items() if n in stp})
            if deps is not None:
                context["depends"] = {d: deps[d] for d in spec.depends}
        hashes: dict[str, str] = {}
        for name in order:
            pkg = packages[name]
            blob = {
                "tree": trees[name],
                "package": pkg.inputs,
                "patches": [file_digest(p) for p in pkg.patches],
                "variants": pkg.phase_variants(strap),
                "deps": {d: hashes[d] for d in pkg.depends},
                "context": context,
            }
            hashes[name] = json_digest(blob)
        return hashes

    def inputs(self, ws: Workspace, spec: ComponentSpec, phase: str) -> dict[str, str]:
        path = ws.component_path(spec)
        if not path.is_dir():
            return {"source": "missing"}
        strap = phase == STRAP
        packages = self.packages(ws, spec)
        own = {f"package:{n}": h for n, h in self.package_hashes(ws, spec, strap).items()
               if packages[n].phase_variants(strap)}
        if not strap:
            manifest = self.manifest_path(ws, spec)
            own["manifest"] = file_digest(manifest) if manifest.is_file() else "missing"
        return own

    def origins(self, ws: Workspace, spec: ComponentSpec) -> list[Origin]:
        """Each package: its upstream source (URL, or the Debian pool URL of a Debian source
        file) with its sha256, and the licence package.toml declares."""
        from liveforge.util.fetch import UrlSource

        origins: list[Origin] = []
        for name, pkg in sorted(self.packages(ws, spec).items()):
            source = pkg.source
            if isinstance(source, UrlSource):
                url = source.url
            else:
                pool = source.package[:4] if source.package.startswith("lib") else \
                    source.package[:1]
                url = f"https://deb.debian.org/debian/pool/main/{pool}/{source.package}/" \
                    f"{source.name}"
            origins.append(Origin(name=name, version=pkg.version, license=pkg.license,
                                  source=url, sha256=source.sha256,
                                  note="" if pkg.license != "NOASSERTION" else
                                  f"{pkg.toml.relative_to(ws.root)} declares no license"))
        return origins

    # -- building ---------------------------------------------------------------------------
    @staticmethod
    def state(ws: Workspace, spec: ComponentSpec) -> Path:
        return ws.state_dir / "extra" / spec.name

    def manifest_path(self, ws: Workspace, spec: ComponentSpec) -> Path:
        return ws.component_path(spec) / str(spec.settings.get("manifest", "manifest"))

    def build(self, ctx: BuildContext) -> None:
        ws, spec = ctx.ws, ctx.spec
        strap = ctx.phase == STRAP
        target = ctx.stage
        target.mkdir(parents=True, exist_ok=True)
        packages = self.packages(ws, spec)
        order = build_order(packages)
        hashes = self.package_hashes(ws, spec, strap, deps=ctx.deps)
        requested = ctx.package
        only_variant = ctx.variant
        if requested is not None and requested not in packages:
            raise UsageError(f"component {spec.name!r} has no package {requested!r} "
                             f"(packages: {', '.join(sorted(packages))})")
        if only_variant and only_variant not in ("32", "64"):
            raise UsageError(f"unknown variant {only_variant!r} (known: 32, 64)")
        wanted = [n for n in order if packages[n].phase_variants(strap)]
        if requested is not None:
            if not packages[requested].phase_variants(strap):
                raise UsageError(f"package {requested!r} has no variants in the "
                                 f"{'strap' if strap else 'main'} phase")
            keep = closure(dependencies(packages), [requested])
            wanted = [n for n in wanted if n in keep]
        force_all = strap and requested is None and \
            ws.env_value("FORCE_STRAP_REBUILD", "no").lower() == "yes"
        if force_all:
            ctx.note("FORCE_STRAP_REBUILD=yes: building proto.strap locally")
        fetcher = ctx.fetcher()
        # each variant is a part of the step's output in the build cache, keyed by the
        # package's inputs as planned (the engine adds the component's dependencies)
        portable = self.package_hashes(ws, spec, strap) if ctx.parts is not None else {}
        stages: list[Path] = []
        delivered: dict[str, tuple[str, str]] = {}
        owned = ctx.owned()
        for name in wanted:
            pkg = packages[name]
            forced = force_all or name == requested
            stages += self.build_package(ctx, fetcher, pkg, strap, hashes[name], forced,
                                         only_variant if name == requested else None,
                                         portable.get(name, ""), delivered, owned)
        for stage in stages:
            merge_tree(stage, target)
        if not strap:
            self.write_manifest(ctx, packages)

    def build_package(self, ctx: BuildContext, fetcher: Fetcher, pkg: Package, strap: bool,
                      digest: str, forced: bool, only_variant: str | None,
                      portable: str, delivered: dict[str, tuple[str, str]],
                      owned: Mapping[str, str]) -> list[Path]:
        """Build the package's variants of this phase unless its stamp is current; return
        its staging folders (the step's output, also when nothing was built). Each is also
        delivered into the area built against at once, in build order, so that dependents
        build against it (see :func:`install_against`)."""
        state = self.state(ctx.ws, ctx.spec)
        phase = STRAP if strap else MAIN
        stamp = state / "stamps" / phase / f"{pkg.name}.json"
        variants = [Variant(pkg, bits, strap) for bits in pkg.phase_variants(strap)]
        stages = [state / "stage" / pkg.name / v.dirname for v in variants]
        current = read_json(stamp)
        against = ctx.area
        if not forced and isinstance(current, dict) and current.get("hash") == digest and \
                all(s.is_dir() for s in stages):
            ctx.note(f"{pkg.name}: up to date")
            for stage in stages:
                install_against(stage, against, pkg.name, delivered, owned)
            return stages
        stamp.unlink(missing_ok=True)
        for v, stage in zip(variants, stages, strict=True):
            if only_variant and v.bits != only_variant:
                continue
            part = {"package": pkg.name, "variant": v.dirname, "inputs": portable}
            if ctx.parts is not None and not forced and portable and \
                    ctx.parts.restore(part, stage):
                ctx.note(f"{pkg.name} {v.dirname}: restored from the build cache")
            else:
                build_variant(ctx, fetcher, v, state / "build" / pkg.name, stage.parent,
                              against)
                if ctx.parts is not None and not forced and portable:
                    ctx.parts.store(part, stage)
            install_against(stage, against, pkg.name, delivered, owned)  # later ones build on it
        if only_variant is None:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(stamp, json.dumps({"hash": digest, "package": pkg.name,
                                            "variants": [v.dirname for v in variants]}) + "\n")
        return [s for s in stages if s.is_dir()]

    def write_manifest(self, ctx: BuildContext, packages: Mapping[str, Package]) -> None:
        ws, spec = ctx.ws, ctx.spec
        source = self.manifest_path(ws, spec)
        out = ctx.manifest_dir / f"{spec.name}.manifest"
        if not source.is_file():
            ctx.note(f"no manifest file {source}: the component ships nothing")
            out.unlink(missing_ok=True)
            return
        values = {**ws.build_config, **ws.build_env}
        for pkg in packages.values():
            values.update(pkg.manifest_vars())
        ctx.manifest_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(out, substitute(read_text(source), values, keep_undefined=True))
        ctx.note(f"wrote {out}")

    # -- the other verbs (update: the default, nothing to pull; sources are pinned by sha256) -
    def clean(self, ctx: BuildContext) -> None:
        state = self.state(ctx.ws, ctx.spec)
        for sub in ("build", "stage", "stamps"):
            if (state / sub).exists():
                remove_tree(state / sub)

    def check(self, ctx: BuildContext) -> None:
        packages = self.packages(ctx.ws, ctx.spec)
        build_order(packages)
        if not self.manifest_path(ctx.ws, ctx.spec).is_file():
            raise InputError("the component has no manifest file",
                             self.manifest_path(ctx.ws, ctx.spec))

    def shell_env(self, ctx: BuildContext) -> dict[str, str]:
        """The 64-bit main-phase toolchain environment (against proto/)."""
        return toolchain_env(ctx.base_env(), cc=ctx.ws.env_value("CC", "gcc"),
                             debug=ctx.ws.debug, bits="64", against=ctx.ws.proto,
                             libdir="/usr/lib", prefix="/usr", jobs=ctx.jobs)


KIND = ExtraKind()
