"""Two packages of one extra component installing one path: refused unless the entries are the
same (bytes, mode, link target), in the main and the strap phase, as between components.

Each package is a ``build = "commands"`` package whose install snippet writes into $DESTDIR,
built in the order ``a``, ``b`` (``b`` depends on ``a``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from liveforge.build.cli import main
from tests.support.cli import cli
from tests.support.extras import extra_state, package_toml, tarball

A_THEN_B = ("a", "b")


def collide_workspace(root: Path, www: tuple[Path, str], installs: dict[str, str],
                      strap: bool = False, variants: tuple[str, ...] = ("64",)) -> Path:
    """One extra component ``extra`` whose packages (name -> install snippet) are built in the
    order given, each depending on the one before."""
    files, url = www
    sha = tarball(files / "empty-1.0.tar.gz", {"empty-1.0/README": "nothing\n"})
    root.mkdir(parents=True)
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.extra]\nkind = "extra"\n'
        'path = "projects/extra"\n')
    comp = root / "projects" / "extra"
    before: str | None = None
    for name, script in installs.items():
        (comp / name).mkdir(parents=True)
        settings = [f"build = \"commands\"\nvariants = {json.dumps(list(variants))}"]
        if strap:
            settings.append("strap = true")
        if before is not None:
            settings.append(f'depends = ["{before}"]')
        (comp / name / "package.toml").write_text(
            package_toml(name, "1.0", f"{url}/empty-1.0.tar.gz", sha, "\n".join(settings))
            + f"\n[commands]\ninstall = '''\n{script}\n'''\n")
        before = name
    (comp / "manifest").write_text("d usr 0755 root sys\n")
    return root


def set_install(root: Path, name: str, script: str) -> None:
    toml = root / "projects" / "extra" / name / "package.toml"
    text = toml.read_text()
    toml.write_text(text[:text.index("[commands]")] + f"[commands]\ninstall = '''\n{script}\n'''\n")


def world(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stderr, and stderr + stdout + every log."""
    code = main(["-C", str(root), "world"])
    out = capsys.readouterr()
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((root / "log").glob("*.log")))
    return code, out.err, out.err + out.out + logs


def step_stamps(root: Path) -> list[Path]:
    return sorted(root.glob("0-extra*-stamp"))


def package_stamp(root: Path, name: str, phase: str = "main") -> Path:
    return extra_state(root) / "stamps" / phase / f"{name}.json"


def write(path: str, text: str, mode: str = "0644") -> str:
    """A shell snippet installing ``text`` at $DESTDIR/``path`` with ``mode``."""
    return (f'mkdir -p "$DESTDIR/$(dirname {path})"\n'
            f"printf '%s\\n' '{text}' > \"$DESTDIR/{path}\"\nchmod {mode} \"$DESTDIR/{path}\"")


def refused(text: str, err: str, path: str, area: str = "proto") -> None:
    """The one-line error names the later package and its variant, the area, the path and the
    earlier package; no traceback anywhere."""
    line = next((ln for ln in err.splitlines() if path in ln), "")
    assert line, err
    assert "extra package b (b-1.0-64" in line and f"into {area}/" in line, line
    assert f"{path} (also delivered by package a (a-1.0-64" in line, line
    assert "Traceback" not in text


def test_different_content_is_refused_and_stays_refused(tmp_path: Path, www: tuple[Path, str],
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    root = collide_workspace(tmp_path / "ws", www, {
        "a": write("usr/share/doc/x.txt", "from a"),
        "b": write("usr/share/doc/x.txt", "from b") + "\n" + write("usr/share/b.txt", "b only"),
    })
    code, err, text = world(root, capsys)
    assert code != 0
    refused(text, err, "usr/share/doc/x.txt")
    # nothing of b reached proto/; a's file is a's; no stamp says the step or b is built
    assert (root / "proto/usr/share/doc/x.txt").read_text() == "from a\n"
    assert not (root / "proto/usr/share/b.txt").exists()
    assert step_stamps(root) == []
    assert package_stamp(root, "a").is_file() and not package_stamp(root, "b").exists()
    # again with a up to date (delivered again without building): still refused
    set_install(root, "b", write("usr/share/doc/x.txt", "from b, again"))
    code, err, text = world(root, capsys)
    assert code != 0 and "a: up to date" in text
    refused(text, err, "usr/share/doc/x.txt")
    assert (root / "proto/usr/share/doc/x.txt").read_text() == "from a\n"
    assert step_stamps(root) == []
    # b made to agree with a: built, and the step is done
    set_install(root, "b", write("usr/share/doc/x.txt", "from a"))
    code, err, text = world(root, capsys)
    assert code == 0, text
    assert (root / "proto/usr/share/doc/x.txt").read_text() == "from a\n"
    assert len(step_stamps(root)) == 1 and package_stamp(root, "b").is_file()


def test_the_same_entries_twice_are_allowed(tmp_path: Path, www: tuple[Path, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    same = (write("usr/share/doc/x.txt", "shared", "0755")
            + '\nln -s x.txt "$DESTDIR/usr/share/doc/link"')
    root = collide_workspace(tmp_path / "ws", www, {"a": same, "b": same})
    code, err, text = world(root, capsys)
    assert code == 0, text
    x = root / "proto/usr/share/doc/x.txt"
    assert x.read_text() == "shared\n" and x.stat().st_mode & 0o7777 == 0o755
    assert os.readlink(root / "proto/usr/share/doc/link") == "x.txt"
    assert len(step_stamps(root)) == 1


def test_the_same_bytes_with_another_mode_are_refused(tmp_path: Path, www: tuple[Path, str],
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    root = collide_workspace(tmp_path / "ws", www, {
        "a": write("usr/bin/tool", "#!/bin/sh", "0755"),
        "b": write("usr/bin/tool", "#!/bin/sh", "0644"),
    })
    code, err, text = world(root, capsys)
    assert code != 0
    refused(text, err, "usr/bin/tool")
    assert (root / "proto/usr/bin/tool").stat().st_mode & 0o7777 == 0o755
    assert step_stamps(root) == []


@pytest.mark.parametrize("first, second", [
    ("link", "file"), ("file", "link"), ("link", "other-link")])
def test_a_link_and_a_file_or_another_link_are_refused(tmp_path: Path, www: tuple[Path, str],
                                                       capsys: pytest.CaptureFixture[str],
                                                       first: str, second: str) -> None:
    snippets = {
        "file": write("usr/lib/libx.so", "an ELF, say"),
        "link": 'mkdir -p "$DESTDIR/usr/lib"\nln -s libx.so.1 "$DESTDIR/usr/lib/libx.so"',
        "other-link": 'mkdir -p "$DESTDIR/usr/lib"\nln -s libx.so.2 "$DESTDIR/usr/lib/libx.so"',
    }
    root = collide_workspace(tmp_path / "ws", www, {"a": snippets[first], "b": snippets[second]})
    code, err, text = world(root, capsys)
    assert code != 0
    refused(text, err, "usr/lib/libx.so")
    placed = root / "proto/usr/lib/libx.so"
    if first == "link":
        assert os.readlink(placed) == "libx.so.1"
    else:
        assert not placed.is_symlink() and placed.read_text() == "an ELF, say\n"
    assert step_stamps(root) == []


@pytest.mark.parametrize("first", ["directory", "file"])
def test_a_directory_and_a_file_at_one_path_are_refused(tmp_path: Path, www: tuple[Path, str],
                                                        capsys: pytest.CaptureFixture[str],
                                                        first: str) -> None:
    """Either order: a file over a directory, or a directory over a file (which a plain merge
    would silently replace)."""
    snippets = {
        "directory": write("usr/share/thing/inside.txt", "inside"),
        "file": write("usr/share/thing", "a plain file"),
    }
    second = "file" if first == "directory" else "directory"
    root = collide_workspace(tmp_path / "ws", www, {"a": snippets[first], "b": snippets[second]})
    code, err, text = world(root, capsys)
    assert code != 0
    refused(text, err, "usr/share/thing")
    thing = root / "proto/usr/share/thing"
    if first == "directory":
        assert (thing / "inside.txt").read_text() == "inside\n"
    else:
        assert thing.is_file() and thing.read_text() == "a plain file\n"
    assert step_stamps(root) == []


def test_many_collisions_name_the_first_three(tmp_path: Path, www: tuple[Path, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"usr/share/m/{n}" for n in ("e", "d", "c", "b", "a")]
    root = collide_workspace(tmp_path / "ws", www, {
        "a": "\n".join(write(n, "a") for n in names),
        "b": "\n".join(write(n, "b") for n in names),
    })
    code, err, text = world(root, capsys)
    assert code != 0
    line = next(ln for ln in err.splitlines() if "usr/share/m/a" in ln)
    assert "usr/share/m/a (also delivered by package a (a-1.0-64)), " \
           "usr/share/m/b (also delivered by package a (a-1.0-64)), " \
           "usr/share/m/c (also delivered by package a (a-1.0-64)) and 2 more" in line
    assert "usr/share/m/d" not in line


def test_the_strap_phase_refuses_the_same_way(tmp_path: Path, www: tuple[Path, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = collide_workspace(tmp_path / "ws", www, {
        "a": write("usr/include/x.h", "a"),
        "b": write("usr/include/x.h", "b"),
    }, strap=True)
    code, err, text = world(root, capsys)
    assert code != 0
    line = next((ln for ln in err.splitlines() if "usr/include/x.h" in ln), "")
    assert "extra package b (b-1.0-64strap) delivers into proto.strap/" in line, err
    assert "usr/include/x.h (also delivered by package a (a-1.0-64strap))" in line
    assert (root / "proto.strap/usr/include/x.h").read_text() == "a\n"
    assert not (root / "proto/usr/include/x.h").exists()  # the main phase never started
    assert step_stamps(root) == [] and not package_stamp(root, "b", "strap").exists()


def test_the_variants_of_one_package_may_replace_each_other(
        tmp_path: Path, www: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """As in illumos-extra, the 64-bit install goes over the 32-bit one (usr/bin)."""
    root = collide_workspace(tmp_path / "ws", www, {
        "a": 'mkdir -p "$DESTDIR/usr/bin"\necho "$VARIANT" > "$DESTDIR/usr/bin/v"',
    }, variants=("32", "64"))
    code, err, text = world(root, capsys)
    assert code == 0, text
    assert (root / "proto/usr/bin/v").read_text() == "64\n"


def test_a_name_that_is_not_utf8_is_shown_escaped(tmp_path: Path, www: tuple[Path, str]
                                                  ) -> None:
    """In a subprocess with a timeout: a message that cannot be encoded must not hang the
    run (it did, the step's thread dying while writing the error to its log)."""
    def snippet(text: str) -> str:
        return (f'mkdir -p "$DESTDIR/usr/share"\n'
                f"printf %s {text} > \"$DESTDIR/usr/share/$(printf 'caf\\351')\"")
    root = collide_workspace(tmp_path / "ws", www, {"a": snippet("a"), "b": snippet("b")})
    proc = cli(root, "world", timeout=60)
    assert proc.returncode != 0
    assert "usr/share/caf\\udce9' (also delivered by package a (a-1.0-64))" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (root / "proto/usr/share").joinpath(os.fsdecode(b"caf\xe9")).read_text() == "a"
    assert step_stamps(root) == []


def test_an_extra_package_over_another_steps_file_is_refused(
        tmp_path: Path, www: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root = collide_workspace(tmp_path / "ws", www, {"a": write("etc/x.conf", "from one")})
    comp = root / "projects"
    collide_workspace(tmp_path / "other", www, {"b": write("etc/x.conf", "from two")})
    os.rename(tmp_path / "other/projects/extra", comp / "two")
    with (root / "platform.toml").open("a") as toml:
        toml.write('\n[components.two]\nkind = "extra"\npath = "projects/two"\n'
                   'depends = ["extra"]\n')
    code, err, text = world(root, capsys)
    assert code != 0 and "etc/x.conf (also delivered by extra)" in err, (code, err)
    assert (root / "proto/etc/x.conf").read_text() == "from one\n"
