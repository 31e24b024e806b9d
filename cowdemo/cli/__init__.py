"""`cowdemo` command line: everything the app does, scriptable. User errors print one line
and exit 2.

One module per subcommand (group) in this package: ``models``, ``predict``, ``evaluate``,
``runs`` (``runs ...`` and ``check``), ``datasets``, ``track``, ``train``, ``report``. Each has
``register(subparsers)``; this module only builds the parser and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from cowdemo.errors import CowdemoError

EXIT_USER_ERROR = 2

#: One module per subcommand (group): each has ``register(subparsers)`` which adds its parsers and
#: sets ``func`` (a handler taking the parsed args and returning an exit code).
SUBCOMMAND_MODULES: list[str] = [
    "cowdemo.cli.models",
    "cowdemo.cli.predict",
    "cowdemo.cli.evaluate",
    "cowdemo.cli.runs",
    "cowdemo.cli.datasets",
    "cowdemo.cli.track",
    "cowdemo.cli.train",
    "cowdemo.cli.export",
    "cowdemo.cli.report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cowdemo", description="Detect, evaluate, fine-tune and track cows."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except CowdemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        # the environment, not the code: a path that cannot be written or read (a full disk, a
        # read-only or missing folder). One line naming it, like any input error.
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        print(f"error: {where or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

