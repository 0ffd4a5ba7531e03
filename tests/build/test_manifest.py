"""The manifest format (README, "Manifests"): parser rules, path safety, combination."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from liveforge.build.image.manifest import (
    Entry,
    _parse_line,
    _suspects,
    combine,
    format_manifest,
    parse_file,
    parse_text,
    path_problem,
    write_manifest,
)
from liveforge.util.errors import InputErrors
from liveforge.util.keyvalue import UndefinedVariable, substitute
from tests.support.manifests import generate


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    return [str(e) for e in parse_text(text, "m", env)[1]]


def test_parses_every_kind_with_source_line() -> None:
    entries, errors = parse_text(
        "# header\n\n  d usr 0755 root sys  # trailing\nf usr/bin/grep\t0555 root bin\n"
        "s usr/bin/coolgrep=grep\nh usr/bin/egrep=usr/bin/grep#c\n", "m")
    assert errors == []
    assert entries == [
        Entry("d", "usr", 0o755, "root", "sys", "", "m", 3),
        Entry("f", "usr/bin/grep", 0o555, "root", "bin", "", "m", 4),
        Entry("s", "usr/bin/coolgrep", 0, "", "", "grep", "m", 5),
        Entry("h", "usr/bin/egrep", 0, "", "", "usr/bin/grep", "m", 6),
    ]
    with pytest.raises(AttributeError):
        entries[0].path = "x"  # type: ignore[misc]


@pytest.mark.parametrize("line, message", [
    ("f a 0755 root", "'f' entry needs exactly 5 fields (type path mode owner group), got 4"),
    ("d a 0755 root sys extra", "'d' entry needs exactly 5 fields (type path mode owner group), "
                                "got 6"),
    ("f a 0758 root bin", "invalid mode '0758': expected an octal number <= 07777"),
    ("f a 17777 root bin", "invalid mode '17777': expected an octal number <= 07777"),
    ("f a rwx root bin", "invalid mode 'rwx': expected an octal number <= 07777"),
    ("file a 0755 root bin", "unknown entry type 'file': expected one of d, f, s, h"),
    ("x a", "unknown entry type 'x': expected one of d, f, s, h"),
    ("s a", "'s' entry needs name=target, got 'a'"),
    ("s a=b c", "'s' entry needs exactly 2 fields (s name=target), got 3"),
    ("s =b", "'s' entry has an empty name in '=b'"),
    ("h a=", "'h' entry has an empty target in 'a='"),
    ("f /usr 0755 root bin", "absolute path '/usr' (paths are relative to the image root)"),
    ("d a/../b 0755 root bin", "'..' component in path 'a/../b'"),
    ("d .. 0755 root bin", "'..' component in path '..'"),
    ("f a//b 0755 root bin", "empty component in path 'a//b'"),
    ("d a// 0755 root bin", "empty component in path 'a//'"),
    ("d / 0755 root bin", "absolute path '/' (paths are relative to the image root)"),
    ("f a/ 0755 root bin", "'f' entry path 'a/' ends in '/' (only a 'd' entry may)"),
    ("f usr/bin/ 0755 root bin", "'f' entry path 'usr/bin/' ends in '/' (only a 'd' entry may)"),
    ("s a/=b", "'s' entry path 'a/' ends in '/' (only a 'd' entry may)"),
    ("h a/=b", "'h' entry path 'a/' ends in '/' (only a 'd' entry may)"),
    ("f a/./b 0755 root bin", "'.' component in path 'a/./b'"),
    ("f a\0b 0755 root bin", "NUL character in path 'a\\x00b'"),
    ("s /abs=x", "absolute path '/abs' (paths are relative to the image root)"),
    ("s a/../b=x", "'..' component in path 'a/../b'"),
    ("h a=/etc/passwd", "hard link target '/etc/passwd' is outside the image (absolute)"),
    ("h a=../x", "hard link target '../x' is outside the image (escapes with '..')"),
    ("h a/b=a/../../x", "hard link target 'a/../../x' is outside the image (escapes with '..')"),
    ("h a=a", "hard link 'a' points to itself"),
])
def test_each_rule_has_its_error(line: str, message: str) -> None:
    assert errors_of(f"# first\n{line}\n") == [f"m:2: {message}"]


NAME_255, NAME_256 = "n" * 255, "n" * 256
WIDE_256 = "\u00e9" * 128                       # 128 characters, 256 bytes in UTF-8
WIDE_254 = "\u00e9" * 127
PATH_4095 = ("p" * 99 + "/") * 40 + "p" * 95    # 4095 bytes
PATH_4096 = PATH_4095 + "p"


@pytest.mark.parametrize("line, message", [
    (f"d {NAME_256} 0755 root sys",
     f"path component of 256 bytes (at most 255): {'n' * 32!r}...{'n' * 16!r}"),
    (f"f usr/{NAME_256}/x 0644 root bin",
     f"path component of 256 bytes (at most 255): {'n' * 32!r}...{'n' * 16!r}"),
    (f"d usr/{WIDE_256}/ 0755 root sys",
     f"path component of 256 bytes (at most 255): {WIDE_256[:32]!r}...{WIDE_256[:16]!r}"),
    (f"s a/{NAME_256}=x",
     f"path component of 256 bytes (at most 255): {'n' * 32!r}...{'n' * 16!r}"),
    (f"f {PATH_4096} 0644 root bin",
     f"path of 4096 bytes (at most 4095): {PATH_4096[:32]!r}...{PATH_4096[-16:]!r}"),
    (f"h {PATH_4096}=a",
     f"path of 4096 bytes (at most 4095): {PATH_4096[:32]!r}...{PATH_4096[-16:]!r}"),
])
def test_names_too_long_for_the_file_system(line: str, message: str) -> None:
    """A component over 255 bytes or a path over 4095 bytes (NAME_MAX, PATH_MAX) is a file:line
    error, counted in bytes of UTF-8, whether the line takes the fast path or not."""
    ok = "d a 0755 root sys\n"
    assert errors_of(f"{ok}{line}\n{ok}") == [f"m:2: {message}"]
    assert errors_of(f"{ok}{line} # comment\n{ok}") == [f"m:2: {message}"]


def test_longest_names_are_accepted() -> None:
    text = (f"d {NAME_255} 0755 root sys\nf {NAME_255}/{WIDE_254}x 0644 root bin\n"
            f"f {PATH_4095} 0644 root bin\ns {PATH_4095[:-1]}q=x\n")
    entries, errors = parse_text(text, "m")
    assert errors == []
    assert [len(e.path.encode()) for e in entries] == [255, 255 + 1 + 255, 4095, 4095]


def test_real_world_manifest_forms(tmp_path: Path) -> None:
    """Trailing '/' on directories, tabs and runs of blanks, blank lines, comment lines and
    comments after the fields: accepted, and manifest.gen holds the canonical lines."""
    a = write(tmp_path / "a.manifest",
              "# node modules\n"
              "\n"
              "d usr 0755 root sys\n"
              "d usr/lib/ 0755 root bin\n"
              "d\tusr/lib/node_modules/\t0755\troot\tbin\n"
              "d  usr/lib/node_modules/foo/   0755 root  bin   \n"
              "   \t\n"
              "\t# indented comment\n"
              "f usr/lib/node_modules/foo/index.js 0644 root bin # the entry point\n"
              "f \t usr/lib/node_modules/foo/package.json\t \t0644 root bin#no space\n"
              "s usr/lib/node_modules/foo/lib=.\t\n"
              "h  usr/lib/node_modules/foo/main.js=usr/lib/node_modules/foo/index.js\r\n")
    b = write(tmp_path / "b.manifest", "d usr/lib 0755 root bin\nd usr/lib/node_modules/foo/ "
              "0750 root bin\n")
    warnings: list[str] = []
    manifest = combine([a, b], {}, False, warnings.append)
    assert format_manifest(manifest) == (
        "d usr 0755 root sys\n"
        "d usr/lib 0755 root bin\n"
        "d usr/lib/node_modules 0755 root bin\n"
        "d usr/lib/node_modules/foo 0750 root bin\n"
        "f usr/lib/node_modules/foo/index.js 0644 root bin\n"
        "s usr/lib/node_modules/foo/lib=.\n"
        "h usr/lib/node_modules/foo/main.js=usr/lib/node_modules/foo/index.js\n"
        "f usr/lib/node_modules/foo/package.json 0644 root bin\n")
    # 'd usr/lib/' and 'd usr/lib' are one key: identical lines are silent, others warn
    assert warnings == [f"'usr/lib/node_modules/foo' is delivered twice: {a}:6 and {b}:2 "
                        "(the later one wins)"]
    entry = manifest.get("usr/lib/node_modules/foo")
    assert entry is not None and entry.where == f"{b}:2" and "usr/lib/" not in manifest
    with pytest.raises(InputErrors) as info:
        combine([a, b], {}, True, lambda _: None)
    assert str(info.value) == (f"{b}:2: 'usr/lib/node_modules/foo' is delivered twice: {a}:6 "
                               f"and {b}:2")


def test_non_utf8_lines_are_file_line_errors(tmp_path: Path) -> None:
    """Every line that is not UTF-8 is named with its byte; the other lines are still checked."""
    path = tmp_path / "m"
    path.write_bytes(b"d a 0755 root sys\nf a/caf\xe9 0644 root bin\nq x\n"
                     b"f a/\xff\xfe 0644 root bin\nf a/ok\xc3\xa9 0644 root bin\n")
    for read in (lambda: parse_file(path), lambda: combine([path], {}, False, print)):
        with pytest.raises(InputErrors) as info:
            read()
        assert str(info.value).splitlines() == [
            f"{path}:2: not UTF-8 text (byte 0xe9 in column 8)",
            f"{path}:3: unknown entry type 'q': expected one of d, f, s, h",
            f"{path}:4: not UTF-8 text (byte 0xff in column 5)"]


def test_symlink_target_text_is_literal() -> None:
    entries, errors = parse_text("s a=/usr/lib/x\ns b=../../etc\ns c=a//b/./\n", "m")
    assert errors == []
    assert [e.target for e in entries] == ["/usr/lib/x", "../../etc", "a//b/./"]


def test_hard_link_target_is_normalised_inside_the_image() -> None:
    entries, _ = parse_text("h usr/bin/egrep=usr/lib/../bin/grep\n", "m")
    assert entries[0].target == "usr/bin/grep"


def test_all_errors_of_a_file_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.write_text("f a 0755\nd ok 0755 root sys\nq x\ns y\nf /z 0644 root bin\n")
    with pytest.raises(InputErrors) as info:
        parse_file(path)
    assert [e.line for e in info.value.errors] == [1, 3, 4, 5]
    assert str(info.value).splitlines()[0].startswith(f"{path}:1: 'f' entry needs exactly 5")


def test_variables_are_substituted() -> None:
    env = {"ARCH": "x86_64", "OWNER": "root"}
    entries, errors = parse_text("f lib/$ARCH/libc.so 0755 $OWNER ${OWNER}\n"
                                 "s lib64=lib/${ARCH}\n", "m", env)
    assert errors == []
    assert entries[0].path == "lib/x86_64/libc.so" and entries[0].group == "root"
    assert entries[1].target == "lib/x86_64"


def test_undefined_variable_is_named() -> None:
    assert errors_of("d a 0755 root sys\nf $NOPE/x 0644 root bin\n", {}) == [
        "m:2: undefined variable 'NOPE'"]
    assert errors_of("f ${BAD-NAME} 0644 root bin\n", {}) == ["m:1: undefined variable 'BAD-NAME'"]


def test_substitute_keeps_or_names_undefined() -> None:
    """The one $VAR rule: manifest lines name an undefined variable, component manifests keep
    it for combine."""
    values = {"A": "1", "B_2": "two"}
    assert substitute("$A-${B_2}$$A", values) == "1-two$1"
    with pytest.raises(UndefinedVariable) as info:
        substitute("x $C", values)
    assert info.value.name == "C"
    with pytest.raises(UndefinedVariable) as info:
        substitute("${not a name}", values)
    assert info.value.name == "not a name"
    # kept as written: the others are substituted later (component manifests)
    assert substitute("$C ${C} ${x $A} $A", values, keep_undefined=True) == "$C ${C} ${x 1} 1"


def test_variable_cannot_smuggle_an_unsafe_path() -> None:
    assert errors_of("f $P/x 0644 root bin\n", {"P": "/etc"}) == [
        "m:1: absolute path '/etc/x' (paths are relative to the image root)"]
    assert errors_of("f a$P 0644 root bin\n", {"P": "/../b"}) == [
        "m:1: '..' component in path 'a/../b'"]
    assert errors_of("f a$P 0644 root bin\n", {"P": "\nb"}) == ["m:1: newline in path 'a\\nb'"]
    assert errors_of("f a 0644 $O bin\n", {"O": "root sys"}) == [
        "m:1: '$O' is 'root sys' after substitution: a field cannot be empty or hold whitespace"]
    assert errors_of("f a 0644 $O bin\n", {"O": ""}) == [
        "m:1: '$O' is '' after substitution: a field cannot be empty or hold whitespace"]


FUZZ_TOKENS = ["f", "d", "s", "h", "x", "a", "b/c", ".hidden", "a/.b", "..", ".", "/abs", "a//b",
               "dir/", "0755", "755", "07777", "17777", "0758", "root", "sys", "=", "a=b", "a=",
               "=b", "a=/t", "a=../t", "h=a", "a=a", "#", "#c", "$V", "${V}", "$NOPE", "a\0b",
               "\t", "\u00a0", "\r", "é", "a=b=c", "a=./b", "a=b/", "a=b//c",
               "a=b/./c", "a=b/../c", "a=b/../../c", "a=b/.c", "a/", "a/=b", "/", "a//", "",
               "n" * 256, "n" * 300 + "/b", "\u00e9" * 128, "\u00e9" * 127,
               "/".join(["n" * 250] * 17), "/".join(["n" * 200] * 20)]


def test_fast_path_agrees_with_the_exact_rules() -> None:
    """Random lines parsed as a file (fast path) give the entries and errors that the exact
    per-line parser gives, line by line."""
    rng = random.Random(7)
    shapes = [["f", "PATH", "MODE", "root", "sys"], ["d", "PATH", "MODE", "root", "sys"],
              ["s", "PATH=T"], ["h", "PATH=T"]]
    for env in (None, {"V": "v/w"}):
        lines = []
        for _ in range(3000):
            if rng.random() < 0.5:
                shape = rng.choice(shapes)
                words = [w.replace("PATH", rng.choice(["a", "b/c", "u/v/w", rng.choice(
                    FUZZ_TOKENS)])).replace("MODE", rng.choice(["0755", "0644", rng.choice(
                        FUZZ_TOKENS)])).replace("T", rng.choice(["t", "x/y", rng.choice(
                            FUZZ_TOKENS)])) for w in shape]
            else:
                words = [rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(0, 6))]
            sep = rng.choice([" ", " ", " ", "  ", "\t"])
            lines.append(rng.choice(["", " "]) + sep.join(words) + rng.choice(["", "", " "]))
        entries, errors = parse_text("\n".join(lines) + "\n", "m", env)
        expected_entries, expected_errors = [], []
        for number, line in enumerate(lines, 1):
            one = _parse_line(line, "m", number, env)
            if isinstance(one, Entry):
                expected_entries.append(one)
            elif one is not None:
                expected_errors.append(str(one))
        assert [str(e) for e in errors] == expected_errors
        assert entries == expected_entries
        assert len(entries) > 300 and len(errors) > 300


def test_every_unsafe_path_is_a_suspect() -> None:
    """The fast path checks only the paths _suspects names: it names every unsafe one, wherever
    it stands (first, last, beside another)."""
    rng = random.Random(3)
    safe = ["a", "b/c", "usr/lib/x.so", "a.b", "a/b.c", "n" * 255, "\u00e9" * 63]
    unsafe = ["/a", "a/", "a//b", ".", "..", "./a", "a/..", "a/./b", "../a", "/", "n" * 256,
              "\u00e9" * 128, "a/" + "n" * 300, ".h", "a/.h"]
    for _ in range(2000):
        paths = [rng.choice(safe if rng.random() < 0.8 else unsafe)
                 for _ in range(rng.randint(1, 6))]
        wide = not all(p.isascii() for p in paths)
        expected = {i for i, p in enumerate(paths) if path_problem(p) is not None}
        assert expected <= set(_suspects(paths, not wide)), paths


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_combine_duplicates_warn_naming_both_lines(tmp_path: Path) -> None:
    a = write(tmp_path / "a.manifest", "d usr 0755 root sys\nf usr/x 0644 root bin\n")
    b = write(tmp_path / "b.manifest", "d usr 0755 root sys\n\nf usr/x 0600 root sys\n")
    warnings: list[str] = []
    manifest = combine([a, b], {}, False, warnings.append)
    assert warnings == [f"'usr/x' is delivered twice: {a}:2 and {b}:3 (the later one wins)"]
    winner = manifest.get("usr/x")
    assert winner is not None and winner.mode == 0o600 and winner.file == str(b)
    assert len(manifest.overrides) == 1


def test_combine_differing_d_lines_warn(tmp_path: Path) -> None:
    a = write(tmp_path / "a", "d usr 0755 root sys\n")
    b = write(tmp_path / "b", "d usr 0750 root sys\n")
    warnings: list[str] = []
    combine([a, b], {}, False, warnings.append)
    assert len(warnings) == 1


def test_combine_strict_makes_duplicates_errors(tmp_path: Path) -> None:
    a = write(tmp_path / "a", "f x 0644 root bin\n")
    b = write(tmp_path / "b", "s x=y\n")
    with pytest.raises(InputErrors) as info:
        combine([a, b], {}, True, lambda _: None)
    assert str(info.value) == f"{b}:1: 'x' is delivered twice: {a}:1 and {b}:1"


def test_combine_reports_errors_of_every_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a", "f x 0644\n")
    b = write(tmp_path / "b", "d ok 0755 root sys\nd /bad 0755 root sys\n")
    with pytest.raises(InputErrors) as info:
        combine([a, b], {}, False, lambda _: None)
    assert [(e.file, e.line) for e in info.value.errors] == [(str(a), 1), (str(b), 2)]


def test_manifest_gen_is_sorted_and_reparses(tmp_path: Path) -> None:
    a = write(tmp_path / "a", "f usr/b 644 root bin\nd usr 0755 root sys\ns a=b\n")
    manifest = combine([a], {}, False, lambda _: None)
    assert format_manifest(manifest) == "s a=b\nd usr 0755 root sys\nf usr/b 0644 root bin\n"
    gen = tmp_path / "manifest.gen"
    write_manifest(manifest, gen)
    again = parse_file(gen)
    assert [e.path for e in again] == ["a", "usr", "usr/b"]


def test_realistic_generated_manifests(tmp_path: Path) -> None:
    one, two = generate(1200, seed=3), generate(1100, seed=4, prefix="a")
    assert len(one.lines) >= 1000 and len(two.lines) >= 1000
    a = write(tmp_path / "one", "\n".join(one.lines) + "\n")
    b = write(tmp_path / "two", "\n".join(two.lines) + "\n")
    warnings: list[str] = []
    manifest = combine([a, b], {}, True, warnings.append)
    kinds = [e.kind for e in manifest.entries()]
    assert len(manifest) == len(one.lines) + len(two.lines) - 2 and warnings == []
    assert kinds.count("s") > 50 and kinds.count("h") > 5 and kinds.count("d") > 50
    targets = [e.target for e in manifest.entries() if e.kind == "s"]
    assert any(t.startswith("/") for t in targets) and any(t.startswith("..") for t in targets)
    # The fast path and the exact per-line rules agree.
    slow = parse_text("\n".join(f"{line} #" for line in one.lines), "x")[0]
    assert sorted((e.path, e.kind, e.mode, e.target) for e in slow) == sorted(
        (e.path, e.kind, e.mode, e.target) for e in manifest.entries() if e.file == str(a))
