"""The buildstamp: YYYYMMDDTHHMMSSZ (UTC), from BUILDSTAMP, SOURCE_DATE_EPOCH or the time now.

Only times that cpio newc and tar headers can hold are buildstamps.
"""

from __future__ import annotations

import os
import re

from liveforge.util.errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

STAMP_RE = re.compile(r"\d{8}T\d{6}Z\Z")
# cpio newc holds a time in 8 hex digits, tar (ustar) in 11 octal ones: the times both hold
EPOCH_MAX = 2**32 - 1  # 21060207T062815Z
EPOCH_RE = re.compile(r"[0-9]+\Z")


def _stamp(epoch: int) -> str:
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _check_epoch(epoch: int, what: str, given: str, limits: str) -> int:
    if not 0 <= epoch <= EPOCH_MAX:
        raise InputError(f"{what} {given!r} is outside what cpio and tar archives hold "
                         f"({limits})")
    return epoch


def buildstamp_now(environ: Mapping[str, str] | None = None) -> str:
    """BUILDSTAMP, else SOURCE_DATE_EPOCH, else the UTC time now, as YYYYMMDDTHHMMSSZ; a
    stamp or epoch that is no real time, or one the archives cannot hold, is an InputError."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    stamp = env.get("BUILDSTAMP")
    if stamp:
        stamp_epoch(stamp, "BUILDSTAMP")
        return stamp
    epoch = env.get("SOURCE_DATE_EPOCH")
    if not epoch:  # the time now, without importing datetime
        import time

        return _stamp(int(time.time()))
    if not EPOCH_RE.match(epoch):
        raise InputError(f"SOURCE_DATE_EPOCH {epoch!r} is not a number of seconds")
    return _stamp(_check_epoch(int(epoch), "SOURCE_DATE_EPOCH", epoch, f"0 to {EPOCH_MAX}"))


def stamp_epoch(stamp: str, what: str = "buildstamp") -> int:
    """Seconds since the epoch of a buildstamp (``what`` names it in errors)."""
    import datetime as _dt

    if not STAMP_RE.match(stamp):
        raise InputError(f"{what} {stamp!r} is not of the form YYYYMMDDTHHMMSSZ")
    try:
        when = _dt.datetime(int(stamp[0:4]), int(stamp[4:6]), int(stamp[6:8]), int(stamp[9:11]),
                            int(stamp[11:13]), int(stamp[13:15]), tzinfo=_dt.UTC)
    except ValueError:
        raise InputError(f"{what} {stamp!r} is not a real date and time") from None
    return _check_epoch(int(when.timestamp()), what, stamp,
                        f"{_stamp(0)} to {_stamp(EPOCH_MAX)}")

