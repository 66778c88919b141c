"""`python -m hedgerow.node.run_main --home DIR`: run one node without loading the whole CLI.

The testnet launcher starts node processes through this module, so a node never depends on
unrelated verb modules importing cleanly. Errors print as one line, with the CLI's exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hedgerow.node.errors import HedgerowError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hedgerow run")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    from hedgerow.node.cmd_run import run_node

    profile_path = os.environ.get("HEDGEROW_PROFILE")  # developer aid: cProfile stats on exit
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        return run_node(args)
    except HedgerowError as error:
        if args.debug:
            raise
        print(f"hedgerow: error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        if profile_path:
            profiler.disable()
            profiler.dump_stats(f"{profile_path}.{os.getpid()}")


if __name__ == "__main__":
    sys.exit(main())
