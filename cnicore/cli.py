"""The ``cnicore`` command line.

Subcommands (each a function taking the parsed arguments and returning the exit status):

* ``cnicore demo [--backend auto|real|fake] [--on-host]``: run the Mesos documentation's
  CNI example end to end with our plugins (see :mod:`cnicore._demo`);
* ``cnicore install-plugins DIR``: write the ``loopback``, ``bridge`` and ``host-local``
  executables into ``DIR`` for a runtime's ``CNI_PATH``.

More subcommands are added by registering a parser and a handler in :data:`_COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cnicore._errors import CNIError

__all__ = ["build_parser", "main"]

_Handler = Callable[[argparse.Namespace], int]


def _demo(args: argparse.Namespace) -> int:
    from cnicore._demo import run_demo

    return run_demo(backend=args.backend, on_host=args.on_host)


def _install_plugins(args: argparse.Namespace) -> int:
    from cnicore.plugins._install import install_plugins

    for path in install_plugins(args.dir):
        print(path)
    return 0


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser("demo", help="run the Mesos CNI example end to end with our plugins",
                            description="Run the seed demo (loopback and bridge ADD/DEL in a namespace) "
                                        "through the exec protocol and show each step's result and state.")
    parser.add_argument("--backend", choices=("auto", "real", "fake"), default="auto",
                        help="real namespaces (needs root), the in-memory fake, or auto (real when root)")
    parser.add_argument("--on-host", action="store_true",
                        help="run the plugins in the real host namespace, as the seed does "
                             "(default: a throwaway namespace plays the host)")
    return parser


def _add_install(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser("install-plugins", help="write the plugin executables into a directory",
                            description="Write loopback, bridge and host-local into DIR (for CNI_PATH).")
    parser.add_argument("dir", metavar="DIR")
    return parser


#: name -> (adds the subparser, handles the parsed arguments)
_COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]],
                                    argparse.ArgumentParser], _Handler]] = {
    "demo": (_add_demo, _demo),
    "install-plugins": (_add_install, _install_plugins),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="cnicore", description="Container Network Interface tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add, handler) in _COMMANDS.items():
        add(sub).set_defaults(handler=handler, command=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    handler: _Handler = args.handler
    try:
        return handler(args)
    except CNIError as exc:
        print(f"cnicore {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
