"""Stamps: ``0-<step>-stamp`` files holding a step's input hash, and why a step is stale.

A step's inputs are the kind's named hashes (its source tree, lock entries...), the build.env
keys it sees, its platform.toml table, and the input hashes of the steps it depends on. The
stamp records each part, so a stale step can say which one changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from liveforge.build.config import hashed_settings
from liveforge.util.fileio import read_json, write_atomic
from liveforge.util.hashing import json_digest

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a step's output depends on."""

    own: dict[str, str]          # kind-provided hashes, e.g. {"source": ...}
    env: dict[str, str]          # build.env keys the step sees -> values
    settings: str                # hash of the component's platform.toml table
    deps: dict[str, str]         # dependency step -> its input hash
    digest: str = field(init=False, repr=False, compare=False)  # of the fields above

    def __post_init__(self) -> None:
        """``digest``: :func:`~liveforge.util.hashing.json_digest` of the inputs (set as a
        frozen dataclass's derived field is)."""
        object.__setattr__(self, "digest", json_digest(self.as_dict()))

    def as_dict(self) -> dict[str, Any]:
        return {"own": self.own, "env": self.env, "settings": self.settings, "deps": self.deps}


def settings_hash(settings: dict[str, Any]) -> str:
    """The hash of a component's platform.toml table, as stamps record it: its build inputs
    only (not its licence)."""
    return json_digest(hashed_settings(settings))[:16]


def read_stamp(path: str | Path) -> dict[str, Any] | None:
    """The stamp's recorded inputs, or None when there is no (readable) stamp: a file of
    another shape than :func:`write_stamp` writes is none either (it is never trusted)."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("hash"), str):
        return None
    inputs = data.get("inputs")
    if not isinstance(inputs, dict) or not all(isinstance(inputs.get(part), dict)
                                               for part in ("own", "env", "deps")):
        return None
    return data


def write_stamp(path: Path, inputs: Inputs, buildstamp: str) -> None:
    data = {"hash": inputs.digest, "inputs": inputs.as_dict(), "built": buildstamp}
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def why_stale(stamp: dict[str, Any] | None, inputs: Inputs) -> list[str]:
    """Empty when up to date; else the reasons, most specific first."""
    if stamp is None:
        return ["never built"]
    if stamp.get("hash") == inputs.digest:
        return []
    old = stamp.get("inputs") or {}
    reasons: list[str] = []
    old_own = old.get("own", {})
    for key in sorted(set(old_own) | set(inputs.own)):
        if old_own.get(key) != inputs.own.get(key):
            if key == "proto":
                reasons.append("the staging area was removed or recreated")
            else:
                reasons.append(f"{key} changed" if key in old_own else f"new input {key}")
    old_env = old.get("env", {})
    for key in sorted(set(old_env) | set(inputs.env)):
        if old_env.get(key) != inputs.env.get(key):
            reasons.append(f"build.env {key}: {old_env.get(key, '(unset)')!s} -> "
                           f"{inputs.env.get(key, '(unset)')!s}")
    if old.get("settings") != inputs.settings:
        reasons.append("platform.toml settings changed")
    old_deps = old.get("deps", {})
    for dep in sorted(set(old_deps) | set(inputs.deps)):
        if dep not in inputs.deps:
            reasons.append(f"dependency {dep} removed")
        elif dep not in old_deps:
            reasons.append(f"new dependency {dep}")
        elif old_deps[dep] != inputs.deps[dep]:
            reasons.append(f"dependency {dep} changed")
    return reasons or ["stamp format changed"]
