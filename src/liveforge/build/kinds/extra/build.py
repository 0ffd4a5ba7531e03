"""Building one variant of an ``extra`` package: fetch, unpack, patch, configure, make, install.

A variant is ``32`` or ``64``, in the main phase (against proto/) or the strap phase (against
the host, into proto.strap/); its folder is named exactly like illumos-extra's,
``<name>-<version>-64`` or ``<name>-<version>-32strap``. Everything is installed into a private
staging folder (``DESTDIR``) first; the caller delivers the staging folder into the proto area,
so a package that is up to date is delivered again without rebuilding.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.kinds.base.context import BuildContext
from liveforge.build.kinds.extra.package import Package, VariantOptions
from liveforge.util.errors import BuildError
from liveforge.util.fetch import Fetcher
from liveforge.util.fileio import text_bytes
from liveforge.util.proc import log_tail
from liveforge.util.scratch import make_temp_dir, remove_leftovers, remove_temp, replace_tree
from liveforge.util.unpack import unpack_source


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant build of one package."""

    pkg: Package
    bits: str           # "32" | "64"
    strap: bool

    @property
    def dirname(self) -> str:
        return self.pkg.variant_dir(self.bits, self.strap)

    @property
    def options(self) -> VariantOptions:
        return self.pkg.per_variant.get(self.bits, VariantOptions())


def toolchain_env(base: Mapping[str, str], *, cc: str, debug: bool, bits: str, against: Path,
                  libdir: str, prefix: str, jobs: int) -> dict[str, str]:
    """Compiler environment of a variant: ``-m32``/``-m64``, headers and libraries of the
    area built against (``-isystem``, ``-L``, ``-rpath-link``), DEBUG flags."""
    env = dict(base)
    flag = f"-m{bits}"
    opt = "-O0 -g" if debug else "-O2"
    include = f"-isystem {against}/usr/include"
    env.update({
        "CC": f"{cc} {flag}",
        "CXX": f"{env.get('CXX', 'g++')} {flag}",
        "CFLAGS": f"{opt} {include}",
        "CXXFLAGS": f"{opt} {include}",
        "CPPFLAGS": include,
        "LDFLAGS": f"-L{against}{libdir} -Wl,-rpath-link,{against}{libdir}",
        "PKG_CONFIG_PATH": "",
        "PKG_CONFIG_LIBDIR": f"{against}{libdir}/pkgconfig:{against}/usr/share/pkgconfig",
        "PKG_CONFIG_SYSROOT_DIR": str(against),
        "PREFIX": prefix,
        "LIBDIR": libdir,
        "VARIANT": bits,
        "MAX_JOBS": str(jobs),
    })
    return env


def variant_env(ctx: BuildContext, v: Variant, against: Path) -> dict[str, str]:
    env = toolchain_env(ctx.base_env(), cc=ctx.ws.env_value("CC", "gcc"), debug=ctx.ws.debug,
                        bits=v.bits, against=against, libdir=v.pkg.libdir(v.bits),
                        prefix=v.pkg.prefix, jobs=ctx.jobs)
    env.update(v.pkg.env)
    env.update(v.options.env)
    return env


def apply_patches(ctx: BuildContext, pkg: Package, tree: Path) -> None:
    """``patch -p1`` each patch in order; a failure names the patch and shows the rejects."""
    for patch in pkg.patches:
        ctx.note(f"applying {patch}")
        with tempfile.NamedTemporaryFile(suffix=".rej", delete=False) as rej:
            rej_path = Path(rej.name)
        try:
            proc = subprocess.run(
                ["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
                 "-r", str(rej_path), "-i", str(patch)],
                cwd=tree, capture_output=True, check=False)
            ctx.log.write(proc.stdout + proc.stderr)
            output = (proc.stdout + proc.stderr).decode(errors="replace")
            ctx.log.flush()
            if proc.returncode != 0:
                rejected = rej_path.read_text(errors="replace") if rej_path.is_file() else ""
                report = f"patch {patch} does not apply to {pkg.name}\n"
                if rejected:
                    report += f"--- rejected hunks of {patch.name} ---\n{rejected}"
                ctx.log.write(text_bytes(report))
                ctx.log.flush()
                raise BuildError(f"extra package {pkg.name}: patch {patch} does not apply",
                                 ctx.log_path, tail=output.rstrip() + "\n" + report)
        except OSError as exc:
            raise BuildError(f"cannot run patch: {exc.strerror} (apt-get install patch)",
                             ctx.log_path) from None
        finally:
            rej_path.unlink(missing_ok=True)


def prepare(ctx: BuildContext, fetcher: Fetcher, v: Variant, build_root: Path) -> Path:
    """Fetch and verify the source, unpack it to a temporary folder, patch it, and rename it
    to the variant folder (a previous one is replaced)."""
    archive = fetcher.fetch(v.pkg.source)
    dest = build_root / v.dirname
    ctx.note(f"unpacking {archive.name} into {dest}")
    return unpack_source(archive, dest, lambda tree: apply_patches(ctx, v.pkg, tree))


def _run(ctx: BuildContext, v: Variant, argv: list[str], cwd: Path, env: Mapping[str, str],
         step: str) -> None:
    try:
        ctx.run(argv, cwd=cwd, env=env, what=f"{v.pkg.name} {v.dirname}: {step}")
    except BuildError as exc:
        raise BuildError(f"extra package {exc} (build folder {cwd}, log {ctx.log_path})",
                         ctx.log_path, exc.tail or log_tail(ctx.log_path, 20)) from None


def compile_install(ctx: BuildContext, v: Variant, src: Path, stage: Path,
                    against: Path) -> None:
    """Configure, make and install one variant into the staging folder ``stage``."""
    pkg = v.pkg
    env = variant_env(ctx, v, against)
    env["DESTDIR"] = str(stage)
    make_opts = [*pkg.make_options, *v.options.make_options]
    if pkg.build == "autotools":
        _run(ctx, v, ["./configure", f"--prefix={pkg.prefix}", f"--libdir={pkg.libdir(v.bits)}",
                      *pkg.configure_options, *v.options.configure_options],
             src, env, "configure")
    if pkg.build in ("autotools", "make"):
        _run(ctx, v, ["make", f"-j{ctx.jobs}", *make_opts], src, env, "make")
        _run(ctx, v, ["make", f"DESTDIR={stage}", *make_opts, "install"], src, env,
             "make install")
        return
    for step in ("configure", "build", "install"):
        command = pkg.commands.get(step)
        if command:
            _run(ctx, v, ["sh", "-ec", command], src, env, step)


def build_variant(ctx: BuildContext, fetcher: Fetcher, v: Variant, build_root: Path,
                  stage_root: Path, against: Path) -> Path:
    """The whole variant build; returns its staging folder (replaced only on success)."""
    ctx.note(f"building {v.pkg.name} {v.dirname}")
    src = prepare(ctx, fetcher, v, build_root)
    remove_leftovers(stage_root)
    stage = stage_root / v.dirname
    tmp = make_temp_dir(stage_root, v.dirname)
    try:
        compile_install(ctx, v, src, tmp, against)
        replace_tree(tmp, stage)
    finally:
        remove_temp(tmp)
    return stage
