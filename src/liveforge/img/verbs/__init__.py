"""imgadm's verbs: one module per verb, named in :data:`VERBS` (the one registry).

A verb module defines ``SUMMARY`` (one line for ``imgadm -h``), ``add_arguments(parser)`` and
``run(ctx) -> int`` (``ctx``: :class:`liveforge.img.verbs.base.Context`). Every verb module is
imported to build the parser, so its top level imports only what is cheap: a verb that needs
the HTTP client or the server imports it inside ``run``. Adding a verb is its module plus one
line here.
"""

from __future__ import annotations

# verb -> module under liveforge.img.verbs (a verb that is a Python keyword gets a "_")
VERBS = {
    "sources": "sources",
    "list": "list_",
    "get": "get",
    "install": "install",
    "delete": "delete",
    "ancestry": "ancestry",
    "vacuum": "vacuum",
    # the verbs that talk to image sources
    "avail": "avail",
    "show": "show",
    "import": "import_",
    "publish": "publish",
    # an image of a VM
    "create": "create",
}
