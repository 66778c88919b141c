"""`hedgerow sim`: seeded simulation campaigns, one module per protocol.

Each protocol module exposes `SCENARIOS: dict[str, str]` (name -> one-line description) and
`run(args) -> int`, where `args` carries the common options parsed here.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from hedgerow.node.errors import UsageError
from hedgerow.node.output import console, parse_range, print_json, table

SIM_PROTOCOLS: dict[str, str] = {
    "grassroots": "hedgerow.testnet.sim.grassroots_campaign",
    "heardof": "hedgerow.testnet.sim.heardof_campaign",
    "monadbft": "hedgerow.testnet.sim.monadbft_campaign",
}


def register(verbs: Any) -> None:
    parser = verbs.add_parser(
        "sim",
        help="run seeded simulation campaigns (replayable by seed)",
        description="Run a protocol's scenario under the seeded simulator. Every failing seed prints "
        "the one command that replays it. Exit 1 when any invariant broke.",
        epilog="example: hedgerow sim --protocol monadbft --scenario s1-happy --seeds 0-199",
    )
    parser.add_argument("--protocol", required=True, choices=sorted(SIM_PROTOCOLS) or None,
                        help="which protocol to simulate")
    parser.add_argument("--scenario", help="scenario name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the protocol's scenarios")
    parser.add_argument("--seeds", default="0", help="seeds to run: N or A-B inclusive (default 0)")
    parser.add_argument("--nodes", type=int, default=None, help="number of nodes (scenario default)")
    parser.add_argument("--steps", type=int, default=None, help="step bound per seed (scenario default)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of tables")
    parser.set_defaults(handler=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    module = importlib.import_module(SIM_PROTOCOLS[args.protocol])
    scenarios: dict[str, str] = module.SCENARIOS
    if args.list:
        if args.json:
            print_json({"protocol": args.protocol, "scenarios": scenarios})
        else:
            console.print(table(f"{args.protocol} scenarios", ["name", "what it shows"], scenarios.items()))
        return 0
    if args.scenario not in scenarios:
        raise UsageError(f"unknown scenario {args.scenario!r} for {args.protocol}; "
                         f"try: hedgerow sim --protocol {args.protocol} --list")
    try:
        args.seed_range = parse_range(args.seeds)
    except ValueError as error:
        raise UsageError(str(error)) from None
    code: int = module.run(args)
    return code
