"""The version files: what only the build knows, shipped like any other file of the image.

* ``etc/version/platform`` holds the buildstamp;
* each template (``[platform] templates``: image paths, found like any shipped file: the
  overlays in order, then proto; a symlink leading outside its directory is refused) is shipped
  with ``@NAME@``, ``@STAMP@`` and ``@PLATFORM@`` filled in.

:func:`version_files` works them out in memory. ``live`` writes them with
:func:`write_version_dir` into a directory searched before the overlays (``.liveforge/generated``,
:data:`GENERATED_DIR`) and records the stamp in ``proto/buildstamp`` (:func:`record_stamp`); the
read-only verbs read that stamp back (:func:`last_stamp`) and write the files into a private
temporary directory instead.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

from liveforge.build.buildstamp import buildstamp_now
from liveforge.build.image.assemble import SearchPath
from liveforge.build.image.layout import VERSION
from liveforge.util.errors import InputError, InputErrors
from liveforge.util.fileio import read_text, write_atomic
from liveforge.util.toml import Lines

#: the directory under the workspace's ``.liveforge/`` where ``live`` writes the version files
GENERATED_DIR = "generated"
#: the file in the proto area recording the buildstamp of the last assembly
BUILDSTAMP_FILE = "buildstamp"


def version_files(stamp: str, *, name: str, dirname: str, templates: Iterable[str],
                  search: list[Path], toml_path: Path) -> dict[str, str]:
    """The version files of a build, image path -> text: the buildstamp, and each template
    found in ``search`` with ``@NAME@`` (``name``), ``@STAMP@`` and ``@PLATFORM@`` (``dirname``,
    the platform directory's name) filled in. A template no directory holds is left out; one
    that cannot be used is an error naming its line in ``toml_path``."""
    values = {"@NAME@": name, "@STAMP@": stamp, "@PLATFORM@": dirname}
    finder = SearchPath(search)
    files = {VERSION: stamp + "\n"}
    errors: list[InputError] = []
    for template in templates:
        found = finder.find(template)
        if isinstance(found, str):
            line = Lines(toml_path).value("platform", "templates", template)
            errors.append(InputError(f"template {template!r}: {found}", toml_path, line))
            continue
        if found is None:
            continue
        text = read_text(found[0])
        for mark, value in values.items():
            text = text.replace(mark, value)
        files[template] = text
    if errors:
        raise InputErrors(errors)
    return files


def write_version_dir(files: dict[str, str], directory: Path) -> Path:
    """Write ``files`` (image path -> text) under ``directory`` and remove any other file there
    (a template no longer listed or no longer found); returns ``directory``."""
    for path, text in files.items():
        out = directory / path
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, text)
    _remove_others(directory, set(files))
    return directory


def _remove_others(top: Path, keep: set[str]) -> None:
    """Remove every file under ``top`` but those in ``keep``, then the emptied directories."""
    for dirpath, _dirs, files in os.walk(top, topdown=False):
        relative = os.path.relpath(dirpath, top)
        for name in files:
            if posixpath.normpath(posixpath.join(relative, name)) not in keep:
                os.unlink(os.path.join(dirpath, name))
        if dirpath != str(top) and not os.listdir(dirpath):
            os.rmdir(dirpath)


def record_stamp(proto: Path, stamp: str) -> None:
    """Record ``stamp`` as the buildstamp of the last assembly, in ``proto/buildstamp``."""
    proto.mkdir(parents=True, exist_ok=True)
    write_atomic(proto / BUILDSTAMP_FILE, stamp + "\n")


def last_stamp(proto: Path) -> str:
    """The buildstamp of the last assembly (``proto/buildstamp``), else a new one."""
    try:
        return (proto / BUILDSTAMP_FILE).read_text().strip()
    except OSError:
        return buildstamp_now()
