"""json --validate through the real command: exit status and exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vm.conftest import Run

VALID = ["", "  \n", "{}", "[]", "0", "-1.5e3", '"x"', "null", '{"a": 1, "a": 2}',
         '[1, {"b": [true, false, null]}, "\\u00e9\\n"]', "[" * 5000 + "]" * 5000]
INVALID = [
    ('{\n  "a": 1\n  "b": 2\n}', "Expected ',' instead of '\"' at line 3, column 3:\n"
     '          "b": 2\n        ..^'),
    ("{}{}", "Syntax error at line 1, column 3:\n        {}{}\n        ..^"),
    ("{} {}", "Syntax error at line 1, column 4:\n        {} {}\n        ...^"),
    ('{"a":1', "Expected ',' instead of '' at line 1, column 7:\n        {\"a\":1\n"
     "        ......^"),
    ("[1,]", "Unexpected ']' at line 1, column 4:\n        [1,]\n        ...^"),
    ('{"a":1,}', "Bad string at line 1, column 8:\n        {\"a\":1,}\n        .......^"),
    ("{a:1}", "Bad string at line 1, column 2:\n        {a:1}\n        .^"),
    ('{"a" 1}', "Expected ':' instead of '1' at line 1, column 6:\n        {\"a\" 1}\n"
     "        .....^"),
    ("01", "Bad number at line 1, column 1:\n        01\n        ^"),
    ("[1.]", "Bad number at line 1, column 2:\n        [1.]\n        .^"),
    ("NaN", "Unexpected 'N' at line 1, column 1:\n        NaN\n        ^"),
    ('"tab\there"', "Bad string at line 1, column 1:\n        \"tab\there\"\n        ^"),
    ('["\\x"]', "Bad string at line 1, column 2:\n        [\"\\x\"]\n        .^"),
]


@pytest.mark.parametrize("text", VALID, ids=range(len(VALID)))
def test_valid_input_exits_0_silently(jsoncheck: Run, text: str) -> None:
    proc = jsoncheck("--validate", input=text)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.parametrize("text,message", INVALID, ids=range(len(INVALID)))
def test_invalid_input_names_line_column_and_shows_the_caret(jsoncheck: Run, text: str,
                                                             message: str) -> None:
    proc = jsoncheck("--validate", input=text)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == f"json: error: input is not JSON: {message}\n"


def test_a_file_is_named_and_q_silences(jsoncheck: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1 2]")
    proc = jsoncheck("--validate", "-f", str(bad))
    assert proc.returncode == 1
    assert proc.stderr == (f'json: error: "{bad}" is not JSON: Expected \',\' instead of '
                           "'2' at line 1, column 4:\n        [1 2]\n        ...^\n")
    quiet = jsoncheck("--validate", "-q", "-f", str(bad))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, "", "")
    good = tmp_path / "good.json"
    good.write_text('{"a": [1]}\n')
    assert jsoncheck("--validate", "-f", str(good)).returncode == 0


def test_missing_file_and_non_utf8_are_errors_not_tracebacks(jsoncheck: Run,
                                                             tmp_path: Path) -> None:
    proc = jsoncheck("--validate", "-f", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert proc.stderr == f'json: error: cannot read "{tmp_path / "nope"}": ' \
                          "No such file or directory\n"
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'"caf\xe9"')
    proc = jsoncheck("--validate", "-f", str(latin))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == f'json: error: "{latin}" is not JSON: not UTF-8 (byte 4)\n'
