"""wait_pid_exit: the one wait for a process that may not be ours (pidfd)."""

from __future__ import annotations

import signal
import subprocess
import time

from liveforge.util.proc import wait_pid_exit


def test_waits_for_a_running_process_and_sees_it_end() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        start = time.monotonic()
        assert wait_pid_exit(proc.pid, 0.2) is False
        assert time.monotonic() - start >= 0.15
        proc.send_signal(signal.SIGKILL)
        assert wait_pid_exit(proc.pid, 5) is True  # ended, not yet reaped
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_is_gone_has_ended() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert wait_pid_exit(proc.pid, 0) is True
