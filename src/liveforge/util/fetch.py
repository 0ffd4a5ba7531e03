"""Fetch, verify and cache inputs: upstream URLs, Debian source and binary packages.

Cache layout (under the workspace's cache directory)::

    sources/<sha256>/<file>        verified upstream tarballs and Debian orig tarballs
    debs/<file>.deb                verified Debian binary packages
    apt/<key>/                     a private apt configuration: sources list, lists, status

Every download is written as ``<file>.partial`` (or into a ``.partial`` folder for apt) and
renamed only after its sha256 matched; a mismatch deletes the download and raises
:class:`FetchError` naming the file and both hashes. A cached file is verified on every use,
so a warm cache needs no network at all; ``offline`` turns any attempt to fetch into an error.

apt never reads or writes the host's sources, lists or dpkg status: it runs with
``Dir::Etc::SourceList`` pointing at a private deb822 file, ``Dir::Etc::SourceParts=/dev/null``,
and private ``Dir::State::Lists``, ``Dir::State::status`` and ``Dir::Cache``. The archive is the
``DEBIAN_MIRROR`` configure-build key (with ``DEBIAN_SUITES``, ``DEBIAN_COMPONENTS``,
``DEBIAN_KEYRING``; ``DEBIAN_TRUSTED=yes`` for an unsigned local repository, ``DEBIAN_SUITES=./``
for a flat one) or, by default, the Debian entries of the host's own apt sources.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from liveforge.util.errors import FetchError
from liveforge.util.hashing import file_digest, sha256
from liveforge.util.paths import path_problem

Note = Callable[[str], None]
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
DEB_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")  # Debian policy 5.6.1, 5.6.7
DEB_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+~:-]*\Z")  # 5.6.12


def plain_file_name(name: str) -> bool:
    """Whether ``name`` is one path component: no ``/``, not ``.`` or ``..``, no NUL."""
    return "/" not in name and path_problem(name) is None


def verify(path: Path, expected: str, what: str | None = None) -> None:
    """Check ``path`` against its sha256; on a mismatch delete it and raise FetchError."""
    actual = file_digest(path)
    if actual != expected.lower():
        path.unlink(missing_ok=True)
        raise FetchError(f"checksum mismatch for {what or path.name}: expected sha256 "
                         f"{expected.lower()}, got {actual} (the bad download {path} was deleted)")


def _no_network(what: str) -> FetchError:
    return FetchError(f"{what} is not in the cache and fetching is disabled (offline)")


# -- what can be fetched --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UrlSource:
    """An upstream file with its pinned sha256."""

    url: str
    sha256: str
    filename: str = ""

    @property
    def name(self) -> str:
        return self.filename or Path(urllib.parse.urlparse(self.url).path).name or "download"

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class DebianSource:
    """A file of a Debian source package (by default its orig tarball), sha256 pinned."""

    package: str
    version: str
    sha256: str
    filename: str = ""

    @property
    def name(self) -> str:
        return self.filename or f"{self.package}_{self.version}.orig"

    def describe(self) -> str:
        return f"Debian source {self.package}={self.version}"


Source = UrlSource | DebianSource


@dataclass(frozen=True, slots=True)
class DebPin:
    """One exactly resolved Debian binary package, as recorded in platform.lock."""

    name: str
    version: str
    arch: str
    filename: str           # path in the archive's pool
    size: int
    sha256: str

    @property
    def basename(self) -> str:
        return Path(self.filename).name

    def describe(self) -> str:
        return f"{self.name}={self.version}"


# -- the private apt configuration ----------------------------------------------------------
def host_debian_entries(etc: Path = Path("/etc/apt")) -> list[dict[str, str]]:
    """Debian archive entries of the host's apt sources, as deb822 fields (binary entries
    only; the private list adds deb-src itself). Third-party repositories are skipped."""
    entries: list[dict[str, str]] = []
    files = [etc / "sources.list"] if (etc / "sources.list").is_file() else []
    parts = etc / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                key = ""
                for line in stanza.splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    if line[0] in " \t" and key:
                        fields[key] += " " + line.strip()
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip()] = value.strip()
                if "deb" in fields.get("Types", "").split() \
                        and fields.get("Enabled", "yes").lower() != "no":
                    entries.append(fields)
        else:
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                m = re.match(r"deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)", line)
                if m:
                    entry = {"Types": "deb", "URIs": m.group(2), "Suites": m.group(3),
                             "Components": m.group(4) or "main"}
                    signed = re.search(r"signed-by=(\S+)", m.group(1) or "")
                    if signed:
                        entry["Signed-By"] = signed.group(1).rstrip("]")
                    entries.append(entry)
    return [e for e in entries if "debian" in e.get("URIs", "")
            and "debian-archive-keyring" in e.get("Signed-By", DEFAULT_KEYRING)]


def private_sources(config: Mapping[str, str], etc: Path = Path("/etc/apt")) -> str:
    """The deb822 text of the private sources list (deb and deb-src)."""
    mirror = config.get("DEBIAN_MIRROR", "")
    if mirror:
        codename = _codename()
        entries = [{"URIs": mirror,
                    "Suites": config.get("DEBIAN_SUITES", f"{codename} {codename}-updates"),
                    "Components": config.get("DEBIAN_COMPONENTS", "main"),
                    "Signed-By": config.get("DEBIAN_KEYRING", DEFAULT_KEYRING)}]
        if config.get("DEBIAN_TRUSTED", "").lower() == "yes":  # a local unsigned repository
            entries[0]["Trusted"] = "yes"
            del entries[0]["Signed-By"]
    else:
        entries = host_debian_entries(etc)
        if not entries:
            raise FetchError("no Debian archive in the host's apt sources: set DEBIAN_MIRROR "
                             "(and DEBIAN_SUITES) in configure-build")
    stanzas = []
    for entry in entries:
        lines = ["Types: deb deb-src", f"URIs: {entry['URIs']}", f"Suites: {entry['Suites']}"]
        if not entry["Suites"].endswith("/"):  # a flat repository ("./") has no components
            lines.append(f"Components: {entry.get('Components', 'main')}")
        for key in ("Signed-By", "Trusted"):
            if entry.get(key):
                lines.append(f"{key}: {entry[key]}")
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


def _codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "bookworm"
    m = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return m.group(1) if m else "bookworm"


_URI_RE = re.compile(r"^'([^']+)' (\S+) (\d+) (\S+)$")


class AptArchive:
    """apt-get and apt-cache over a private configuration under ``cache/apt/<key>/``."""

    def __init__(self, cache_dir: Path, config: Mapping[str, str], offline: bool = False,
                 note: Note | None = None):
        text = private_sources(config)
        key = sha256(text.encode()).hexdigest()[:16]
        self.root = cache_dir / "apt" / key
        self.offline = offline
        self.note = note or (lambda _msg: None)
        self.updated = False
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        sources = self.root / "private.sources"
        if not sources.is_file() or sources.read_text() != text:
            sources.write_text(text)
        (self.root / "status").touch()

    def options(self) -> list[str]:
        opts = {
            "Dir::Etc::SourceList": self.root / "private.sources",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::State::Lists": self.root / "lists",
            "Dir::State::status": self.root / "status",
            "Dir::Cache": self.root / "cache",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": "/dev/null",
            "APT::Get::List-Cleanup": "false",
        }
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"
        return [a for k, v in opts.items() for a in ("-o", f"{k}={v}")]

    @contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def run(self, tool: str, *args: str, cwd: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        try:
            proc = subprocess.run([tool, "-q", *self.options(), *args], cwd=cwd, env=env,
                                  capture_output=True, text=True, check=False)
        except OSError as exc:
            raise FetchError(f"cannot run {tool}: {exc.strerror} (apt-get install apt)") from None
        if check and proc.returncode != 0:
            raise FetchError(f"{tool} {' '.join(args)} failed: "
                             f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc

    def have_lists(self) -> bool:
        return any(p.name.endswith(("Packages", "Packages.lz4", "Sources", "Sources.lz4",
                                    "Packages.xz", "Sources.xz", "Packages.gz", "Sources.gz"))
                   for p in (self.root / "lists").iterdir())

    def update(self) -> None:
        """Download the archive indexes into the private lists (once per object)."""
        if self.offline:
            raise FetchError("the Debian archive indexes are needed but fetching is disabled "
                             "(offline)")
        if self.updated:
            return
        self.note(f"apt-get update (private lists in {self.root})")
        with self.locked():
            self.run("apt-get", "update")
        self.updated = True

    def ensure_lists(self) -> None:
        if not self.have_lists():
            self.update()

    def _retry(self, query: Callable[[], list[str] | None]) -> list[str] | None:
        """Run a query against the lists, updating them once if it finds nothing."""
        self.ensure_lists()
        found = query()
        if found is None and not self.updated and not self.offline:
            self.update()
            found = query()
        return found

    def _uris(self, *args: str) -> list[str] | None:
        proc = self.run("apt-get", *args, "--print-uris", check=False)
        if proc.returncode != 0:
            return None
        return [line for line in proc.stdout.splitlines() if line.startswith("'")]

    def candidate(self, name: str) -> tuple[str, dict[str, str]] | None:
        """The candidate version of a binary package and its index fields."""
        proc = self.run("apt-cache", "policy", name, check=False)
        m = re.search(r"^\s*Candidate:\s*(\S+)", proc.stdout, re.M)
        if not m or m.group(1) == "(none)":
            return None
        version = m.group(1)
        show = self.run("apt-cache", "show", f"{name}={version}", check=False)
        fields: dict[str, str] = {}
        key = ""
        for line in show.stdout.split("\n\n", 1)[0].splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return version, fields

    def resolve(self, name: str) -> tuple[DebPin, str | None]:
        """Resolve a package name to an exact pin; a metapackage (``role::metapackage`` tag,
        section ``metapackages`` or "meta-package" in its description) depending on exactly one
        package resolves to that package.
        Returns the pin and the metapackage's name when one was followed."""
        self.ensure_lists()
        found = self.candidate(name)
        if found is None and not self.updated and not self.offline:
            self.update()
            found = self.candidate(name)
        if found is None:
            raise FetchError(f"Debian package {name!r} is not in the archive "
                             f"({self.root / 'private.sources'})")
        version, fields = found
        via: str | None = None
        depends = [d.strip() for d in fields.get("Depends", "").split(",") if d.strip()]
        meta = "role::metapackage" in fields.get("Tag", "") or \
            fields.get("Section", "").endswith("metapackages") or \
            re.search(r"\bmeta-?package\b", fields.get("Description", ""), re.I) is not None
        if meta and len(depends) == 1 and "|" not in depends[0]:
            target = depends[0].split()[0].split(":")[0]
            m = re.search(r"\(\s*=\s*([^)\s]+)\s*\)", depends[0])
            inner = self.candidate(target)
            if inner is None:
                raise FetchError(f"metapackage {name!r} depends on {target!r}, which is not in "
                                 "the archive")
            via, name, version = name, target, m.group(1) if m else inner[0]
        return self.pin(name, version), via

    def pin(self, name: str, version: str) -> DebPin:
        """The archive's record of exactly ``name=version`` (FetchError if absent)."""
        lines = self._retry(lambda: self._uris("download", f"{name}={version}"))
        if not lines:
            raise FetchError(f"{name}={version} is not in the Debian archive")
        m = _URI_RE.match(lines[0])
        if not m or not m.group(4).startswith("SHA256:"):
            raise FetchError(f"unexpected apt-get --print-uris output: {lines[0]!r}")
        url = m.group(1)
        pool = url[url.find("/pool/") + 1:] if "/pool/" in url else m.group(2)
        arch = m.group(2).rsplit("_", 1)[-1].removesuffix(".deb")
        return DebPin(name=name, version=version, arch=arch,
                      filename=urllib.parse.unquote(pool), size=int(m.group(3)),
                      sha256=m.group(4).split(":", 1)[1].lower())

    def download_binary(self, pin: DebPin, workdir: Path) -> Path:
        """``apt-get download name=version`` into ``workdir``; the path of the .deb."""
        self.ensure_lists()
        proc = self.run("apt-get", "download", pin.describe(), cwd=workdir, check=False)
        if proc.returncode != 0 and not self.updated and not self.offline:
            self.update()
            proc = self.run("apt-get", "download", pin.describe(), cwd=workdir, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["apt-get download failed"])[-1]
            raise FetchError(
                f"locked version {pin.describe()} is no longer available from the Debian "
                f"archive ({last}); run `liveforge configure --refresh-lock` to lock the "
                "current version")
        debs = list(workdir.glob("*.deb"))
        if len(debs) != 1:
            raise FetchError(f"apt-get download {pin.describe()} left {len(debs)} files")
        return debs[0]

    def download_source(self, src: DebianSource, workdir: Path) -> Path:
        """``apt-get source --download-only`` into ``workdir``; the path of the wanted file."""
        spec = f"{src.package}={src.version}"
        lines = self._retry(lambda: self._uris("source", spec))
        if not lines:
            raise FetchError(f"Debian source package {spec} is not in the archive")
        names = [m.group(2) for m in map(_URI_RE.match, lines) if m]
        wanted = src.filename or next((n for n in names if ".orig.tar." in n), "")
        if wanted not in names:
            raise FetchError(f"Debian source package {spec} has no file {wanted or '*.orig.tar.*'}"
                             f" (files: {', '.join(names)})")
        self.run("apt-get", "source", "--download-only", spec, cwd=workdir)
        return workdir / wanted


# -- the fetcher ----------------------------------------------------------------------------
class Fetcher:
    """Get verified files into the cache (``cache_dir``), from the network only when needed."""

    def __init__(self, cache_dir: Path, *, offline: bool = False,
                 config: Mapping[str, str] | None = None, note: Note | None = None):
        self.cache_dir = cache_dir
        self.offline = offline
        self.config = dict(config or {})
        self.note = note or (lambda _msg: None)
        self._apt: AptArchive | None = None

    @property
    def apt(self) -> AptArchive:
        if self._apt is None:
            self._apt = AptArchive(self.cache_dir, self.config, self.offline, self.note)
        return self._apt

    def cached(self, path: Path, sha256: str, what: str) -> bool:
        """Whether a verified copy is in the cache; a corrupt one is deleted."""
        if not path.is_file():
            return False
        try:
            verify(path, sha256, what)
        except FetchError as exc:
            self.note(f"cached copy is corrupt, fetching again: {exc}")
            return False
        return True

    def fetch(self, source: Source) -> Path:
        """A verified local copy of ``source``."""
        if not SHA256_RE.match(source.sha256.lower()):
            raise FetchError(f"{source.describe()}: sha256 {source.sha256!r} is not 64 hex digits")
        if not plain_file_name(source.name):
            raise FetchError(f"{source.describe()}: {source.name!r} is not a plain file name")
        final = self.cache_dir / "sources" / source.sha256.lower() / source.name
        if isinstance(source, DebianSource) and not source.filename and final.parent.is_dir():
            # the file name is known only after a download: take what the folder holds
            found = [p for p in final.parent.iterdir() if not p.name.startswith(".")]
            final = found[0] if len(found) == 1 else final
        if self.cached(final, source.sha256, source.describe()):
            return final
        if self.offline:
            raise _no_network(source.describe())
        final.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, UrlSource):
            self._download_url(source.url, final, source.sha256)
        else:
            with tempfile.TemporaryDirectory(prefix=".partial.", dir=final.parent) as tmp:
                self.note(f"fetching {source.describe()} with apt")
                got = self.apt.download_source(source, Path(tmp))
                if not source.filename and got.name != final.name:
                    final = final.with_name(got.name)
                verify(got, source.sha256, f"{got.name} of {source.describe()}")
                os.replace(got, final)
        return final

    def _download_url(self, url: str, final: Path, sha256: str) -> None:
        partial = final.with_name(final.name + ".partial")
        self.note(f"fetching {url}")
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "liveforge"})
            with urllib.request.urlopen(request, timeout=60) as response, \
                    open(partial, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            raise FetchError(f"cannot fetch {url}: {reason}") from None
        verify(partial, sha256, f"{final.name} from {url}")
        os.replace(partial, final)

    def fetch_deb(self, pin: DebPin) -> Path:
        """A verified copy of a locked binary package (downloaded with apt when needed)."""
        if not plain_file_name(pin.basename):
            raise FetchError(f"{pin.describe()}: {pin.basename!r} is not a plain file name")
        final = self.cache_dir / "debs" / pin.basename
        if self.cached(final, pin.sha256, pin.basename):
            return final
        if self.offline:
            raise _no_network(f"{pin.describe()} ({pin.basename})")
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".partial.", dir=final.parent) as tmp:
            self.note(f"downloading {pin.describe()} with apt")
            got = self.apt.download_binary(pin, Path(tmp))
            verify(got, pin.sha256, f"{pin.basename} ({pin.describe()})")
            os.replace(got, final)
        return final
