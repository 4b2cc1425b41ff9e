""":func:`main`: parse the command line, apply the settings, run the subcommand, map errors to exit statuses."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence

from cnicore._errors import CNIError, IOFailureError
from cnicore.cli._output import EXIT_SYSTEM, EXIT_USAGE, _Output, exit_status
from cnicore.cli._parser import COMMANDS, _Handler, build_parser
from cnicore.cli._settings import _Settings


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; return the exit status (see :mod:`cnicore.cli`).

    Args:
        argv: the arguments without the program name (default ``sys.argv[1:]``).
        environ: the environment to read (default ``os.environ``).
    """
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    environ = os.environ if environ is None else environ
    output = _Output(bool(getattr(args, "json", False)))
    handler: _Handler = args.handler
    try:
        if COMMANDS[args.command][2]:
            args.settings = _Settings(args, environ)
            args.output = output
        return handler(args)
    except CNIError as exc:
        output.error(exc)
        return exit_status(exc)
    except BrokenPipeError:
        # The reader went away (``cnicore ls | head``): stop quietly, and keep the interpreter's final
        # flush of stdout from failing again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SYSTEM
    except OSError as exc:
        output.error(IOFailureError(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")))
        return EXIT_SYSTEM

