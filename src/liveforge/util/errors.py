"""Exception classes. ``main()`` turns each into one line on stderr and an exit code."""

from __future__ import annotations

from pathlib import Path


class LiveforgeError(Exception):
    """Base of every error liveforge reports to the user (exit status 1)."""

    exit_code = 1


class InputError(LiveforgeError):
    """Bad input in a file: reported as ``file:line: message`` with exit status 2."""

    exit_code = 2

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class InputErrors(LiveforgeError):
    """Several input errors, all reported before exiting (exit status 2)."""

    exit_code = 2

    def __init__(self, errors: list[InputError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class UsageError(LiveforgeError):
    """Wrong use of the command line (exit status 2)."""

    exit_code = 2


class LockError(LiveforgeError):
    """The workspace is locked by another liveforge run."""


class BuildError(LiveforgeError):
    """A component, package or assembly step failed."""

    def __init__(self, message: str, log: Path | None = None, tail: str = ""):
        self.log = log
        self.tail = tail
        super().__init__(message)


class FetchError(LiveforgeError):
    """A download failed or did not verify."""


class MissingToolError(LiveforgeError):
    """A host tool is missing; the message carries the apt-get line that installs it."""


def os_error_text(exc: OSError) -> str:
    """An error of the system (a full disk, a directory where a file belongs) as one line: the
    file or files it names, and why."""
    why = exc.strerror or str(exc)
    if exc.filename is None:
        return why
    if exc.filename2 is None:
        return f"{exc.filename}: {why}"
    return f"{exc.filename} -> {exc.filename2}: {why}"
