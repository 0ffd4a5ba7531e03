"""imgadm's command line: global options, the verbs of :mod:`liveforge.img.verbs`, errors.

``imgadm [-h] [--version] [-v] [-E] <verb> [...]``. An error is one stderr line
``imgadm <verb>: error (<Code>): <message>`` and exit status 1 (3 when the image a command
needs is not installed); with ``-E`` a JSON record ``{"err": {"code", "message"}}`` follows it
as the last stderr line. Never a traceback: an unexpected failure is an ``InternalError``
(``-v`` adds the traceback as a debug line). SIGINT, SIGTERM and SIGHUP unwind the verb (an
install removes its ``-partial``) and exit with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from types import ModuleType
from typing import NoReturn

from liveforge import __version__
from liveforge.img.errors import ImgadmError
from liveforge.img.verbs import VERBS
from liveforge.img.verbs.base import Context
from liveforge.util.errors import LiveforgeError
from liveforge.util.proc import Interrupted, handle_stop_signals


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are imgadm errors rather than exits."""

    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments" in message or "unrecognized option" in message:
            raise ImgadmError("UnknownOption", message)
        if "invalid choice" in message and self.prog == "imgadm":
            name = message.split("'", 2)[1] if "'" in message else message
            raise ImgadmError("UnknownCommand", f'unknown command: "{name}"')
        raise ImgadmError("Usage", message)


def verb_module(verb: str) -> ModuleType:
    return importlib.import_module(f"liveforge.img.verbs.{VERBS[verb]}")


def make_parser() -> Parser:
    parser = Parser(prog="imgadm", description="Manage virtual machine images.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging (JSON lines on stderr)")
    parser.add_argument("-E", dest="error_record", action="store_true",
                        help="end an error with a JSON error record on stderr")
    verbs = parser.add_subparsers(dest="verb", metavar="<command>", parser_class=Parser)
    for verb in VERBS:
        module = verb_module(verb)
        sub = verbs.add_parser(verb, help=module.SUMMARY, description=module.SUMMARY)
        module.add_arguments(sub)
    return parser


def _report(verb: str, error: ImgadmError, record: bool) -> int:
    prefix = f"imgadm {verb}" if verb else "imgadm"
    print(f"{prefix}: error ({error.code}): {error.message}", file=sys.stderr, flush=True)
    if record:
        print(json.dumps(error.record()), file=sys.stderr, flush=True)
    return error.exit_code


def _verb_in(argv: list[str]) -> tuple[str, bool]:
    """The verb the command line names ('' when none) and whether ``-E`` comes before it:
    what an error found before parsing ends needs."""
    for index, arg in enumerate(argv):
        if not arg.startswith("-"):
            return (arg if arg in VERBS else ""), "-E" in argv[:index]
    return "", "-E" in argv


def _glue_sort(argv: list[str]) -> list[str]:
    """``-s -field`` (descending) as ``-s=-field``: argparse would take ``-field`` for an
    option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "-s" and arg.startswith("-") and len(arg) > 1:
            out[-1] = f"-s={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args_list = _glue_sort(sys.argv[1:] if argv is None else list(argv))
    verb, record = _verb_in(args_list)
    ctx: Context | None = None
    try:
        args = make_parser().parse_args(args_list)
        record = args.error_record
        if args.version:
            print(f"imgadm {__version__}")
            return 0
        if args.verb is None:
            raise ImgadmError("NoCommand", "no command given (see imgadm -h)")
        verb = args.verb
        ctx = Context(verb, args, verbose=args.verbose)
        ctx.debug("start", argv=args_list)
        restore_signals = handle_stop_signals()  # SIGTERM and SIGHUP clean up as Ctrl-C does
        try:
            return int(verb_module(verb).run(ctx))
        finally:
            restore_signals()
    except ImgadmError as exc:
        return _report(verb, exc, record)
    except LiveforgeError as exc:
        return _report(verb, ImgadmError("InternalError", str(exc)), record)
    except KeyboardInterrupt as exc:  # what was half done is undone on the way out
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        _report(verb, ImgadmError("Interrupted", f"interrupted by "
                                  f"{signal.Signals(signum).name}"), record)
        return 128 + signum
    except BrokenPipeError:
        return 1
    except OSError as exc:
        _debug_traceback(ctx)
        return _report(verb, ImgadmError("InternalError", str(exc)), record)
    except Exception as exc:  # never a traceback on the terminal
        _debug_traceback(ctx)
        return _report(verb, ImgadmError("InternalError", f"{type(exc).__name__}: {exc}"),
                       record)


def _debug_traceback(ctx: Context | None) -> None:
    if ctx is not None and ctx.verbose:
        import traceback

        ctx.debug("traceback", traceback=traceback.format_exc())


if __name__ == "__main__":
    sys.exit(main())
