"""`hedgerow version` (keygen and init live beside it once the foundation lands)."""

from __future__ import annotations

import argparse
from importlib.metadata import version as package_version
from typing import Any


def register(verbs: Any) -> None:
    parser = verbs.add_parser("version", help="print the hedgerow version")
    parser.set_defaults(handler=run_version)


def run_version(args: argparse.Namespace) -> int:
    print(f"hedgerow {package_version('hedgerow')}")
    return 0
