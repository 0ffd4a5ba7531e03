"""Command-line parsing only: one small function per verb, errors turned into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from liveforge import __version__
from liveforge.build.buildstamp import buildstamp_now
from liveforge.build.cliargs import (
    Formatter,
    NarrowParser,
    ParseError,
    add_verb_arguments,
    global_options,
)
from liveforge.build.kinds import known_kinds
from liveforge.build.workspace import Workspace
from liveforge.util.errors import InputErrors, LiveforgeError, UsageError, os_error_text
from liveforge.util.events import Reporter, make_reporter

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from liveforge.build.workspace import WorkspaceLock
    from liveforge.util.events import EventLog


class _Locked:
    """``with ctx.locked() as ws``: the workspace, its lock held (no contextlib: a no-op run
    imports nothing it does not use)."""

    __slots__ = ("ws", "hold")

    def __init__(self, ws: Workspace, wait: bool):
        self.ws = ws
        self.hold: WorkspaceLock = ws.lock(wait=wait)

    def __enter__(self) -> Workspace:
        self.hold.__enter__()
        return self.ws

    def __exit__(self, *exc: object) -> None:
        self.hold.__exit__(*exc)


class Ctx:
    __slots__ = ("args", "reporter")

    def __init__(self, args: argparse.Namespace, reporter: Reporter):
        self.args = args
        self.reporter = reporter

    def __repr__(self) -> str:
        return f"Ctx(args={self.args!r}, reporter={self.reporter!r})"

    @property
    def root(self) -> Path:
        return Path(self.args.C or ".")

    def workspace(self, plan_ahead: bool = False) -> Workspace:
        """The workspace; ``plan_ahead``: the verb plans a build at once (see
        :class:`Workspace`)."""
        return Workspace(self.root, known_kinds(), jobs=self.args.jobs,
                         offline=self.args.offline, cache_mode=self.cache_mode,
                         plan_ahead=plan_ahead)

    @property
    def cache_mode(self) -> str | None:
        """The build cache of this run: ``off`` (--no-cache), ``readonly``
        (--cache-readonly), or None: as CACHE_MODE says."""
        if self.args.no_cache:
            return "off"
        return "readonly" if self.args.cache_readonly else None

    def locked(self, plan_ahead: bool = False) -> _Locked:
        return _Locked(self.workspace(plan_ahead), self.args.wait)

    def buildstamp(self) -> str:
        return buildstamp_now()

    def event_log(self, ws: Workspace, stamp: str) -> EventLog:
        """``with ctx.event_log(ws, stamp) as reporter``: the build's events also go to
        ``log/build.<stamp>.jsonl`` (what ``timeline`` and ``report`` read), from a run that
        started or restored a step: a later run of the same stamp that built nothing (a
        no-op ``live``) keeps the log of the build, whose durations the timeline shows."""
        from liveforge.util.events import EventLog

        return EventLog(self.reporter, ws.log_dir / f"build.{stamp}.jsonl",
                        keep=("start", "restored"))


# -- verbs ----------------------------------------------------------------------------------

def cmd_configure(ctx: Ctx) -> int:
    from liveforge.build.verbs.configure import ConfigureOptions, configure

    a = ctx.args
    opts = ConfigureOptions(debug=a.debug, force_strap=a.force_strap, clobber=a.clobber,
                            refresh_lock=a.refresh_lock)
    with ctx.locked() as ws:
        configure(ws, opts, ctx.reporter)
    return 0


def cmd_world(ctx: Ctx) -> int:
    from liveforge.build.verbs.world import world

    stamp = ctx.buildstamp()
    with ctx.locked(plan_ahead=True) as ws, ctx.event_log(ws, stamp) as reporter:
        world(ws, reporter, stamp)
    return 0


def cmd_build(ctx: Ctx) -> int:
    from liveforge.build.verbs.world import build_one

    a = ctx.args
    target, package = a.component, None
    if ":" in target:
        component, name = target.split(":", 1)
        if name != "strap":
            target, package = component, name
    if a.strap:
        target = f"{target}:strap"
    stamp = ctx.buildstamp()
    with ctx.locked(plan_ahead=True) as ws, ctx.event_log(ws, stamp) as reporter:
        build_one(ws, reporter, stamp, target, a.no_deps, package=package, variant=a.variant)
    return 0


def cmd_shell(ctx: Ctx) -> int:
    from liveforge.build.verbs.shell import shell

    return shell(ctx.workspace(), ctx.args.component, ctx.reporter, ctx.args.command)


def cmd_status(ctx: Ctx) -> int:
    from liveforge.build.verbs.status import print_status, status

    rows = status(ctx.workspace(plan_ahead=True))
    if ctx.args.json:
        import json

        print(json.dumps(rows, indent=1))
    else:
        print_status(rows)
    return 0


def cmd_update(ctx: Ctx) -> int:
    from liveforge.build.verbs.update import update

    with ctx.locked() as ws:
        changed = update(ws, ctx.reporter, ctx.buildstamp())
    if ctx.args.json:
        import json

        print(json.dumps({"event": "updated", "changed": changed}))
    return 0


def cmd_clean(ctx: Ctx) -> int:
    from liveforge.build.verbs.clean import clean

    with ctx.locked() as ws:
        return 1 if clean(ws, ctx.reporter) else 0


def cmd_clobber(ctx: Ctx) -> int:
    from liveforge.build.verbs.clean import clobber

    with ctx.locked() as ws:
        return 1 if clobber(ws, ctx.reporter) else 0


def cmd_live(ctx: Ctx) -> int:
    from liveforge.build.verbs.live import live

    stamp = ctx.buildstamp()
    with ctx.locked(plan_ahead=True) as ws, ctx.event_log(ws, stamp) as reporter:
        live(ws, reporter, stamp, strict=ctx.args.strict, root_tarball=ctx.args.root_tarball)
    return 0


def cmd_manifest(ctx: Ctx) -> int:
    from liveforge.build.image import lint as ml
    from liveforge.build.verbs.manifest import lint_manifests, show_manifests

    a = ctx.args
    if a.action == "diff":
        if len(a.platforms) != 2:
            raise UsageError("manifest diff needs two platforms (directories or .tgz files)")
        print(ml.format_diff(ml.diff(Path(a.platforms[0]), Path(a.platforms[1]))), end="")
        return 0
    if a.platforms:
        raise UsageError(f"manifest {a.action} takes no platform arguments")
    ws = ctx.workspace()
    reporter = Reporter(verbose=-1) if not a.json else ctx.reporter
    if a.action == "show":
        print(ml.format_show(show_manifests(ws, reporter, strict=a.strict)), end="")
        return 0
    report = lint_manifests(ws, reporter, strict=a.strict)
    text = ml.format_lint(report)
    print(text, end="" if text.endswith("\n") or not text else "\n")
    return 0 if report.ok else 1


def cmd_overlay(ctx: Ctx) -> int:
    from liveforge.build.image.overlay import add_driver

    a = ctx.args
    ws_root = ctx.root
    overlay = Path(a.overlay) if a.overlay else None
    if overlay is None:
        overlays = Workspace(ws_root, known_kinds()).overlay_dirs()
        if not overlays:
            raise UsageError("the workspace has no overlay; name one with --overlay DIR")
        overlay = overlays[0]
    major = add_driver(overlay, a.name, a.aliases)
    ctx.reporter.info(f"driver {a.name} has major {major} in {overlay}")
    return 0


def cmd_media(ctx: Ctx) -> int:
    """``iso`` and ``usb``: bootable media of the latest platform."""
    from liveforge.build.image.platform import latest_platform
    from liveforge.build.media import build_iso, build_usb

    kind = ctx.args.verb
    writer, what = {"iso": (build_iso, "ISO"), "usb": (build_usb, "USB")}[kind]
    with ctx.locked() as ws:
        platform, stamp = latest_platform(ws.output_dir)
        ctx.reporter.step(f"writing the {what} image of {platform.name}")
        out = writer(platform, stamp, ws.iso_dir if kind == "iso" else ws.usb_dir,
                     arch=ws.platform.arch, console=ctx.args.console)
    ctx.reporter.emit("media", kind=kind, path=str(out))
    return 0


def platform_dirname(ws: Workspace, platform: Path, stamp: str) -> str:
    """The name under ``output/`` of the latest platform ``platform`` (resolved)."""
    for name in (ws.platform_dirname(stamp), platform.name):
        candidate = ws.output_dir / name
        if candidate.is_dir() and candidate.resolve() == platform:
            return name
    raise LiveforgeError(f"the latest platform {platform} is not in {ws.output_dir}")


def cmd_netboot(ctx: Ctx) -> int:
    """``netboot``: the iPXE script of the latest platform, beside it in ``output/``."""
    from liveforge.build.image.platform import latest_platform
    from liveforge.build.media.pxe import write_netboot

    with ctx.locked() as ws:
        platform, stamp = latest_platform(ws.output_dir)
        dirname = platform_dirname(ws, platform, stamp)
        ctx.reporter.step(f"writing the netboot script of {dirname}")
        out = write_netboot(ws.output_dir, dirname, stamp, ws.platform.arch,
                            console=ctx.args.console)
    ctx.reporter.emit("media", kind="netboot", path=str(out))
    return 0


def cmd_boot(ctx: Ctx) -> int:
    from liveforge.build.image.platform import latest_platform
    from liveforge.build.media.boot import boot, log_name
    from liveforge.build.media.pxe import script_name

    a = ctx.args
    ws = ctx.workspace()
    platform, stamp = latest_platform(ws.output_dir)
    if a.media == "pxe":
        target = ws.output_dir / script_name(platform_dirname(ws, platform, stamp))
    else:
        target = {"direct": platform, "iso": ws.iso_dir, "usb": ws.usb_dir}[a.media]
    result = boot(target, stamp, arch=ws.platform.arch, media=a.media, uefi=a.uefi,
                  console=a.console, timeout=a.timeout, interactive=a.interactive,
                  log_path=ws.log_dir / log_name(stamp, a.media, a.uefi), reporter=ctx.reporter)
    return result.exit_code


def cmd_cache(ctx: Ctx) -> int:
    from liveforge.build.verbs.cache import cache_verb

    return cache_verb(ctx.root, ctx.args.action, ctx.reporter, ctx.cache_mode,
                      max_size=ctx.args.max_size, offline=ctx.args.offline,
                      json_mode=ctx.args.json)


def _output(text: str, path: str | None) -> None:
    """``text`` to standard output, or written (atomically) to ``path``."""
    if path is None:
        sys.stdout.write(text)
        return
    from liveforge.util.fileio import write_atomic

    try:
        write_atomic(Path(path), text)
    except OSError as exc:
        raise LiveforgeError(f"cannot write {path}: {exc.strerror}") from None


def cmd_sbom(ctx: Ctx) -> int:
    from liveforge.build.verbs.insight import find_platform, sbom_text

    a = ctx.args
    _output(sbom_text(find_platform(ctx.workspace(), a.platform), a.format), a.output)
    return 0


def cmd_size(ctx: Ctx) -> int:
    from liveforge.build.insight.size import size_diff
    from liveforge.build.verbs import insight

    a = ctx.args
    ws = ctx.workspace()
    if a.top is not None and a.top < 1:
        raise UsageError("--top must be at least 1")
    if a.diff:
        if a.platform:
            raise UsageError("size --diff A B takes no other platform")
        first, second = (insight.find_platform(ws, name) for name in a.diff)
        rows = size_diff(insight.measure(ws, first), insight.measure(ws, second), a.by)
        print(insight.format_size_diff(first, second, rows[:a.top] if a.top else rows,
                                       a.json), end="")
        return 0
    measured = insight.measure(ws, insight.find_platform(ws, a.platform))
    print(insight.format_size(measured, a.by, a.top, a.json), end="")
    return 0


def cmd_timeline(ctx: Ctx) -> int:
    from liveforge.build.insight import timeline as timelines
    from liveforge.build.verbs.insight import build_timeline, latest_stamp

    a = ctx.args
    ws = ctx.workspace()
    line = build_timeline(ws, a.stamp or latest_stamp(ws))
    fmt = "json" if ctx.args.json else a.format
    render = {"text": timelines.text, "svg": timelines.svg, "json": timelines.to_json}[fmt]
    _output(render(line), a.output)
    return 0


def cmd_graph(ctx: Ctx) -> int:
    from liveforge.build.insight.graph import render
    from liveforge.build.verbs.insight import graph_dot

    a = ctx.args
    text = graph_dot(ctx.workspace(), a.component)
    _output(render(text) if a.format == "svg" else text, a.output)
    return 0


def cmd_report(ctx: Ctx) -> int:
    from liveforge.build.verbs.insight import find_platform, report

    with ctx.locked() as ws:
        print(report(ws, find_platform(ws, ctx.args.platform)))
    return 0


def cmd_check(ctx: Ctx) -> int:
    from liveforge.build.verbs.check import check

    return check(ctx.root, ctx.reporter)


VERBS: dict[str, tuple[Callable[[Ctx], int], str]] = {
    "configure": (cmd_configure, "clone projects, check out branches, write build.env"),
    "world": (cmd_world, "build every stale component"),
    "build": (cmd_build, "build one component (dependents are not rebuilt)"),
    "shell": (cmd_shell, "a shell with a component's build environment"),
    "status": (cmd_status, "each component: up to date, stale and why, never built, building"),
    "update": (cmd_update, "git pull --rebase every project, run update targets"),
    "clean": (cmd_clean, "components' clean targets; remove proto areas and stamps"),
    "clobber": (cmd_clobber, "clean, and remove every output"),
    "live": (cmd_live, "world, then assemble the platform: boot archive, kernel, tarball"),
    "manifest": (cmd_manifest, "lint, show or diff manifests and platforms"),
    "overlay": (cmd_overlay, "overlay helpers: add-driver"),
    "iso": (cmd_media, "a bootable ISO image (BIOS and UEFI) of the latest platform"),
    "usb": (cmd_media, "a bootable USB stick image (BIOS and UEFI) of the latest platform"),
    "netboot": (cmd_netboot, "an iPXE script beside the latest platform, for a boot server"),
    "boot": (cmd_boot, "boot the latest platform in QEMU and wait for PLATFORM-READY"),
    "check": (cmd_check, "lint liveforge itself, or a workspace's components and manifests"),
    "cache": (cmd_cache, "the build cache: stats, prune, push (upload what was built here)"),
    "sbom": (cmd_sbom, "the platform's SBOM: SPDX 2.3 or CycloneDX JSON"),
    "size": (cmd_size, "bytes each component ships in the boot archive, compressed share"),
    "timeline": (cmd_timeline, "a build's steps on a time axis, and its critical path"),
    "graph": (cmd_graph, "the component graph (Graphviz), stale steps marked"),
    "report": (cmd_report, "write report.html into the platform directory, print its path"),
}


def parser(only: Collection[str] | None = None, narrow: bool = False
           ) -> argparse.ArgumentParser:
    """The command line parser. With ``only``, only those verbs get their arguments; the
    others get an empty parser, so each stays a choice with its help line (usage, help and
    errors are unchanged). ``narrow``: the others are left out, and any error raises
    :class:`ParseError` instead of printing it (see :func:`parse`)."""
    cls = NarrowParser if narrow else argparse.ArgumentParser
    top = cls(prog="liveforge", description="Build live Linux platforms.",
              formatter_class=Formatter)
    top.add_argument("--version", action="version", version=f"liveforge {__version__}")
    global_options(top, suppress=False)
    # prog: what argparse would work out by formatting the usage
    sub = top.add_subparsers(dest="verb", metavar="VERB", required=True, prog=top.prog,
                             parser_class=cls)
    for name, (_, help_text) in VERBS.items():
        if only is None or name in only:
            p = sub.add_parser(name, help=help_text, description=help_text,
                               formatter_class=Formatter)
            global_options(p, suppress=True)
            add_verb_arguments(name, p)
        elif not narrow:
            sub.add_parser(name, help=help_text, add_help=False)
    return top


def parse(words: Sequence[str]) -> argparse.Namespace:
    """The command line parsed. A plain command line is parsed by a parser of the verbs it
    names only; help, the version, and any error are left to the whole parser, which prints
    them as argparse does (and exits)."""
    only = {w for w in words if w in VERBS}
    if only and not {"-h", "--help", "--version"} & set(words):
        try:
            return parser(only, narrow=True).parse_args(words)
        except ParseError:
            pass
    return parser(only or None).parse_args(words)


def raw_names() -> None:
    """A name that is not UTF-8 reaches the terminal as the bytes the file system has, not as
    Python's ``\\udcXX`` escapes (the process's own standard streams only)."""
    for stream in (sys.__stdout__, sys.__stderr__):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    raw_names()
    try:
        args = parse(words)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.jobs is not None and args.jobs < 1:
        print("liveforge: error: -j must be at least 1", file=sys.stderr)
        return 2
    verbose = -1 if args.quiet else (args.verbose or 0)
    reporter = make_reporter(json_mode=args.json, verbose=verbose)
    func = VERBS[args.verb][0]
    from liveforge.util.proc import Interrupted, handle_stop_signals

    restore_signals = handle_stop_signals()
    try:
        return func(Ctx(args=args, reporter=reporter))
    except InputErrors as exc:
        for error in exc.errors:
            print(f"liveforge: {error}", file=sys.stderr)
        return exc.exit_code
    except UsageError as exc:
        print(f"liveforge {args.verb}: {exc}", file=sys.stderr)
        return exc.exit_code
    except LiveforgeError as exc:
        tail = getattr(exc, "tail", "")  # a tool's last words (a BuildError's)
        if tail:
            print(f"--- last lines of its output ---\n{tail.rstrip()}\n---", file=sys.stderr)
        print(f"liveforge: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else 2  # SIGINT
        name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
        print(f"liveforge: interrupted by {name}", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        os._exit(1)
    except OSError as exc:  # what the system refused (a full disk): one line naming the file
        print(f"liveforge: error: {os_error_text(exc)}", file=sys.stderr)
        return 1
    finally:
        restore_signals()


if __name__ == "__main__":
    sys.exit(main())
