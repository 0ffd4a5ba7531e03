"""A real nginx on loopback, from a generated configuration: the shared build cache's reference
server (WebDAV PUT, GET and HEAD; basic auth on writes), with room for faults."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

USER = "builder"
PASSWORD = "s3cret"

CONFIG = """\
{user}
worker_processes 1;
daemon off;
pid {state}/nginx.pid;
error_log {state}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {state}/access.log;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        client_max_body_size 0;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            limit_except GET HEAD {{
                auth_basic "liveforge build cache";
                auth_basic_user_file {state}/htpasswd;
            }}
        }}
{extra}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx serving (and storing into) ``root``; ``extra``: more ``server`` lines, e.g. a
    ``location /cas/ {...}`` that fails. :meth:`start` and :meth:`stop` (SIGKILL with
    ``kill``) may be called again: the store stays."""

    def __init__(self, state: Path, root: Path):
        self.state = state
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        state.mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True, exist_ok=True)
        hashed = subprocess.run(["openssl", "passwd", "-apr1", PASSWORD], check=True,
                                capture_output=True, text=True).stdout.strip()
        (state / "htpasswd").write_text(f"{USER}:{hashed}\n")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra: str = "") -> Nginx:
        self.stop()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.state / "nginx.conf"
        conf.write_text(CONFIG.format(user=user, state=self.state, port=self.port,
                                      root=self.root, extra=extra))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(self.state)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                assert self.proc.stderr is not None
                raise RuntimeError(f"nginx did not start: {self.proc.stderr.read().decode()}")
            try:
                urllib.request.urlopen(f"{self.url}/", timeout=1).close()
            except urllib.error.HTTPError:
                return self  # it answers (403 or 404 for the folder)
            except OSError:
                time.sleep(0.05)
                continue
            return self
        raise RuntimeError("nginx did not answer within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # the master and its worker
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the master and its worker at once, as a crash would."""
        self.stop(signal.SIGKILL)

    def entries(self, kind: str) -> dict[str, bytes]:
        """The stored ``ac`` or ``cas`` files: name -> content."""
        folder = self.root / kind
        if not folder.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
