"""Image manifest v2 validation: every bad field is listed, a good manifest passes."""

from __future__ import annotations

import pytest

from liveforge.img.errors import ManifestValidation
from liveforge.img.manifest import validate

GOOD = {
    "v": 2, "uuid": "6f1a8a3e-5c2b-4d7e-9f10-1234567890ab", "name": "base", "version": "1.0",
    "type": "zone-dataset", "os": "linux", "published_at": "2026-12-01T10:00:00.123Z",
    "files": [{"sha1": "a" * 40, "size": 10, "compression": "gzip"}],
}


def test_a_good_manifest_gives_its_typed_view() -> None:
    m = validate(GOOD)
    assert (m.uuid, m.label, m.type, m.origin, m.state) == (
        GOOD["uuid"], "base@1.0", "zone-dataset", None, "active")
    assert m.file is not None and (m.file.size, m.file.compression) == (10, "gzip")


def test_every_bad_field_is_listed_in_one_error() -> None:
    bad = dict(GOOD, v=1, uuid="nope", type="floppy", origin="x", published_at="yesterday",
               files=[{"sha1": "z", "size": -1, "compression": "lz4"}])
    del bad["os"]
    with pytest.raises(ManifestValidation) as caught:
        validate(bad, "m.json")
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["os", "v", "uuid", "published_at", "type", "origin", "files", "files",
                      "files"]
    assert str(caught.value).startswith("m.json: invalid manifest: os (is required), v (must be 2)")
    assert caught.value.code == "ManifestValidation" and caught.value.exit_code == 1


def test_a_zvol_needs_its_image_size_and_files_need_exactly_one() -> None:
    with pytest.raises(ManifestValidation) as caught:
        validate(dict(GOOD, type="zvol", files=[]))
    assert caught.value.problems == [("files", "must hold exactly one file"),
                                     ("image_size", "is required for a zvol image")]


def test_wrong_types_are_named_and_a_non_object_is_refused() -> None:
    with pytest.raises(ManifestValidation) as caught:
        validate(dict(GOOD, v="2", public="yes", requirements={"min_ram": "lots"}))
    assert caught.value.problems == [("v", "must be a whole number"),
                                     ("public", "must be true or false"),
                                     ("requirements.min_ram", "must be a whole number")]
    with pytest.raises(ManifestValidation):
        validate([1, 2])
