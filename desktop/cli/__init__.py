"""The ``convscope`` entry point.

``convscope`` with no subcommand opens the window (Qt is imported only then);
``convscope SUBCOMMAND ...`` runs a headless job and never imports Qt.

Each subcommand is a module of this package with ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Bad arguments and bad files end with one clear line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from engine import __version__
from engine.errors import EngineError

SUBCOMMANDS = (
    "train",
    "evaluate",
    "classify",
    "read",
    "convolve",
    "download",
    "export",
    "features",
    "describe",
)


class CliError(Exception):
    """A user mistake on the command line; its message is printed as one line."""


def _subcommand_modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"{__name__}.{name}_cmd") for name in SUBCOMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convscope",
        description=(
            "See how a convolutional neural network works. With no subcommand, opens the "
            "ConvScope window; the subcommands run the same jobs headless."
        ),
    )
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, module in _subcommand_modules().items():
        sp = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``convscope``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from desktop.app import main as gui_main  # Qt only when the window is wanted

        return gui_main()
    from desktop.cli.common import safe_print  # here: common imports CliError from this module

    try:
        return int(args._run(args) or 0)
    except (CliError, EngineError) as exc:
        safe_print(f"convscope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # e.g. an architecture within the size limits, on a small machine
        safe_print(
            f"convscope {args.command}: error: out of memory ({exc or 'no detail'}); "
            "try a smaller batch size, network or input",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        safe_print(f"convscope {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (| head): as a Unix tool, end quietly
        _silence_stdout()
        return 141  # what a shell reports for a command ended by SIGPIPE
    except OSError as exc:
        safe_print(f"convscope {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point standard output at the null device, so that Python's own flush at exit does not
    report the closed pipe a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file behind sys.stdout (a test's capture)
        pass
