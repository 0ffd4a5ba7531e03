"""What a vmadm command costs before its work: the modules its path imports (its verb's alone,
nothing of installing or fetching images, no HTTP or terminal libraries) and the parser, which
declares only the verb the command line names; and the helpers that replaced heavier imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from liveforge.vm import cli, defaults, payload
from liveforge.vm.errors import VmadmError

# what a create's path (the command line, the verb, the container runtime) must not import
HEAVY = ("tarfile", "uuid", "platform", "httpx", "rich", "liveforge.img.layer",
         "liveforge.img.client", "liveforge.util.unpack", "liveforge.vm.jsoncheck",
         "liveforge.vm.brands.qemu")


def test_the_create_path_imports_nothing_heavy() -> None:
    code = ("import sys\n"
            "import liveforge.vm.cli, liveforge.vm.verbs.create, liveforge.vm.brands.container\n"
            "import liveforge.vm.verbs.lifecycle, liveforge.vm.verbs.delete\n"
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert [m for m in loaded if m in HEAVY or m.split(".")[0] in HEAVY] == []
    assert "liveforge.vm.verbs.create" in loaded  # the check sees what it should


def test_the_parser_declares_the_named_verb_alone_and_all_for_help() -> None:
    def verbs(parser: object) -> list[str]:
        action = next(a for a in parser._actions if a.dest == "verb")  # type: ignore[attr-defined]
        return list(action.choices)

    assert verbs(cli.parser()) == list(cli.VERBS)
    assert verbs(cli.parser("stop")) == ["stop"]
    args = cli.parser("stop").parse_args(["stop", "-F", "-t", "3", "x"])
    assert (args.func, args.F, args.t, args.uuid) == (cli.cmd_stop, True, 3.0, "x")
    proc = subprocess.run([sys.executable, "-m", "liveforge.vm.cli", "-h"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and all(f"    {v} " in proc.stdout for v in cli.VERBS)
    proc = subprocess.run([sys.executable, "-m", "liveforge.vm.cli", "frob"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'frob'" in proc.stderr


def test_random_uuids_are_version_4() -> None:
    made = {defaults.random_uuid() for _ in range(2000)}
    assert len(made) == 2000
    for value in made:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                            r"[0-9a-f]{12}", value), value


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": NaN}', "Unexpected 'N' at line 1, column 7"),
    ('{"a": -Infinity}', "at line 1, column 7"),
    ('{"a": 1,\n}', "at line 2, column 1"),
    ('{"a": 1} {"b": 2}', "at line 1, column 10"),
    ("  \n", "empty input"),
    ("[1, 2]", "not a JSON object"),
])
def test_payload_errors_are_json_validates(text: str, message: str) -> None:
    with pytest.raises(VmadmError, match=re.escape(message)):
        payload.parse(text.encode())


def test_a_good_payload_is_read_as_json_reads_it() -> None:
    text = '{"alias": "caf\\u00e9", "ram": 1e3, "tags": {"a": [1, null, true]}}'
    assert payload.parse(text.encode()) == json.loads(text)
