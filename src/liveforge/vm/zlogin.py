"""zlogin UUID [CMD...]: run a command (or a login shell) inside a running container, with its
exit status (see ``liveforge.vm.brands.login``)."""

from __future__ import annotations

import sys

from liveforge.vm.brands import FAMILIES
from liveforge.vm.brands.login import LoginError, enter, run
from liveforge.vm.errors import VmadmError
from liveforge.vm.store import UUID_ARG_RE, VmStore

USAGE = "usage: zlogin UUID [CMD...]"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE + "\n")
        return 2
    uuid, words = args[0].lower(), args[1:]
    if not UUID_ARG_RE.match(uuid):
        sys.stderr.write(f"zlogin: invalid VM UUID '{args[0]}'\n{USAGE}\n")
        return 2
    store = VmStore.from_env()
    try:
        try:
            vm = store.load(uuid)
        except VmadmError:
            raise LoginError(f"VM {uuid} unknown") from None
        if FAMILIES.get(vm.get("brand", "")) != "container":
            raise LoginError(f"VM {uuid} is not a container (brand {vm.get('brand')}): "
                             f"use vmadm console")
        enter(uuid, store.vmdir(uuid))
    except LoginError as exc:
        sys.stderr.write(f"zlogin: {exc}\n")
        return 1
    return run(words)


if __name__ == "__main__":
    sys.exit(main())
