"""vmadm's errors. ``main()`` prints the message on stderr and exits with ``exit_code``."""

from __future__ import annotations

from collections.abc import Mapping

from liveforge.util.errors import LiveforgeError, UsageError


class VmadmError(LiveforgeError):
    """A vmadm failure: its message on stderr, exit status 1."""


class BadUuid(UsageError):
    """A UUID argument that is not one (36 characters, dashes at 8, 13, 18, 23): a usage
    error, exit 2."""

    def __init__(self, command: str):
        super().__init__(f"Invalid or missing UUID for {command}")


class NoSuchVm(VmadmError):
    """A well-formed UUID that names no VM here."""

    def __init__(self, uuid: str):
        self.uuid = uuid
        super().__init__(f"No such VM {uuid}")


class InvalidPayload(VmadmError):
    """A payload that fails validation: ``validate`` prints ``errors`` (the three lists, or
    ``bad_brand``) as JSON; create and update print the one-line message."""

    def __init__(self, message: str, errors: Mapping[str, object]):
        self.errors = errors
        super().__init__(message)
