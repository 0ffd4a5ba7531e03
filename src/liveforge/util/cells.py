"""The text of a value in a table cell, as ``imgadm list`` and ``vmadm list`` show it and as
their ``FIELD=VALUE`` filters compare it.

``-`` for a missing value (``None``), ``true``/``false``, a list's items comma-joined, an
object as compact JSON with sorted keys (``{"a":1,"b":"x"}``: a cell holds no spaces of its
own), anything else its ``str``.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def cell_text(value: Any) -> str:
    """The cell of ``value`` (see the module's text)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)
