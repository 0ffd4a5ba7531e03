"""``imgapi``: an IMGAPI-compatible image server for a directory of images.

A plain ASGI application (``app``) on uvicorn. The modules: ``images`` (the directory on disk),
``query`` (``GET /images`` filters, sort and paging), ``faults`` (the fault-injecting mode the
tests drive), ``app`` (the routes, the HTTP details: Range, Content-MD5, bearer tokens, error
bodies) and ``cli`` (the ``imgapi`` command).

Why no web framework: the server has seven routes, and what matters is byte-exact control of
the file responses (ranges, a connection dropped or stalled on purpose in the fault mode);
a framework would add a dependency and a layer to reach around for exactly those."""
