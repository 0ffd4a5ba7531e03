"""Helpers for the extra/deb/sources tests: a loopback HTTP server and generated sources."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import file_sha256

CONFIGURE = """\
#!/bin/sh
# a hand-written autotools-style configure
prefix=/usr/local
libdir=
for arg; do
  case "$arg" in
    --prefix=*) prefix=${arg#--prefix=} ;;
    --libdir=*) libdir=${arg#--libdir=} ;;
    --enable-fail) echo "configure: deliberate failure" >&2; exit 1 ;;
    *) echo "configure: unknown option $arg" >&2; exit 1 ;;
  esac
done
[ -n "$libdir" ] || libdir=$prefix/lib
cat > config.mk <<EOF
PREFIX=$prefix
LIBDIR=$libdir
CC=${CC:-cc}
CFLAGS=$CFLAGS $CPPFLAGS
LDFLAGS=$LDFLAGS
EOF
echo "configured for $prefix ($libdir) with $CC $CFLAGS"
"""

LIB_MAKEFILE = """\
include config.mk
all: libdemo.so demo
libdemo.so: demo.c demo.h
\t@test -z "$(FAIL)" || { echo "make: deliberate failure"; exit 1; }
\t$(CC) $(CFLAGS) -fPIC -shared -Wl,-soname,libdemo.so.1 -o $@ demo.c
demo: main.c libdemo.so
\t$(CC) $(CFLAGS) -o $@ main.c -L. -ldemo $(LDFLAGS)
install: all
\tmkdir -p $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PREFIX)/bin
\tcp demo.h $(DESTDIR)$(PREFIX)/include/
\tcp libdemo.so $(DESTDIR)$(LIBDIR)/libdemo.so.1
\tln -sf libdemo.so.1 $(DESTDIR)$(LIBDIR)/libdemo.so
\tcp demo $(DESTDIR)$(PREFIX)/bin/demo
"""

APP_MAKEFILE = """\
all: app
app: app.c
\t$(CC) $(CFLAGS) $(CPPFLAGS) -o $@ app.c $(LDFLAGS) -ldemo
install: app
\tmkdir -p $(DESTDIR)$(PREFIX)/bin
\tcp app $(DESTDIR)$(PREFIX)/bin/app
"""


def add_file(tar: tarfile.TarFile, name: str, data: str | bytes, mode: int = 0o644) -> None:
    raw = data.encode() if isinstance(data, str) else data
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    info.mode = mode
    info.mtime = 1700000000
    tar.addfile(info, io.BytesIO(raw))


def tarball(path: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> str:
    """Write a .tar.gz of ``files`` (name -> text); return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            add_file(tar, name, text, 0o755 if name in executable else 0o644)
    return file_sha256(path)


def libdemo_tarball(path: Path, version: str = "1.0") -> str:
    top = f"libdemo-{version}"
    return tarball(path, {
        f"{top}/configure": CONFIGURE,
        f"{top}/Makefile": LIB_MAKEFILE,
        f"{top}/demo.h": f'#define DEMO_VERSION "{version}"\nconst char *demo_version(void);\n',
        f"{top}/demo.c": '#include "demo.h"\nconst char *demo_version(void) '
                         "{ return DEMO_VERSION; }\n",
        f"{top}/main.c": '#include <stdio.h>\n#include "demo.h"\n'
                         'int main(void) { puts(demo_version()); return 0; }\n',
    }, executable=(f"{top}/configure",))


def app_tarball(path: Path) -> str:
    return tarball(path, {
        "app-2.0/Makefile": APP_MAKEFILE,
        "app-2.0/app.c": '#include <stdio.h>\n#include <demo.h>\n'
                         'int main(void) { printf("app %s\\n", demo_version()); return 0; }\n',
    })


LIB_PATCH = """\
--- a/demo.h
+++ b/demo.h
@@ -1,2 +1,2 @@
-#define DEMO_VERSION "1.0"
+#define DEMO_VERSION "1.0-liveforge"
 const char *demo_version(void);
"""

APP_PATCH = """\
--- a/app.c
+++ b/app.c
@@ -1,3 +1,3 @@
 #include <stdio.h>
 #include <demo.h>
-int main(void) { printf("app %s\\n", demo_version()); return 0; }
+int main(void) { printf("patched app %s\\n", demo_version()); return 0; }
"""


def package_toml(name: str, version: str, url: str, sha: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        name = "{name}"
        version = "{version}"
        {extra}

        [source]
        url = "{url}"
        sha256 = "{sha}"
        """)


def elf_class(path: Path) -> int:
    """32 or 64, from the ELF header."""
    head = path.read_bytes()[:5]
    assert head[:4] == b"\x7fELF", f"{path} is not ELF"
    return {1: 32, 2: 64}[head[4]]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def http_server(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
