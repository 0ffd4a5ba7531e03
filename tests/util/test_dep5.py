"""Debian machine-readable copyright files as SPDX expressions."""

from __future__ import annotations

from liveforge.util.dep5 import copyright_licence, expression, paragraphs

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Else
License: LGPL-2.1 or BSD-3-clause

Files: debian/*
License: GPL-2+

Files: odd/*
License: Odd-Licence+
 With a first line of text here.

License: Odd-Licence+
 The whole text of the odd licence.
 .
 Second paragraph.
"""


def test_a_machine_readable_file_gives_the_conjunction_of_its_licences() -> None:
    found = copyright_licence(DEP5)
    assert found is not None
    assert found.expression == ("GPL-2.0-or-later AND (LGPL-2.1-only OR BSD-3-Clause) AND "
                                "LicenseRef-Odd-Licence-plus")
    assert found.refs == (("LicenseRef-Odd-Licence-plus",
                           "The whole text of the odd licence.\n.\nSecond paragraph."),)


def test_a_free_form_file_gives_nothing() -> None:
    assert copyright_licence("This package was debianized by someone.\n\nLicense: GPL\n") \
        is None
    assert copyright_licence("") is None
    # machine-readable, but no Files paragraph names a licence
    assert copyright_licence("Format: https://www.debian.org/doc/packaging-manuals/"
                             "copyright-format/1.0/\n\nFiles: *\nCopyright: x\n") is None


def test_debian_names_become_spdx_ids() -> None:
    assert expression("Expat") == "MIT"
    assert expression("GPL-2") == "GPL-2.0-only"
    assert expression("GPL-2+ or Artistic") == "GPL-2.0-or-later OR Artistic-1.0"
    assert expression("Zlib") == "Zlib"
    assert expression("public-domain") == "LicenseRef-public-domain"
    assert expression("BSD-2-clause, MIT") == "BSD-2-Clause AND MIT"
    # a name with characters an SPDX id cannot hold is made into a valid LicenseRef
    assert expression("GPL-2+ with OpenSSL exception") == \
        "LicenseRef-GPL-2-plus-with-OpenSSL-exception"


def test_paragraphs_keep_continuation_lines() -> None:
    paras = paragraphs("A: 1\n b\n\n\nC: 2\n")
    assert paras == [{"a": "1\nb"}, {"c": "2"}]
