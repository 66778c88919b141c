"""The `hedgerow` command: one verb per module, each registering its own subparser.

Every verb module exposes `register(subparsers)` and sets `handler=func(args) -> int` as a default.
Errors reach the user as one line, `hedgerow: error: ...`, never a traceback (unless `--debug`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hedgerow.node.errors import HedgerowError

# Verb modules, each with `register(subparsers)`; `job` kinds register under the `job` verb.
VERB_MODULES: tuple[str, ...] = (
    "hedgerow.node.cmd_basic",
    "hedgerow.node.cmd_demo",
    "hedgerow.node.cmd_sim",
    "hedgerow.node.cmd_rounds",
    "hedgerow.node.cmd_run",
    "hedgerow.node.cmd_testnet",
    "hedgerow.node.cmd_tx",
)
JOB_MODULES: tuple[str, ...] = ("hedgerow.node.cmd_train", "hedgerow.node.cmd_newton")

EXAMPLES = """examples:
  hedgerow init --home ~/.hedgerow --chain-id local
  hedgerow testnet up -n 4 --dir ./net
  hedgerow sim --protocol monadbft --scenario s1-happy --seeds 0-99
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hedgerow",
        description="Hedgerow: a small, fast BFT node (MonadBFT, Heard-Of rounds, grassroots coins "
        "and bonds, compute workers).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).register(verbs)
    if JOB_MODULES:
        job = verbs.add_parser("job", help="run compute jobs (parallel Newton, gradient-coded training)")
        kinds = job.add_subparsers(dest="job_kind", required=True, metavar="KIND")
        for name in JOB_MODULES:
            importlib.import_module(name).register(kinds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hedgerow` script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except HedgerowError as error:
        if args.debug:
            raise
        print(f"hedgerow: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("hedgerow: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place a stray bug becomes a one-line error
        if args.debug:
            raise
        print(f"hedgerow: error: {type(error).__name__}: {error} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
