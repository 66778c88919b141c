"""`hedgerow tx submit`: send raw, already signed transaction bytes to a node and wait for them.

    hedgerow tx submit --home ./net/v0 --tx 97a1... --wait final
    hedgerow tx submit --home ./net/v0 --file tx.bin --wait speculative --json

Works for any application (the node's mempool checks the signature through it). Prints the
node's answer; exits 1 when the node rejected the tx (e.g. `busy`, `bad_nonce`, `invalid:...`)
or when it executed with a non-OK result.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError, UsageError, VerdictFailure
from hedgerow.node.output import console, print_json, table


def register_submit(kinds: Any) -> None:
    parser = kinds.add_parser("submit", help="submit raw signed tx bytes (any application)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tx", help="the transaction as hex")
    source.add_argument("--file", type=Path, help="a file holding the raw transaction bytes")
    parser.add_argument("--home", type=Path, default=argparse.SUPPRESS, help="node home (or $HEDGEROW_HOME)")
    parser.add_argument("--wait", choices=("speculative", "final"), default=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    parser.set_defaults(handler=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from hedgerow.node.rpc_client import RpcCallError, submit

    home = getattr(args, "home", None) or os.environ.get("HEDGEROW_HOME")
    if not home:
        raise UsageError("submit needs --home DIR (or $HEDGEROW_HOME)")
    try:
        tx = bytes.fromhex(args.tx) if args.tx is not None else Path(args.file).read_bytes()
    except (ValueError, OSError) as error:
        raise UsageError(f"cannot read the transaction: {error}") from None
    try:
        answer = submit(Path(home), tx, getattr(args, "wait", None), timeout_s=args.timeout)
    except RpcCallError as error:
        raise ConfigError(str(error)) from None
    report = {k: v.hex() if isinstance(v, bytes) else v for k, v in answer.items()}
    if getattr(args, "json", False):
        print_json(report)
    else:
        console.print(table("submitted", ["field", "value"], report.items()))
    if answer.get("status") == "rejected":
        raise VerdictFailure(str(answer.get("result")))
    result = answer.get("tx_result")
    if isinstance(result, list | tuple) and result and result[0] != 0:
        raise VerdictFailure(f"executed with code {result[0]} {result[1] if len(result) > 1 else ''}".strip())
    return 0
