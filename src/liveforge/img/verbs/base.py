"""What a verb is given: the parsed arguments, the store, output and debug logging."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import is_uuid
from liveforge.img.store import ImageStore


class Context:
    """One run of one verb."""

    def __init__(self, verb: str, args: argparse.Namespace, verbose: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None):
        self.verb = verb
        self.args = args
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._store: ImageStore | None = None

    @property
    def store(self) -> ImageStore:
        """The store under ``IMGADM_ROOT``; what killed runs left in its pools is cleaned the
        first time a verb asks for it."""
        if self._store is None:
            self._store = ImageStore.from_env()
            self.debug("store", root=str(self._store.root))
            for path in self._store.clean():
                self.debug("removed leftover", path=str(path))
        return self._store

    def say(self, line: str) -> None:
        """A line of the verb's output (stdout)."""
        print(line, file=self.out, flush=True)

    def json(self, value: Any) -> None:
        """``value`` as 2-space JSON on stdout."""
        print(json.dumps(value, indent=2), file=self.out, flush=True)

    def debug(self, msg: str, **fields: Any) -> None:
        """With ``-v``: one JSON line on stderr."""
        if not self.verbose:
            return
        record = {"name": "imgadm", "level": "debug", "time": round(time.time(), 3),
                  "verb": self.verb, "msg": msg, **fields}
        print(json.dumps(record, default=str), file=self.err, flush=True)


def image_uuid(value: str) -> str:
    """A UUID argument (argparse ``type``): a ``Usage`` error naming it when it is not one."""
    if not is_uuid(value):
        raise ImgadmError("Usage", f'invalid image uuid "{value}"')
    return value
