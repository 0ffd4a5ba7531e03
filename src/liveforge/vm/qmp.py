"""A small QMP client: QEMU's machine protocol on a unix socket.

QMP is JSON, one object a line. On connecting, QEMU sends a greeting (``{"QMP": {...}}``); the
client must send ``qmp_capabilities`` before anything else. Each command
(``{"execute": NAME, "arguments": {...}}``) gets one answer, ``{"return": ...}`` or
``{"error": {"class", "desc"}}``; asynchronous ``{"event": ...}`` lines may come in between and
are kept in :attr:`Qmp.events`. QEMU serves one client at a time, so a client connects, asks and
closes.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from liveforge.util.errors import LiveforgeError

DEFAULT_TIMEOUT = 10.0  # seconds for connecting and for each answer


class QmpError(LiveforgeError):
    """QMP could not be reached, or it answered a command with an error (``error_class``)."""

    def __init__(self, message: str, error_class: str = ""):
        self.error_class = error_class
        super().__init__(message)


class Qmp:
    """A connection to the QMP socket at ``path``, ready for commands (the handshake done)."""

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self.events: list[dict[str, Any]] = []
        self.buffer = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
            greeting = self._read()
            if "QMP" not in greeting:
                raise QmpError(f"{path}: not a QMP socket (greeting {greeting!r})")
            self.command("qmp_capabilities")
        except OSError as exc:
            self.sock.close()
            raise QmpError(f"{path}: cannot talk to QMP: {exc.strerror or exc}") from None
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def command(self, name: str, **arguments: Any) -> Any:
        """Run ``name`` with ``arguments`` (underscores in keyword names become dashes) and
        return what it returns; an error answer raises :class:`QmpError`."""
        request: dict[str, Any] = {"execute": name}
        if arguments:
            request["arguments"] = {k.replace("_", "-"): v for k, v in arguments.items()}
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\r\n")
        except OSError as exc:
            raise QmpError(f"{self.path}: QMP {name}: {exc.strerror or exc}") from None
        while True:
            answer = self._read()
            if "event" in answer:
                self.events.append(answer)
                continue
            if "error" in answer:
                error = answer["error"]
                raise QmpError(f"QMP {name}: {error.get('desc', error)}",
                               str(error.get("class", "")))
            if "return" in answer:
                return answer["return"]

    def _read(self) -> dict[str, Any]:
        """The next JSON object from the socket."""
        while b"\n" not in self.buffer:
            try:
                data = self.sock.recv(65536)
            except OSError as exc:
                raise QmpError(f"{self.path}: no answer from QMP: {exc.strerror or exc}") \
                    from None
            if not data:
                raise QmpError(f"{self.path}: QEMU closed the QMP connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            value = json.loads(line)
        except ValueError:
            raise QmpError(f"{self.path}: not JSON from QMP: {line[:200]!r}") from None
        if not isinstance(value, dict):
            raise QmpError(f"{self.path}: not a QMP message: {line[:200]!r}")
        return value


def ask(path: Path, name: str, timeout: float = DEFAULT_TIMEOUT, **arguments: Any) -> Any:
    """Connect, run one command, close."""
    with Qmp(path, timeout) as qmp:
        return qmp.command(name, **arguments)
