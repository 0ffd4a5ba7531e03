"""util/toml.py: the one TOML reader (errors name file and line; one parse per text) and the
line finder; the writer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from liveforge.util.errors import InputError
from liveforge.util.toml import Lines, dumps, read_toml

TEXT = """\
top = 1
list = ["a",
        "b"]

[table]
key = "v"   # a comment

[table.sub]
"quoted" = 2
"""


def test_decode_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('a = 1\n\n[t]\nb = "unclosed\n')
    with pytest.raises(InputError) as info:
        read_toml(path)
    assert info.value.file == str(path) and info.value.line == 4
    assert str(info.value).startswith(f"{path}:4: ")
    assert "(at line" not in str(info.value)


def test_decode_error_at_end_of_file(tmp_path: Path) -> None:
    path = tmp_path / "end.toml"
    path.write_text("a = ")
    with pytest.raises(InputError) as info:
        read_toml(path)
    assert str(info.value) == f"{path}: Invalid value at end of file"


def test_not_utf8_is_the_text_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'a = 1\nname = "caf\xe9"\n')
    with pytest.raises(InputError) as info:
        read_toml(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xe9 in column 12)"


def test_each_text_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    loads = tomllib.loads

    def counting(text: str) -> dict[str, object]:
        calls.append(text)
        return loads(text)

    monkeypatch.setattr(tomllib, "loads", counting)
    path = tmp_path / "once.toml"
    path.write_text('unique = "test_each_text_is_parsed_once"\n')
    first, _ = read_toml(path)
    second, _ = read_toml(path)
    assert first == second == {"unique": "test_each_text_is_parsed_once"}
    assert len(calls) == 1
    path.write_text('unique = "changed"\n')  # a changed text is parsed again
    assert read_toml(path)[0] == {"unique": "changed"} and len(calls) == 2


def test_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.toml"
    path.write_text(TEXT)
    data, lines = read_toml(path)
    assert data["table"]["sub"]["quoted"] == 2
    assert lines.key("", "top") == 1 and lines.key("", "key") is None
    assert lines.value("", "list", "b") == 3
    assert lines.table("table") == 5 and lines.table("table . sub") == 8
    assert lines.key("table", "key") == 6
    assert lines.key("table", "missing") == 5  # the table's header
    assert lines.key("table.sub", "quoted") == 9
    assert lines.table("nothere") is None and lines.key("nothere", "x") is None
    # without the text: read when first needed, headers given by a cache
    later = Lines(path, headers={("table",): 5})
    assert later.table("table") == 5 and later.key("table", "key") == 6


def test_dumps_comment_and_round_trip() -> None:
    data = {"format": 1, "name": 'quo"te', "deb": [{"a": 1}, {"a": 2}]}
    text = dumps(data, "first line\n\nthird")
    assert text.startswith("# first line\n#\n# third\nformat = 1\n")
    assert tomllib.loads(text) == data

