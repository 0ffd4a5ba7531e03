"""Child processes that end with liveforge, however liveforge ends; and log tails.

Every command a build step runs is started by :func:`spawn` in a session (so a process group)
of its own, and:

* the kernel sends it SIGKILL when liveforge dies, even by SIGKILL (``PR_SET_PDEATHSIG``, set
  by :func:`die_with_parent` between fork and exec);
* its group is known to the *reaper*, a tiny process started with the first child, which reads
  the group ids from a pipe. The pipe's other end is liveforge's alone, so when liveforge dies
  the reaper reads end-of-file and sends SIGKILL to every group still listed: the grandchildren
  (a compiler under make), which the parent-death signal does not reach, go too;
* :meth:`ProcessGroup.wait` waits for the command without reaping it (``waitid(WNOWAIT)``),
  kills what is left of its group (a background process of a finished recipe), takes the group
  off the reaper's list and only then reaps it: the group id cannot be reused by another
  process while it is still listed anywhere.

An interrupt (SIGINT, SIGTERM, SIGHUP: see :class:`Interrupted`) cancels the run:
:meth:`ProcessGroup.cancel` sends SIGTERM to every group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import select
import signal

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any

PR_SET_PDEATHSIG = 1
TAIL_LINES = 30
CANCEL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a run is cancelled


class Interrupted(KeyboardInterrupt):
    """liveforge was asked to stop by a signal: SIGINT, SIGTERM or SIGHUP. ``main()`` exits
    with the conventional status 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def handle_stop_signals() -> Callable[[], None]:
    """Make SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread; returns
    a function that puts the previous handlers back."""
    previous = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, _raise_interrupted)
    except ValueError:  # not the main thread: the caller's handlers stay
        pass

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


# -- the parent-death signal ------------------------------------------------------------------

_prctl: Any = None  # libc's prctl, looked up in the parent: the child only calls it
_parent = 0


def _prepare_pdeathsig() -> None:
    global _prctl, _parent
    if _prctl is None:
        try:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = False
    _parent = os.getpid()


def die_with_parent() -> None:
    """In the child before exec: the kernel kills it (SIGKILL) when liveforge dies, even by
    SIGKILL (Linux ``PR_SET_PDEATHSIG``); should liveforge be gone already, it dies now."""
    prctl = _prctl
    if prctl is None:  # not prepared in the parent: look it up here
        try:
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return
    if prctl:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if _parent and os.getppid() != _parent:
            os.kill(os.getpid(), signal.SIGKILL)


# -- the reaper -------------------------------------------------------------------------------

_REAPER_CODE = """\
import os, signal
groups = set()
buf = b""
while True:
    data = os.read(0, 4096)
    if not data:
        break
    *lines, buf = (buf + data).split(b"\\n")
    for line in lines:
        (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """The process that kills the listed process groups when liveforge dies (one per
    liveforge process, started with the first child)."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0  # the liveforge process that started it (a fork needs its own)

    def _send(self, line: str) -> None:
        import subprocess
        import sys

        with self.lock:
            if self.proc is None or self.pid != os.getpid():
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _REAPER_CODE], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                    start_new_session=True)  # no terminal signal reaches it
                self.pid = os.getpid()
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
            except OSError:  # killed by someone: the parent-death signal still holds
                pass

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def unwatch(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")


REAPER = Reaper()


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own that dies with liveforge (see the module's
    documentation); end it with :func:`wait_group` (or a :class:`ProcessGroup`)."""
    import subprocess

    _prepare_pdeathsig()
    proc = subprocess.Popen(list(argv), start_new_session=True, preexec_fn=die_with_parent,
                            **popen)
    REAPER.watch(proc.pid)
    return proc


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group of ``proc`` (a process not yet reaped)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` (a child or not: a pidfd) to end; whether
    it has (an exited child not yet reaped counts as ended)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(fd)


def _wait_unreaped(proc: subprocess.Popen[bytes]) -> None:
    """Wait until ``proc`` has exited, leaving it a zombie: its pid, so its group id, stays
    taken."""
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:  # reaped already
        pass


def wait_group(proc: subprocess.Popen[bytes],
               before_reap: Callable[[], None] | None = None) -> int:
    """Wait for ``proc``, kill what is left of its group (everything, when the wait is
    interrupted), forget the group and reap ``proc``; returns its exit status."""
    try:
        _wait_unreaped(proc)
    finally:
        if before_reap is not None:
            before_reap()
        signal_group(proc, signal.SIGKILL)
        REAPER.unwatch(proc.pid)
        proc.wait()
    return proc.returncode


class ProcessGroup:
    """The children of a run's build steps, so that an interrupt can stop them all."""

    def __init__(self) -> None:
        import threading  # only when something is built

        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.cancelled = threading.Event()

    def spawn(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        proc = spawn(argv, **popen)
        with self.lock:
            self.procs.add(proc)
        if self.cancelled.is_set():
            signal_group(proc, signal.SIGTERM)
        return proc

    def wait(self, proc: subprocess.Popen[bytes]) -> int:
        """:func:`wait_group`; the child leaves the group before it is reaped, so
        :meth:`cancel` never signals a reaped (reusable) group id."""

        def leave() -> None:
            with self.lock:
                self.procs.discard(proc)

        return wait_group(proc, before_reap=leave)

    def cancel(self, grace: float = CANCEL_GRACE) -> None:
        """Stop every child: SIGTERM to each process group, SIGKILL to those still running
        after ``grace`` seconds. The threads waiting for them reap them."""
        import time

        self.cancelled.set()
        with self.lock:
            for proc in self.procs:
                signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self.lock:
                if not self.procs:
                    return
            time.sleep(0.05)
        with self.lock:
            for proc in self.procs:
                signal_group(proc, signal.SIGKILL)


def text_tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a command's output or a log."""
    return "\n".join(text.splitlines()[-lines:])


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (read from its last 64 KiB); "" when it cannot be
    read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return text_tail(data, lines)
