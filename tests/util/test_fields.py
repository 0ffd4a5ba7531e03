"""util/fields: one declaration per key; one reader that validates and fills in defaults."""

from __future__ import annotations

from typing import Any

from liveforge.util.fields import Field, read_table, typed


def even(value: Any) -> list[tuple[str, Any]]:
    return [(f"odd number {v}", v) for v in value if int(v) % 2]


FIELDS = (
    Field("name", "str", None),
    Field("flag", "bool", False),
    Field("items", "strlist", ["2"], even),
    Field("env", "strmap", {}),
)


def read(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, Any]]]:
    problems: list[tuple[str, str, Any]] = []
    values = read_table(data, FIELDS, lambda m, k, i: problems.append((m, k, i)), " in [t]")
    return values, problems


def test_defaults_fill_what_is_missing() -> None:
    assert read({"name": "x"}) == ({"name": "x", "flag": False, "items": ["2"], "env": {}}, [])


def test_every_problem_is_reported_and_the_bad_value_replaced_by_its_default() -> None:
    values, problems = read({"name": 5, "flag": "yes", "items": ["2", "3", "5"],
                             "env": {"A": 1}, "colour": "red"})
    assert problems == [
        ("name must be a string", "name", None),
        ("flag must be true or false", "flag", None),
        ("odd number 3", "items", "3"),
        ("odd number 5", "items", "5"),
        ("env must be a table of strings", "env", None),
        ("unknown key 'colour' in [t] (known: env, flag, items, name)", "colour", None),
    ]
    assert values == {"name": None, "flag": False, "items": ["2"], "env": {}}


def test_a_default_value_is_not_checked_again() -> None:
    calls: list[Any] = []
    fields = (Field("x", "any", ["d"], lambda v: calls.append(v) or []),)
    read_table({"x": ["d"]}, fields, lambda *a: None)
    read_table({"x": ["e"]}, fields, lambda *a: None)
    assert calls == [["e"]]


def test_types() -> None:
    assert typed("a", "str") and not typed(1, "str")
    assert typed(True, "bool") and not typed(1, "bool")
    assert typed(["a"], "strlist") and not typed(["a", 1], "strlist") and not typed("a", "strlist")
    assert typed({"a": "b"}, "strmap") and not typed({"a": 1}, "strmap")
    assert typed({}, "table") and not typed([], "table")
    assert typed(object(), "any")
