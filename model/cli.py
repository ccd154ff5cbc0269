"""The ``edgesplit`` command line.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds its parser
and sets ``func`` (called with the parsed args, returns an exit status). Modules are listed in
``SUBCOMMAND_MODULES``; adding a subcommand means adding one module and one line here.

The error boundary (:func:`main`), around everything a command does, parsing included:

* Errors a user can cause (a bad network, split, QF or limit, a missing, unreadable, damaged or foreign
  file, an output that cannot be written) are raised as ``UserError`` by the code that reads the value or
  the file, naming it and what is allowed; they are printed as one line on stderr, exit status 2, never a
  traceback. Argument syntax errors (argparse) are one line too, exit status 2.
* Anything else is a bug: its traceback is shown (exit status 1) so that it can be reported.
* Ctrl-C at any moment, module imports included: ``edgesplit: interrupted`` on stderr, exit status 130.
  Every file is written to a temporary name and renamed when complete (:mod:`golden.files`), so nothing
  partial is left.
* A closed stdout (``edgesplit sweep | head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from golden import malloc
from model.errors import UserError

SUBCOMMAND_MODULES: tuple[str, ...] = ("model.cli_codec", "model.cli_cost", "model.cli_accuracy", "model.cli_weights",
                                       "model.cli_train", "model.cli_splits", "model.cli_runtime", "model.cli_dse")
COMMAND_MODULE: dict[str, str] = {
    "encode": "model.cli_codec", "decode": "model.cli_codec",
    "query": "model.cli_cost", "sweep": "model.cli_cost", "best": "model.cli_cost",
    "accuracy": "model.cli_accuracy", "finetune": "model.cli_accuracy",
    "weights": "model.cli_weights", "train": "model.cli_train", "splits": "model.cli_splits",
    "host": "model.cli_runtime", "edge": "model.cli_runtime", "runtime-report": "model.cli_runtime",
    "dse": "model.cli_dse",
}
"""Which module registers each command: ``edgesplit CMD ...`` imports only that one (some import torch and the
study's modules, a second or more), ``edgesplit``, ``--help`` or an unknown command all of them
(tests/model/test_frontend_cli.py checks this table against what the modules register)."""

INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors as one line (``prog: error: message``, exit status 2), no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(text: object) -> str:
    """``text`` with its line breaks turned into spaces."""
    return " ".join(str(text).split("\n")).strip()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or, for a known ``command``, of that command alone (:data:`COMMAND_MODULE`)."""
    parser = OneLineParser(
        prog="edgesplit",
        description="Split DNN inference between an edge engine and a host: simulate, encode, cost.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (COMMAND_MODULE[command],) if command in COMMAND_MODULE else SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command ``argv`` names (its first word that is not an option; the top level has no valued options)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"edgesplit {version('edgesplit')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "edgesplit (not installed)"


def main(argv: list[str] | None = None) -> int:
    command = "edgesplit"
    malloc.tune()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(_command(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        command = f"edgesplit {args.command}"
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"{command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgesplit: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # the reader of stdout went away: nothing more to say; keep Python from failing again at exit
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout is not a real file (pytest's capture)
        pass


if __name__ == "__main__":
    sys.exit(main())
