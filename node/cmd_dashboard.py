"""`hedgerow testnet dashboard|partition|heal` and `hedgerow testnet up --dashboard`.

Registered through `EXTRA_SUBCOMMANDS` in `node/cmd_testnet.py`: `register(subparsers)` adds the
subcommands and the `--dashboard` option of `up` (whose handler it wraps: after `up` returns, the
dashboard serves in the foreground until Ctrl-C; the nodes keep running after it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError
from hedgerow.node.output import console, print_json


def register(sub: Any) -> None:
    dash = sub.add_parser("dashboard", help="serve a live web dashboard of the testnet on 127.0.0.1",
                          description="Example:\n  hedgerow testnet dashboard --dir ./net --port 8750\n"
                          "Prints the page's URL (with the control token after '#'); Ctrl-C stops it.",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    dash.add_argument("--dir", type=Path, required=True)
    dash.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    dash.add_argument("--account", action="append", default=[], metavar="HEX",
                      help="grassroots account whose liquidity ratios to show (repeatable; default: issuers)")
    dash.set_defaults(handler=cmd_dashboard)
    cut = sub.add_parser("partition", help="cut the links between two groups of nodes (live, in every "
                         "node's fault layer)")
    cut.add_argument("names", help="comma-separated nodes of one side, e.g. v3 or v0,v1")
    cut.add_argument("--from", dest="other", default="",
                     help="comma-separated nodes of the other side (default: every other node)")
    cut.add_argument("--dir", type=Path, required=True)
    cut.add_argument("--json", action="store_true")
    cut.set_defaults(handler=cmd_partition)
    heal = sub.add_parser("heal", help="remove the partition opened by `testnet partition`")
    heal.add_argument("--dir", type=Path, required=True)
    heal.add_argument("--json", action="store_true")
    heal.set_defaults(handler=cmd_heal)
    up = sub.choices.get("up")
    if up is not None:
        up.add_argument("--dashboard", action="store_true",
                        help="then serve the live dashboard until Ctrl-C (nodes keep running)")
        up.add_argument("--dashboard-port", type=int, default=0, help="dashboard port (default: a free one)")
        up.set_defaults(handler=partial(_up_then_dashboard, up.get_default("handler")))


def _up_then_dashboard(up_handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    code = up_handler(args)
    if code != 0 or not args.dashboard:
        return code
    return _serve(args.dir, args.dashboard_port, [])


def cmd_dashboard(args: argparse.Namespace) -> int:
    for account in args.account:
        try:
            if len(bytes.fromhex(account)) != 32:
                raise ValueError
        except ValueError:
            raise UsageError(f"--account {account!r}: not a 32-byte hex key") from None
    return _serve(args.dir, args.port, args.account)


def _serve(directory: Path, port: int, accounts: list[str]) -> int:
    from hedgerow.testnet.dashboard.app import run_dashboard

    return run_dashboard(directory, port, accounts=accounts)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise UsageError(f"a node is named twice in {text!r}")
    return names


def cmd_partition(args: argparse.Namespace) -> int:
    from hedgerow.testnet.dashboard.control import partition
    from hedgerow.testnet.launcher import Testnet

    found = partition(Testnet.open(args.dir), _names(args.names), _names(args.other) or None)
    if args.json:
        print_json(found.to_json())
    else:
        console.print(f"partition open: {','.join(found.side_a)} | {','.join(found.side_b)} "
                      f"(restarted {','.join(found.configured_on)} with the cut)")
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from hedgerow.testnet.dashboard.control import heal
    from hedgerow.testnet.launcher import Testnet

    found = heal(Testnet.open(args.dir))
    if args.json:
        print_json(found.to_json())
    else:
        console.print(f"healed: {','.join(found.side_a)} | {','.join(found.side_b)}")
    return 0
