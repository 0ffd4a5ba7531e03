"""``imgadm create``: an incremental image of a stopped container VM.

The recipe: ask vmadm for the VM (vmsource.py), hold its lock, check it is a stopped OS-brand
VM whose image is installed here, check its upper layer holds nothing an image cannot carry,
write the upper layer as an image file (layer.write_upper: its whiteouts as ``.wh.`` entries)
and a manifest whose ``origin`` is the VM's image, both under hidden temporary names, then
give the file and, last, the manifest their names (hard links: never over a file another
create made meanwhile). A failure or Ctrl-C at any point leaves
neither; a killed run leaves only temporaries (util/scratch.py), removed by the next create
writing to that directory.

The image file is deterministic: entries sorted, numeric owners as in the VM, mtimes clamped
to ``SOURCE_DATE_EPOCH`` (else the time create started), gzip headers without a time: two
creates of one stopped VM give the same file; their manifests differ in ``uuid`` and
``published_at`` only.
"""

from __future__ import annotations

import json
import os
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liveforge.img import layer, vmsource
from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import FIELD_BY_KEY, Manifest, is_uuid, validate
from liveforge.img.store import ImageStore
from liveforge.util.archive import COMPRESSIONS
from liveforge.util.errors import LiveforgeError
from liveforge.util.fileio import write_atomic
from liveforge.util.scratch import remove_leftovers, tmp_name
from liveforge.util.unpack import WHITEOUT, symlink_leads_out

DEFAULT_COMPRESSION = "none"
# the image file's name: <name>-<version>.tar<suffix>
SUFFIX = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst", "none": ""}
# fields imgadm create sets itself; -m cannot
SET_BY_CREATE = ("v", "uuid", "type", "os", "origin", "files", "published_at", "state")
# overlayfs xattrs of an upper entry that only makes sense with its lower layers at hand
LAYER_BOUND_XATTRS = ("trusted.overlay.metacopy", "trusted.overlay.redirect")


@dataclass(frozen=True, slots=True)
class Created:
    """What create wrote."""

    manifest: Manifest
    manifest_path: Path
    file_path: Path
    vm: vmsource.Vm


def parse_fields(items: Sequence[str]) -> dict[str, Any]:
    """``-m key=value`` arguments as manifest fields: a string field takes the text, another
    (``public=true``, ``tags={"a":"b"}``) its JSON. ``name`` and ``version`` are required."""
    fields: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise ImgadmError("Usage", f"-m {item!r}: expected key=value")
        field = FIELD_BY_KEY.get(key)
        if field is None:
            raise ImgadmError("Usage", f"-m {key}: not a manifest field")
        if key in SET_BY_CREATE:
            raise ImgadmError("Usage", f"-m {key}: imgadm create sets {key} itself")
        if field.type == "str":
            fields[key] = text
            continue
        try:
            fields[key] = json.loads(text)
        except ValueError:
            raise ImgadmError("Usage", f"-m {key}={text}: not a JSON value (the field is "
                              f"{field.type})") from None
    missing = [k for k in ("name", "version") if k not in fields]
    if missing:
        raise ImgadmError("Usage", "imgadm create needs " + " and ".join(
            f"-m {k}=..." for k in missing))
    return fields


def file_names(name: str, version: str, compression: str) -> tuple[str, str]:
    """(the manifest's name, the image file's name) for an image ``name``-``version``."""
    stem = f"{name}-{version}"
    if "/" in stem or stem.startswith(".") or "\0" in stem:
        raise ImgadmError("Usage", f"{stem!r}: name and version make the output files' names "
                          "and must not hold '/' or start with '.'")
    return f"{stem}.json", f"{stem}.tar{SUFFIX[compression]}"


def published_now() -> str:
    """The time now as IMGAPI writes it: UTC with milliseconds and a Z."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def clamp_time() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch:
        if not epoch.isdigit():
            raise ImgadmError("Usage", f"SOURCE_DATE_EPOCH {epoch!r} is not a number of seconds")
        return int(epoch)
    return int(time.time())


def check_vm(vm: vmsource.Vm) -> None:
    """A stopped container VM on an image, or the error saying which it is not."""
    if vm.brand not in vmsource.OS_BRANDS:
        raise ImgadmError("NotSupported", f"VM {vm.uuid} is of brand {vm.brand}: imgadm create "
                          "makes images of OS-brand VMs (joyent, joyent-minimal, lx) only")
    if vm.state != "stopped":
        raise ImgadmError("VmNotStopped", f"VM {vm.uuid} is {vm.state}: stop it first "
                          f"(vmadm stop {vm.uuid})")
    if not vm.image_uuid:
        raise ImgadmError("VmHasNoOrigin", f"VM {vm.uuid} has no image_uuid")
    if not vm.upper.is_dir() or vm.upper.is_symlink():
        raise ImgadmError("VmNotInstalled", f"VM {vm.uuid}: its layer {vm.upper} is missing")


def check_upper(vm: vmsource.Vm) -> None:
    """Refuse what an image cannot carry, naming the path in the VM: a device node or FIFO, a
    name starting ``.wh.`` (an image's whiteout marker), a relative symlink leading out of the
    root (no store would install it), an entry overlayfs bound to its lower layers."""
    try:
        nodes = layer.scan(vm.upper, upper=True)
    except ImgadmError as exc:
        raise ImgadmError("VmUnsafeFile", f"VM {vm.uuid}: {exc.message}") from None
    for path, node in sorted(nodes.items()):
        where = f"VM {vm.uuid}: /{path}"
        if node.path.rpartition("/")[2].startswith(WHITEOUT):
            raise ImgadmError("VmUnsafeFile", f"{where}: a name starting {WHITEOUT!r} cannot go "
                              "into an image (it marks a deletion there)")
        if node.kind == "s" and symlink_leads_out(path, node.target):
            raise ImgadmError("VmUnsafeFile", f"{where}: symlink to {node.target!r} leads out "
                              "of the VM's root")
        for name in LAYER_BOUND_XATTRS:
            try:
                os.getxattr(node.full, name, follow_symlinks=False)
            except OSError:
                continue
            raise ImgadmError("NotSupported", f"{where}: carries {name} (an overlayfs "
                              "metacopy or redirect); mount views without metacopy and "
                              "redirect_dir to make images")


def publish(tmp: Path, final: Path) -> None:
    """Give the finished temporary ``tmp`` its name ``final``, never replacing a file there
    (another create may have made it meanwhile): a hard link, then the temporary goes."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise ImgadmError("Usage", f"{final} exists already") from None
    tmp.unlink()


def output_error(exc: OSError, out_dir: Path) -> ImgadmError:
    """A file system's error while the image is written (a full disk, say), naming the file
    when the error does and the output directory when it does not."""
    where = exc.filename or f"writing the image into {out_dir}"
    return ImgadmError("WriteError", f"{where}: {exc.strerror or exc}")


def build_manifest(fields: Mapping[str, Any], origin: Manifest, file: layer.LayerFile
                   ) -> dict[str, Any]:
    return {"v": 2, "uuid": str(uuidlib.uuid4()), **fields, "type": origin.type,
            "os": origin.os, "origin": origin.uuid, "state": "active",
            "published_at": published_now(), "files": [file.manifest_file()]}


def create(uuid: str, fields: Mapping[str, Any], out_dir: Path,
           compression: str = DEFAULT_COMPRESSION, store: ImageStore | None = None,
           say: Callable[[str], None] = lambda line: None,
           debug: Callable[..., None] = lambda msg, **fields: None) -> Created:
    """Make the image of the stopped VM ``uuid`` in ``out_dir``; ``say`` takes progress lines,
    ``debug`` debug records (a message and fields)."""
    if not is_uuid(uuid):
        raise ImgadmError("Usage", f"{uuid!r} is not a VM UUID")
    if compression not in COMPRESSIONS:
        raise ImgadmError("Usage", f"unknown compression {compression!r} (expected one of "
                          f"{', '.join(COMPRESSIONS)})")
    if not out_dir.is_dir():
        raise ImgadmError("Usage", f"{out_dir}: no such directory")
    validate({"v": 2, "uuid": str(uuidlib.uuid4()), "type": "other", "os": "other", **fields},
             "-m", need_files=False)
    manifest_name, file_name = file_names(fields["name"], fields["version"], compression)
    manifest_path, file_path = out_dir / manifest_name, out_dir / file_name
    for path in (manifest_path, file_path):
        if os.path.lexists(path):
            raise ImgadmError("Usage", f"{path} exists already")
    store = store or ImageStore.from_env()
    found = vmsource.get(uuid)
    with vmsource.locked(found):
        vm = vmsource.get(uuid)  # its state now that nothing changes it
        debug("vm", uuid=vm.uuid, brand=vm.brand, state=vm.state, image_uuid=vm.image_uuid,
              upper=str(vm.upper))
        check_vm(vm)
        assert vm.image_uuid is not None
        origin = store.require(vm.image_uuid, vm.pool).manifest
        check_upper(vm)
        remove_leftovers(out_dir)
        say(f"Creating image from VM {vm.uuid} (origin {origin.uuid}, {origin.label})")
        tmp_file = out_dir / tmp_name(file_name)
        try:
            written = layer.write_upper(vm.upper, tmp_file, compression, mtime=clamp_time())
        except OSError as exc:
            raise output_error(exc, out_dir) from None
        except LiveforgeError as exc:
            if isinstance(exc, ImgadmError):
                raise
            raise ImgadmError("WriteError", f"writing the image into {out_dir}: {exc}") from None
    debug("written", file=str(tmp_file), sha1=written.sha1, size=written.size)
    tmp_manifest = out_dir / tmp_name(manifest_name)
    try:
        with open(tmp_file, "rb") as handle:
            os.fsync(handle.fileno())
        data = build_manifest(fields, origin, written)
        manifest = validate(data, str(manifest_path))
        write_atomic(tmp_manifest, json.dumps(data, indent=2, sort_keys=True) + "\n")
        publish(tmp_file, file_path)
        try:
            publish(tmp_manifest, manifest_path)
        except BaseException:
            file_path.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise output_error(exc, out_dir) from None
    finally:
        tmp_file.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)
    return Created(manifest, manifest_path, file_path, vm)
