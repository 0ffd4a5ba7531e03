"""Progress reporting: rich live display on a TTY, plain lines otherwise, JSON lines with --json.

Every long-running step reports through one :class:`Reporter`; the three front ends share the
same event vocabulary (``start``, ``finish``, ``fail``, ``stale``, ``step``, ``message``,
``platform``, ``media``; the build cache's ``restored``, ``stored`` and ``uncacheable``).
"""

from __future__ import annotations

import sys
import time
from _thread import allocate_lock  # threading.Lock, without importing threading
from pathlib import Path

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO


class Reporter:
    """Plain-text reporter; the base of the others. Thread safe."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, verbose: int = 0):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.verbose = verbose
        self.lock = allocate_lock()
        self.total = 0
        self.done = 0
        self.started = 0

    # -- life cycle -------------------------------------------------------------------------
    def begin(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = 0

    def end(self) -> None:
        pass

    # -- events -----------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        with self.lock:
            self._emit(event, fields)

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        name = fields.get("component", "")
        if event in ("start", "finish") and self.verbose < 0:
            self.done += event == "finish"
            return
        if event == "start":
            self.started += 1
            print(f"==> [{self.started}/{self.total}] building {name}", file=self.out, flush=True)
        elif event == "finish":
            self.done += 1
            print(f"==> {name} done ({fields.get('duration', 0):.1f}s)", file=self.out, flush=True)
        elif event == "fail":
            self.done += 1
            print(f"==> {name} FAILED: {fields.get('error', '')}", file=self.err, flush=True)
            tail = fields.get("tail")
            if tail:
                print(f"--- last lines of {fields.get('log')} ---", file=self.err)
                print(tail.rstrip("\n"), file=self.err)
                print("---", file=self.err, flush=True)
        elif event == "restored":
            self.done += 1
            if self.verbose >= 0:
                print(f"==> {name} restored from the {fields.get('store')} cache",
                      file=self.out, flush=True)
        elif event == "stored":
            if self.verbose >= 1:
                print(f"    {name} stored in the {fields.get('store')} cache "
                      f"({fields.get('size', 0)} bytes)", file=self.out, flush=True)
        elif event == "stale":
            if self.verbose >= 0:
                why = "; ".join(fields.get("why", []))
                print(f"    {name}: {why}", file=self.out, flush=True)
        elif event == "platform":
            print(f"platform: {fields.get('path')}", file=self.out)
            print(f"tarball:  {fields.get('tarball')}", file=self.out)
            if fields.get("root_tarball"):
                print(f"root:     {fields.get('root_tarball')}", file=self.out)
            print(f"latest:   {fields.get('latest')} -> {Path(str(fields.get('path'))).name}",
                  file=self.out, flush=True)
        elif event == "media":
            print(f"{fields.get('kind')}: {fields.get('path')}", file=self.out, flush=True)
        elif event == "step":
            if self.verbose < 0:
                return
            print(f"==> {fields.get('text', '')}", file=self.out, flush=True)
        elif event == "message":
            level = fields.get("level", "info")
            text = fields.get("text", "")
            if level == "info" and self.verbose < 0:
                return
            stream = self.err if level in ("warning", "error") else self.out
            prefix = "" if level == "info" else f"{level}: "
            print(f"{prefix}{text}", file=stream, flush=True)

    # -- conveniences -----------------------------------------------------------------------
    def info(self, text: str) -> None:
        self.emit("message", level="info", text=text)

    def warn(self, text: str) -> None:
        self.emit("message", level="warning", text=text)

    def step(self, text: str) -> None:
        self.emit("step", text=text)


class JsonReporter(Reporter):
    """One JSON object per line on stdout; warnings also go there (machines read one stream)."""

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        import json

        record: dict[str, Any] = {"event": event, "time": round(time.time(), 3)}
        for key, value in fields.items():
            record[key] = str(value) if isinstance(value, Path) else value
        if event == "finish" and "duration" in record:
            record["duration"] = round(float(record["duration"]), 3)
        print(json.dumps(record, sort_keys=True), file=self.out, flush=True)


class RichReporter(Reporter):
    """A live display of running components and an ``n of m`` counter (TTY only)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, verbose: int = 0):
        super().__init__(out, err, verbose)
        from rich.console import Console

        self.console = Console(file=self.out)
        self.running: dict[str, float] = {}
        self.live: Any = None

    def begin(self, total: int) -> None:
        from rich.live import Live

        super().begin(total)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=True, get_renderable=self._render)
        self.live.start()

    def end(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        table.add_row(f"[bold]{self.done} of {self.total}[/bold] components")
        now = time.monotonic()
        for name, started in sorted(self.running.items()):
            table.add_row(f"  [cyan]building[/cyan] {name} ({now - started:.0f}s)")
        return table

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        name = fields.get("component", "")
        if event == "start":
            self.running[name] = time.monotonic()
            return
        self.running.pop(name, None)
        if event == "finish":
            self.done += 1
            self.console.print(f"[green]✓[/green] {name} ({fields.get('duration', 0):.1f}s)")
            return
        if event == "restored":
            self.done += 1
            self.console.print(f"[green]✓[/green] {name} (restored from the "
                               f"{fields.get('store')} cache)")
            return
        if event == "fail":
            self.done += 1
            self.console.print(f"[red]✗ {name} FAILED[/red]: {fields.get('error', '')}")
            if fields.get("tail"):
                self.console.print(f"--- last lines of {fields.get('log')} ---", markup=False)
                self.console.print(fields["tail"].rstrip("\n"), markup=False, highlight=False)
            return
        super()._emit(event, fields)


class Fanout(Reporter):
    """Several reporters as one: each event, and the begin and end of a run, go to every one
    (the terminal's reporter and a build's event log)."""

    def __init__(self, *reporters: Reporter):
        first = reporters[0]
        super().__init__(first.out, first.err, first.verbose)
        self.reporters = reporters

    def begin(self, total: int) -> None:
        for reporter in self.reporters:
            reporter.begin(total)

    def end(self) -> None:
        for reporter in self.reporters:
            reporter.end()

    def emit(self, event: str, **fields: Any) -> None:
        for reporter in self.reporters:
            reporter.emit(event, **fields)


class _Seen(Reporter):
    """Remembers the names of the events it was given, and shows nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def emit(self, event: str, **fields: Any) -> None:
        self.names.add(event)


class _LogReporter(JsonReporter):
    """The JSON lines of an :class:`EventLog`; a write the file system refuses (a full disk)
    is an error naming the log."""

    def __init__(self, out: TextIO, path: Path):
        super().__init__(out=out, verbose=1)
        self.path = path

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        try:
            super()._emit(event, fields)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) from None


class EventLog:
    """``with EventLog(reporter, path, keep) as r``: ``r`` reports to ``reporter`` and also
    writes every event to a temporary beside ``path`` as the JSON lines of ``--json``. At the
    end it replaces ``path`` when one of the events ``keep`` names was written (any run, when
    ``keep`` is empty); else it is removed and an earlier ``path`` stays: a build log is kept
    from a later run of the same name that built nothing. A killed run's temporary is removed
    by the next one."""

    def __init__(self, reporter: Reporter, path: Path, keep: tuple[str, ...] = ()):
        self.reporter = reporter
        self.path = path
        self.keep = keep
        self.handle: TextIO | None = None
        self.seen = _Seen()

    @property
    def temporary(self) -> Path:
        from liveforge.util.scratch import tmp_name

        return self.path.with_name(tmp_name(self.path.name))

    def __enter__(self) -> Reporter:
        from liveforge.util.scratch import remove_leftovers

        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.path.parent)
        self.handle = open(self.temporary, "w", encoding="utf-8")
        return Fanout(self.reporter, _LogReporter(self.handle, self.path), self.seen)

    def __exit__(self, *exc: object) -> None:
        import os

        if self.handle is None:
            return
        handle, self.handle = self.handle, None
        try:
            handle.close()
        except OSError as error:  # a full disk: the log is not kept
            os.unlink(self.temporary)
            if exc[0] is None:  # else the error that ended the run is the one to report
                raise OSError(error.errno, error.strerror, str(self.path)) from None
            return
        if not self.keep or self.seen.names & set(self.keep):
            os.replace(self.temporary, self.path)
        else:
            os.unlink(self.temporary)


def make_reporter(json_mode: bool = False, verbose: int = 0) -> Reporter:
    """The reporter for this run: JSON lines, rich on a TTY, or plain lines."""
    if json_mode:
        return JsonReporter(verbose=verbose)
    if sys.stdout.isatty():
        return RichReporter(verbose=verbose)
    return Reporter(verbose=verbose)


class ByteProgress:
    """Progress bars of byte transfers (downloads), one per transfer, drawn by rich on stderr;
    a no-op when not ``enabled`` (the caller decides: stderr a TTY and no ``-q``). Thread safe:
    the callbacks :meth:`add` returns may be called from worker threads."""

    def __init__(self, enabled: bool, err: TextIO | None = None):
        self.enabled = enabled
        self.err = err or sys.stderr
        self.progress: Any = None

    def __enter__(self) -> ByteProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                TransferSpeedColumn(), TimeRemainingColumn(), console=Console(file=self.err),
                redirect_stdout=False, redirect_stderr=False, transient=True)
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def add(self, label: str, total: int) -> Callable[[int], None]:
        """A bar for ``total`` bytes; the returned function advances it by a count."""
        if self.progress is None:
            return lambda _count: None
        task = self.progress.add_task(label, total=total)
        progress = self.progress
        return lambda count: progress.advance(task, count)

    def line(self, text: str, out: TextIO) -> None:
        """A line of output on ``out``: above the bars when ``out`` is their terminal too."""
        if self.progress is not None and out.isatty():
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=out, flush=True)
