"""imgadm publish -m MANIFEST -f FILE URL: put an image on an IMGAPI server (``imgapi``).

The file is checked against the manifest's ``files[0]`` (size, SHA-1) first; then the three
requests of IMGAPI's publishing: ``POST /images`` (the manifest without ``files`` and
``state``: created unactivated), ``PUT /images/:uuid/file?sha1=&size=&compression=`` (the
server checks them too), ``POST /images/:uuid?action=activate``. The server's bearer token is
read from the environment variable ``IMGAPI_TOKEN``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from liveforge.img.config import check_url
from liveforge.img.errors import ImgadmError
from liveforge.img.store import ImageStore
from liveforge.img.verbs.base import Context
from liveforge.img.verbs.install import read_manifest

SUMMARY = "publish an image (manifest and file) to an IMGAPI server"
TOKEN_VARIABLE = "IMGAPI_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", dest="manifest", required=True, metavar="MANIFEST")
    parser.add_argument("-f", dest="file", required=True, metavar="FILE")
    parser.add_argument("url", metavar="URL")


def run(ctx: Context) -> int:
    from liveforge.img.client import Client

    args = ctx.args
    url = check_url(args.url)
    manifest = read_manifest(Path(args.manifest))
    file = Path(args.file)
    ImageStore.check_file(manifest, file)
    expected = manifest.file
    assert expected is not None  # check_file requires files
    size, sha1 = expected.size, expected.sha1
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise ImgadmError("Usage", f"publishing needs the server's token in ${TOKEN_VARIABLE}")
    auth = {"Authorization": f"Bearer {token}"}
    body = {k: v for k, v in manifest.data.items() if k not in ("files", "state")}
    uuid = manifest.uuid
    with Client(url, attempts=1) as client:
        client.json(client.request("POST", "/images", json=body, headers=auth))
        ctx.say(f"Created image {uuid} ({manifest.label}) on \"{url}\"")
        with open(file, "rb") as handle:
            client.json(client.request(
                "PUT", f"/images/{uuid}/file", content=handle, headers=auth,
                params={"sha1": sha1, "size": str(size), "compression": expected.compression}))
        from liveforge.img.verbs.import_ import mib

        ctx.say(f"Uploaded the file of image {uuid} ({mib(size)})")
        client.json(client.request("POST", f"/images/{uuid}", params={"action": "activate"},
                                   headers=auth))
    ctx.say(f"Published image {uuid} ({manifest.label})")
    return 0
