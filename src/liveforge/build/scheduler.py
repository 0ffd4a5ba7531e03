"""Run build steps in dependency order, in parallel up to MAX_JOBS.

On a failure the running steps finish and nothing new starts; on an interrupt every child is
stopped. Only a step that finished successfully gets its stamp.
"""

from __future__ import annotations

import graphlib
import queue
import threading
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from liveforge.build.graph import Plan, Step
from liveforge.build.kinds.base import Cancelled, Kind
from liveforge.build.kinds.base.context import BuildContext
from liveforge.build.running import finished, forget_dead, started
from liveforge.build.stamps import read_stamp, write_stamp
from liveforge.build.stepcache import open_cache
from liveforge.build.units import deliver, fresh_unit, owners
from liveforge.build.workspace import Workspace
from liveforge.util.errors import LiveforgeError, os_error_text
from liveforge.util.events import Reporter
from liveforge.util.fileio import text_bytes
from liveforge.util.proc import ProcessGroup, log_tail

T = TypeVar("T")


def context_for(ws: Workspace, step: Step, reporter: Reporter, log, log_path: Path,
                procs: ProcessGroup, package: str | None = None, variant: str | None = None,
                deps: dict[str, str] | None = None, unit: Path | None = None) -> BuildContext:
    return BuildContext(ws=ws, spec=step.spec, phase=step.phase, log=log, log_path=log_path,
                        jobs=ws.max_jobs, reporter=reporter, procs=procs, package=package,
                        variant=variant, deps={} if deps is None else deps, unit=unit,
                        owners=lambda: owners(ws, step))


def installed_deps(ws: Workspace, plan: Plan, step: Step, built: Collection[str]
                   ) -> dict[str, str]:
    """The input hash of each step ``step`` depends on, as the staging areas hold it: the
    plan's for one ``built`` in this run or up to date, else what its stamp recorded ("" for
    none: ``build --no-deps`` leaves a stale dependency as it is)."""
    deps: dict[str, str] = {}
    for dep in step.deps:
        if dep in built or not plan.reasons[dep]:
            deps[dep] = plan.inputs[dep].digest
        else:
            deps[dep] = (read_stamp(ws.stamp_path(plan.steps[dep].stamp_name)) or {}).get(
                "hash", "")
    return deps


@dataclass(slots=True)
class RunResult:
    """What a run of steps did: the steps built, those failed (with why) and their logs."""

    built: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # from the build cache
    failed: dict[str, str] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)



def run_steps(ws: Workspace, plan: Plan, targets: Collection[str], reporter: Reporter,
              buildstamp: str, package: str | None = None,
              variant: str | None = None) -> RunResult:
    """Build ``targets`` (step names), respecting dependencies among them; ``package`` and
    ``variant`` go to each step's context (see :class:`BuildContext`)."""
    wanted = set(targets)
    graph = {n: tuple(d for d in plan.steps[n].deps if d in wanted) for n in wanted}
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    ws.log_dir.mkdir(parents=True, exist_ok=True)
    ws.proto.mkdir(parents=True, exist_ok=True)
    ws.manifest_d.mkdir(parents=True, exist_ok=True)
    forget_dead(ws)
    procs = ProcessGroup()
    # the build cache: never for one package or variant of a step (not the whole output)
    cache = open_cache(ws, reporter) if package is None and variant is None else None
    keys = cache.keys(plan) if cache is not None else {}
    done: queue.Queue[tuple[str, BaseException | None, float, str | None]] = queue.Queue()
    result = RunResult()
    running: dict[str, threading.Thread] = {}
    failed = False
    ready: list[str] = []
    jobs = ws.max_jobs

    def work(name: str) -> None:
        step = plan.steps[name]
        log_path = ws.log_dir / f"{step.log_name}.{buildstamp}.log"
        result.logs[name] = log_path
        began = time.monotonic()
        error: BaseException | None = None
        restored: str | None = None
        try:
            started(ws, name)
            unit = fresh_unit(ws, step)
            use_cache = cache is not None and cache.cacheable(step)
            if use_cache:
                assert cache is not None
                restored = cache.restore(step, keys[name], unit)
            if restored is not None:
                reporter.emit("restored", component=name, key=keys[name], store=restored)
            else:
                if use_cache:
                    unit = fresh_unit(ws, step)
                reporter.emit("start", component=name)
                with open(log_path, "wb") as log:
                    ctx = context_for(ws, step, reporter, log, log_path, procs, package,
                                      variant, installed_deps(ws, plan, step, wanted), unit)
                    if use_cache:
                        assert cache is not None
                        ctx.parts = cache.parts(step)
                    step.kind.build(ctx)
                    if procs.cancelled.is_set():
                        raise Cancelled("interrupted")
                if use_cache:
                    assert cache is not None
                    cache.store(step, keys[name], unit)
            deliver(ws, step, unit)
            write_stamp(ws.stamp_path(step.stamp_name), plan.inputs[name], buildstamp)
        except BaseException as exc:  # reported to the main thread
            error = exc
            # the log says why: a liveforge error's message, or a bug's traceback
            why = f"==> error: {exc}\n" if isinstance(exc, LiveforgeError) else \
                f"==> error: {os_error_text(exc)}\n" if isinstance(exc, OSError) else \
                traceback.format_exc()
            try:
                with open(log_path, "ab") as log:
                    log.write(text_bytes(why))
            except OSError:
                pass  # a full disk: the report to the main thread still says why
        finally:
            try:
                finished(ws, name)
            finally:  # whatever happened, the main thread hears of the step: it never hangs
                done.put((name, error, time.monotonic() - began, restored))

    reporter.begin(len(wanted))
    try:
        while sorter.is_active():
            if not failed:
                ready.extend(sorter.get_ready())
                while ready and len(running) < jobs:
                    name = ready.pop(0)
                    # a stale stamp must not survive a failed rebuild
                    ws.stamp_path(plan.steps[name].stamp_name).unlink(missing_ok=True)
                    thread = threading.Thread(target=work, args=(name,), daemon=True)
                    running[name] = thread
                    thread.start()
            if not running:
                break
            try:
                name, error, duration, restored = done.get(timeout=0.25)
            except queue.Empty:
                continue
            running.pop(name)
            if error is None and restored is not None:
                result.restored.append(name)
                sorter.done(name)
            elif error is None:
                result.built.append(name)
                sorter.done(name)
                reporter.emit("finish", component=name, duration=duration)
            else:
                failed = True
                msg = str(error) if isinstance(error, LiveforgeError) else \
                    os_error_text(error) if isinstance(error, OSError) else \
                    f"internal error: {error!r} (traceback in the log)"
                result.failed[name] = msg
                tail = getattr(error, "tail", "") or log_tail(result.logs[name])
                reporter.emit("fail", component=name, error=msg, log=str(result.logs[name]),
                              tail=tail, duration=duration)
    except KeyboardInterrupt:
        procs.cancel()
        for thread in running.values():
            thread.join(timeout=10)
        raise
    finally:
        reporter.end()
    return result


def each_component(ws: Workspace, reporter: Reporter, action: str, log_suffix: str,
                   fn: Callable[[Kind, BuildContext], T], keep_logs: bool = True
                   ) -> tuple[dict[str, T], dict[str, str]]:
    """Run ``fn`` (a kind's clean, check or update) for every component, one after the other,
    each with its log ``log/<name>.<log_suffix>.log``. A failure is reported and the others
    still run. Returns each component's result and each failure's message.

    Without ``keep_logs`` (a verb that writes nothing in the workspace) the logs are private
    temporary files, and a failure's report ends with its log's last lines instead of its
    path."""
    import tempfile

    from liveforge.build.graph import make_steps
    from liveforge.build.kinds.base import MAIN

    results: dict[str, T] = {}
    failures: dict[str, str] = {}
    private = None if keep_logs else tempfile.TemporaryDirectory(prefix=f"liveforge-{action}.")
    log_dir = ws.log_dir if private is None else Path(private.name)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, step in make_steps(ws).items():
            if step.phase != MAIN:
                continue
            log_path = log_dir / f"{step.log_name}.{log_suffix}.log"
            with open(log_path, "wb") as log:
                ctx = context_for(ws, step, reporter, log, log_path, ProcessGroup())
                try:
                    results[name] = fn(step.kind, ctx)
                except Exception as exc:  # keep going with the others
                    failures[name] = str(exc)
                    log.flush()
                    if private is None:
                        detail = f" (log: {log_path})"
                    else:
                        tail = log_tail(log_path)
                        detail = f"; its log ends:\n{tail}" if tail else ""
                    reporter.warn(f"{action} of {name} failed: {exc}{detail}")
    finally:
        if private is not None:
            private.cleanup()
    return results, failures
