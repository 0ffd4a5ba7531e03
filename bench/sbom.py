"""SBOM views of a big platform: writing the SPDX document, converting it to CycloneDX, and
reading the CycloneDX view back once it is kept (what ``report`` and ``sbom --format
cyclonedx`` do after the first time).

A platform of N shipped files in 20 components (synthetic, written by liveforge's own SPDX
writer) is made in a temporary directory. Prints each time and the ratio of a kept view's read
to a conversion (the conversion is cyclonedx-python-lib's model, and grows faster than N).

    python bench/sbom.py [--files 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from liveforge.build.insight.bom import Bom, Component, ShippedFile
from liveforge.build.insight.sbom import SPDX_FILE, cyclonedx_of, spdx_json
from liveforge.build.kinds.base.origin import Origin


def synthetic(files: int) -> Bom:
    components = tuple(Component(f"c{i:02d}", "make", (Origin(f"c{i:02d}", "1.0", "MIT"),))
                       for i in range(20))
    shipped = tuple(ShippedFile(f"usr/lib/c{j % 20:02d}/f{j:06d}", f"c{j % 20:02d}",
                                hashlib.sha1(b"%d" % j).hexdigest(),
                                hashlib.sha256(b"%d" % j).hexdigest()) for j in range(files))
    return Bom("bench", "20260101T000000Z", components, tuple(sorted(shipped,
                                                                       key=lambda f: f.path)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        platform = Path(tmp)
        start = time.perf_counter()
        (platform / SPDX_FILE).write_text(spdx_json(synthetic(args.files)))
        spdx = time.perf_counter() - start
        start = time.perf_counter()
        cyclonedx_of(platform, keep=True)
        converted = time.perf_counter() - start
        start = time.perf_counter()
        cyclonedx_of(platform, keep=True)
        kept = time.perf_counter() - start
    print(f"files: {args.files} in 20 components")
    print(f"SPDX document written:       {spdx:.2f} s")
    print(f"CycloneDX converted (first): {converted:.2f} s")
    print(f"CycloneDX kept (later runs): {kept:.3f} s")
    print(f"ratio kept/converted:        {kept / converted:.4f}")


if __name__ == "__main__":
    main()
