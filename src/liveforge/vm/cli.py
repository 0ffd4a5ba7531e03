"""``vmadm``: command-line parsing only, one small function per verb (each verb's work is in
``liveforge.vm.verbs``), errors turned into one stderr line and an exit code."""

from __future__ import annotations

import argparse
import json
import signal as signals
import sys
from collections.abc import Callable

from liveforge.util.errors import LiveforgeError, UsageError
from liveforge.vm import payload
from liveforge.vm.errors import InvalidPayload, VmadmError
from liveforge.vm.store import VmStore, check_uuid
from liveforge.vm.verbs.common import say


def cmd_validate(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.validate import validate

    if args.action not in ("create", "update"):
        raise UsageError(f"validate: action must be create or update, not {args.action!r}")
    if args.action == "update" and args.brand is None:
        raise UsageError("validate update: a BRAND is required")
    if args.action == "create" and args.brand is not None:
        raise UsageError("validate create: the brand comes from the payload")
    try:
        validate(args.action, payload.read(args.file), args.brand)
    except InvalidPayload as exc:
        print(json.dumps(exc.errors, indent=2), file=sys.stderr)
        return 1
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.create import create

    create(VmStore.from_env(), payload.read(args.file))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.show import list_vms

    list_vms(VmStore.from_env(), args.filters, args.o, args.s, not args.H, args.p)
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.show import lookup

    lookup(VmStore.from_env(), args.filters, args.j, args.one, args.o)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.show import get

    get(VmStore.from_env(), check_uuid(args.uuid, "get"))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.lifecycle import start

    start(VmStore.from_env(), check_uuid(args.uuid, "start"))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.lifecycle import stop

    stop(VmStore.from_env(), check_uuid(args.uuid, "stop"), args.F, args.t)
    return 0


def cmd_reboot(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.lifecycle import reboot

    reboot(VmStore.from_env(), check_uuid(args.uuid, "reboot"), args.F)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.lifecycle import kill

    kill(VmStore.from_env(), check_uuid(args.uuid, "kill"), signal_number(args.s))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.update import update

    uuid = check_uuid(args.uuid, "update")
    if args.file is not None and args.pairs:
        raise UsageError("update: give -f FILE or key=value arguments, not both")
    data = payload.from_args(args.pairs) if args.pairs else payload.read(args.file)
    update(VmStore.from_env(), uuid, data)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.delete import delete

    delete(VmStore.from_env(), check_uuid(args.uuid, "delete"))
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.attach import console

    return console(VmStore.from_env(), check_uuid(args.uuid, "console"))


def cmd_info(args: argparse.Namespace) -> int:
    from liveforge.vm.verbs.attach import info

    info(VmStore.from_env(), check_uuid(args.uuid, "info"), args.types)
    return 0


def signal_number(name: str) -> int:
    """``-s``: a signal's number, or its name with or without ``SIG``."""
    if name.isdigit():
        return int(name)
    try:
        return int(signals.Signals[name.upper() if name.upper().startswith("SIG")
                                   else "SIG" + name.upper()])
    except KeyError:
        raise UsageError(f"kill: unknown signal {name!r}") from None


def _uuid(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("uuid", nargs="?", help="the VM's UUID")


def _payload(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", dest="file", help="the payload file (default: stdin)")


def _validate_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("action", help="create or update")
    sub.add_argument("brand", nargs="?", help="the brand an update payload is for")
    _payload(sub)


def _query_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("filters", nargs="*", metavar="FILTER")
    sub.add_argument("-o", metavar="FIELDS", help="comma-separated fields")


def _list_args(sub: argparse.ArgumentParser) -> None:
    _query_args(sub)
    sub.add_argument("-s", metavar="SORT", help="sort keys, -key descending")
    sub.add_argument("-p", action="store_true", help="parsable: ':'-separated")
    sub.add_argument("-H", action="store_true", help="no header")


def _lookup_args(sub: argparse.ArgumentParser) -> None:
    _query_args(sub)
    sub.add_argument("-j", action="store_true", help="JSON objects")
    sub.add_argument("-1", dest="one", action="store_true", help="exactly one")


def _stop_args(sub: argparse.ArgumentParser) -> None:
    _uuid(sub)
    sub.add_argument("-F", action="store_true", help="force: kill at once")
    sub.add_argument("-t", type=float, metavar="SECONDS", help="wait this long, then kill")


def _reboot_args(sub: argparse.ArgumentParser) -> None:
    _uuid(sub)
    sub.add_argument("-F", action="store_true", help="force: kill at once")


def _kill_args(sub: argparse.ArgumentParser) -> None:
    _uuid(sub)
    sub.add_argument("-s", default="SIGKILL", metavar="SIGNAL", help="default SIGKILL")


def _update_args(sub: argparse.ArgumentParser) -> None:
    _uuid(sub)
    _payload(sub)
    sub.add_argument("pairs", nargs="*", metavar="KEY=VALUE")


def _info_args(sub: argparse.ArgumentParser) -> None:
    _uuid(sub)
    sub.add_argument("types", nargs="*", metavar="TYPE")


# THE verb registry: name -> (its function, its help line, its arguments)
VERBS: dict[str, tuple[Callable[[argparse.Namespace], int], str,
                       Callable[[argparse.ArgumentParser], None]]] = {
    "validate": (cmd_validate, "check a create or update payload", _validate_args),
    "create": (cmd_create, "create a VM from a payload", _payload),
    "list": (cmd_list, "list VMs matching filters (key=value, key=~regex)", _list_args),
    "lookup": (cmd_lookup, "lookup VMs matching filters (key=value, key=~regex)",
               _lookup_args),
    "get": (cmd_get, "print a VM's JSON object", _uuid),
    "start": (cmd_start, "start a VM", _uuid),
    "stop": (cmd_stop, "stop a VM", _stop_args),
    "reboot": (cmd_reboot, "restart a running VM", _reboot_args),
    "kill": (cmd_kill, "send a signal to a VM", _kill_args),
    "update": (cmd_update, "change a VM's properties", _update_args),
    "delete": (cmd_delete, "stop a VM and remove it", _uuid),
    "console": (cmd_console, "attach to a VM's console", _uuid),
    "info": (cmd_info, "a running HVM guest's live information", _info_args),
}


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """vmadm's parser; with ``only`` (a verb of VERBS), that verb's arguments alone are
    declared (what a command line naming it needs: building every verb's costs a run time)."""
    top = argparse.ArgumentParser(prog="vmadm", description="Manage virtual machines.")
    verbs = top.add_subparsers(dest="verb", metavar="COMMAND")
    for name, (func, help, arguments) in VERBS.items():
        if only is None or name == only:
            sub = verbs.add_parser(name, help=help)
            sub.set_defaults(func=func)
            arguments(sub)
    return top


def _joined_sort(argv: list[str]) -> list[str]:
    """``-s -ram`` as ``-s=-ram``: a descending sort key looks like an option to argparse."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "-s" and arg.startswith("-"):
            out[-1] = f"-s={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _joined_sort(sys.argv[1:] if argv is None else argv)
    top = parser(argv[0] if argv and argv[0] in VERBS else None)
    args = top.parse_args(argv)
    if args.verb is None:
        top.print_usage(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        say(str(exc))
        top.print_usage(sys.stderr)
        return exc.exit_code
    except (VmadmError, LiveforgeError) as exc:
        say(str(exc))
        return exc.exit_code
    except OSError as exc:
        say(f"vmadm: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
