"""Debian's machine-readable copyright files (DEP-5) as SPDX license expressions.

A package's ``usr/share/doc/<package>/copyright`` is machine-readable when its first paragraph
has a ``Format:`` field naming the copyright format. Each ``Files:`` paragraph then has a
``License:`` field whose first line is a short name or an expression of them (``GPL-2+ or
BSD-2-clause``). The package's licence is the conjunction (AND) of every distinct one, each
short name translated to its SPDX id where Debian's name differs from SPDX's, and any other
name kept as ``LicenseRef-<name>`` with the text of its stand-alone ``License:`` paragraph
(or the text given in a ``Files:`` paragraph).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# Debian short names whose SPDX id is different (the others are the same: MIT, Zlib, ISC...)
DEBIAN_NAMES = {
    "GPL-1": "GPL-1.0-only", "GPL-1+": "GPL-1.0-or-later",
    "GPL-2": "GPL-2.0-only", "GPL-2+": "GPL-2.0-or-later",
    "GPL-3": "GPL-3.0-only", "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2": "LGPL-2.0-only", "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only", "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3": "LGPL-3.0-only", "LGPL-3+": "LGPL-3.0-or-later",
    "AGPL-3": "AGPL-3.0-only", "AGPL-3+": "AGPL-3.0-or-later",
    "BSD-2-clause": "BSD-2-Clause", "BSD-3-clause": "BSD-3-Clause",
    "BSD-4-clause": "BSD-4-Clause", "Expat": "MIT", "Apache-2": "Apache-2.0",
    "MPL-1.1": "MPL-1.1", "MPL-2": "MPL-2.0", "CC0": "CC0-1.0", "Artistic": "Artistic-1.0",
    "zlib": "Zlib", "public-domain": "LicenseRef-public-domain",
}
FORMAT_RE = re.compile(r"copyright-format|dep5", re.I)
_OPERATOR = {"or": "OR", "and": "AND", ",": "AND"}


@dataclass(frozen=True, slots=True)
class Licence:
    """A copyright file's licence: an SPDX expression, and the text of each LicenseRef in it."""

    expression: str
    refs: tuple[tuple[str, str], ...] = ()


def paragraphs(text: str) -> list[dict[str, str]]:
    """The deb822 paragraphs of ``text``: field name (lower case) -> value, continuation lines
    joined with newlines."""
    result: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                result.append(current)
            current, key = {}, ""
        elif line[0] in " \t":
            if key:
                current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        result.append(current)
    return result


def spdx_id(name: str) -> str:
    """The SPDX id of a Debian short licence name (a LicenseRef when it has none)."""
    if name in DEBIAN_NAMES:
        return DEBIAN_NAMES[name]
    if re.fullmatch(r"[A-Za-z0-9.-]+", name) and not name.lower().startswith("licenseref"):
        return name if known_id(name) else f"LicenseRef-{name}"
    return "LicenseRef-" + re.sub(r"[^A-Za-z0-9.-]", lambda m: "-plus" if m.group() == "+"
                                  else "-", name)


def known_id(name: str) -> bool:
    """Whether ``name`` is on the SPDX licence list (or its exceptions)."""
    return name.lower() in _known_ids()


@cache
def _known_ids() -> frozenset[str]:
    from license_expression import get_spdx_licensing

    return frozenset(str(key).lower() for key in get_spdx_licensing().known_symbols)


def expression(short: str) -> str:
    """A ``License:`` field's first line (``GPL-2+ or BSD-2-clause``) as an SPDX expression."""
    words = re.split(r"\s+(or|and)\s+|\s*(,)\s*", short.strip(), flags=re.I)
    terms: list[str] = []
    for index, word in enumerate(words):
        if word is None or not word:
            continue
        if index % 3 == 0:
            terms.append(spdx_id(word))
        else:
            terms.append(_OPERATOR[word.lower()])
    return " ".join(terms)


def copyright_licence(text: str) -> Licence | None:
    """The licence a machine-readable copyright file gives its package, or None when the file
    is not machine-readable (or names no licence)."""
    paras = paragraphs(text)
    if not paras or not FORMAT_RE.search(paras[0].get("format", "")):
        return None
    names: dict[str, None] = {}
    texts: dict[str, str] = {}
    for para in paras[1:]:
        value = para.get("license", "")
        short, _, body = value.partition("\n")
        if not short.strip():
            continue
        if "files" in para:
            names.setdefault(expression(short), None)
            if body.strip():  # the text given with the files, when no stand-alone one
                texts.setdefault(spdx_id(short.strip()), body)
        elif body.strip():
            texts[spdx_id(short.strip())] = body
    if not names:
        return None
    parts = [f"({n})" if " " in n and len(names) > 1 else n for n in names]
    combined = " AND ".join(parts)
    refs = sorted({ref for ref in re.findall(r"LicenseRef-[A-Za-z0-9.-]+", combined)})
    return Licence(combined, tuple((ref, texts.get(ref, f"{ref[11:]} (see the package's "
                                                        "copyright file)")) for ref in refs))
