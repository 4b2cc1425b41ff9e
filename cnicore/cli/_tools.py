"""``demo`` and ``install-plugins``."""

from __future__ import annotations

import argparse


def demo(args: argparse.Namespace) -> int:
    from cnicore._demo import run_demo

    return run_demo(backend=args.demo_backend, on_host=args.on_host)


def install_plugins(args: argparse.Namespace) -> int:
    from cnicore.plugins._install import install_plugins

    for path in install_plugins(args.dir):
        print(path)
    return 0
