"""Helpers for the extra/deb/sources tests: generated sources and extra workspaces, a loopback
HTTP server, and whether the Debian archive is reachable."""

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


EXTRA_MANIFEST = """\
d usr 0755 root sys
f usr/lib/libdemo.so.1 0755 root bin   # $LIBDEMO_VERSION
f usr/share/demo-${LIBDEMO_VERSION}.txt 0644 root bin
f usr/bin/$UNKNOWN 0555 root bin
"""


def extra_workspace(root: Path, www: tuple[Path, str], lib_extra: str = "", app: bool = True,
                    lib_sha: str | None = None) -> Path:
    """A workspace of one extra component: libdemo (patched, 32 and 64 bits, strapped), and
    app on top of it unless not ``app``; ``www`` is the ``www`` fixture serving their sources."""
    files, url = www
    root.mkdir(parents=True)
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.extra]\nkind = "extra"\n'
        'path = "projects/extra"\n')
    comp = root / "projects" / "extra"
    lib = comp / "libdemo"
    (lib / "Patches").mkdir(parents=True)
    (lib / "package.toml").write_text(package_toml(
        "libdemo", "1.0", f"{url}/libdemo-1.0.tar.gz",
        lib_sha or file_sha256(files / "libdemo-1.0.tar.gz"),
        'variants = ["32", "64"]\nstrap = true\nstrap_variants = ["64"]\n' + lib_extra))
    (lib / "Patches" / "0001-version-suffix.patch").write_text(LIB_PATCH)
    if app:
        ap = comp / "app"
        (ap / "Patches").mkdir(parents=True)
        (ap / "package.toml").write_text(package_toml(
            "app", "2.0", f"{url}/app-2.0.tar.gz", file_sha256(files / "app-2.0.tar.gz"),
            'build = "make"\ndepends = ["libdemo"]\nvariants = ["64"]\n'))
        (ap / "Patches" / "0001-greeting.patch").write_text(APP_PATCH)
    (comp / "manifest").write_text(EXTRA_MANIFEST)
    return root


def extra_state(root: Path) -> Path:
    """The extra kind's state directory of the component ``extra``."""
    return root / ".liveforge" / "extra" / "extra"


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


def debian_reachable() -> str | None:
    """None if the Debian archive answers, else why it does not (a reason to skip)."""
    import urllib.request
    try:
        urllib.request.urlopen("http://deb.debian.org/debian/", timeout=5).close()
    except OSError as exc:
        return f"the Debian archive is not reachable: {exc}"
    return None
