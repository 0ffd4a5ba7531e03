"""The one cell text of the image and VM tables."""

from __future__ import annotations

from liveforge.util.cells import cell_text


def test_cell_text_forms() -> None:
    assert cell_text(None) == "-"
    assert cell_text(True) == "true"
    assert cell_text(False) == "false"
    assert cell_text(0) == "0"
    assert cell_text([1, None, "a", False]) == "1,-,a,false"
    assert cell_text({"b": [1, 2], "a": {"x": "y z"}}) == '{"a":{"x":"y z"},"b":[1,2]}'
