"""The ``edgesplit`` command line.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds its parser
and sets ``func`` (called with the parsed args, returns an exit status). Modules are listed in
``SUBCOMMAND_MODULES``; adding a subcommand means adding one module and one line here.

Errors a user can cause (bad network, split, QF, file) are raised as ``UserError`` and printed as one
line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from model.errors import UserError

SUBCOMMAND_MODULES: tuple[str, ...] = ("model.cli_codec", "model.cli_cost", "model.cli_accuracy", "model.cli_weights",
                                       "model.cli_train", "model.cli_splits")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesplit",
        description="Split DNN inference between an edge engine and a host: simulate, encode, cost.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"edgesplit {version('edgesplit')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "edgesplit (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"edgesplit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgesplit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
