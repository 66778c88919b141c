"""`hedgerow run|status|peers --home DIR [--json]`: run a node, or ask a running one over RPC."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError, SafetyHalt, VerdictFailure
from hedgerow.node.output import console, print_json, table

# Collector thresholds for a running node: a young generation of 10,000 objects instead of 700.
# Under load a node allocates a few objects per tx that live for a block or two; with the default
# the young generation was collected ~20 times a second, the whole heap every few seconds: 3-4 %
# of a node's CPU, against under 1 % now (gc.callbacks timing, bench/testnet_throughput.py).
GC_THRESHOLDS = (10_000, 20, 20)


def settle_collector() -> None:
    """Move everything start-up built (modules, classes, config) out of the collector's sight
    (`gc.freeze`) and collect young objects less often; the node's caches hold plain tuples."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _home_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, default=os.environ.get("HEDGEROW_HOME"),
                        help="node home directory (default: $HEDGEROW_HOME)")


def register(verbs: Any) -> None:
    run = verbs.add_parser("run", help="run a node from its home until SIGINT/SIGTERM",
                           description="Run a node: validators vote, observers follow and serve reads. "
                           "Example: hedgerow run --home ./net/v0")
    _home_arg(run)
    run.add_argument("--log-level", default="WARNING", help="python log level (default WARNING)")
    run.set_defaults(handler=run_node)
    status = verbs.add_parser("status", help="height, round, peers of a running node",
                              description="Example: hedgerow status --home ./net/v0 --json")
    _home_arg(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=show_status)
    peers = verbs.add_parser("peers", help="connected peers of a running node",
                             description="Example: hedgerow peers --home ./net/v0 --json")
    _home_arg(peers)
    peers.add_argument("--json", action="store_true")
    peers.set_defaults(handler=show_peers)


def _home(args: argparse.Namespace) -> Path:
    if args.home is None:
        raise ConfigError("--home DIR is required (or set HEDGEROW_HOME)")
    return Path(args.home).expanduser()


def run_node(args: argparse.Namespace) -> int:
    import trio

    from hedgerow.node.config import load_node_config
    from hedgerow.node.node import Node
    from hedgerow.node.runtime import ActorCrashed
    from hedgerow.protocols.actions import InvariantViolation

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    node = Node(load_node_config(_home(args)))
    if "perturb" in node.config.raw or "byzantine" in node.config.raw:  # testnet fault control
        from hedgerow.testnet.perturb_node import install

        install(node)
    settle_collector()
    try:
        code: int = trio.run(node.run)
    except ActorCrashed as crash:
        if isinstance(crash.error, InvariantViolation):
            raise SafetyHalt(str(crash)) from None
        if isinstance(crash.error, ConfigError):
            raise crash.error from None
        raise VerdictFailure(str(crash)) from crash.error
    print(f"event=stopped name={node.config.name} height={node.height} code={code}", flush=True)
    return code


def _call(args: argparse.Namespace, method: str) -> Any:
    from hedgerow.node.rpc_client import RpcCallError, client_for_home

    try:
        with client_for_home(_home(args), timeout_s=5.0) as client:
            return client.call(method, timeout_s=5.0)
    except RpcCallError as error:
        raise ConfigError(str(error)) from None


def show_status(args: argparse.Namespace) -> int:
    info = _call(args, "status")
    if args.json:
        print_json(info)
        return 0
    rows = [(key, info.get(key)) for key in ("name", "role", "node_id", "chain_id", "app", "height", "round",
                                             "leader", "peers", "last_commit_age_ms", "state_hash",
                                             "txs_committed")]
    console.print(table(f"hedgerow node {info.get('name')}", ["field", "value"], rows))
    return 0


def show_peers(args: argparse.Namespace) -> int:
    peers = _call(args, "peers")
    if args.json:
        print_json({"peers": peers})
        return 0
    columns = ["node_id", "index", "validator", "outbound", "address", "queued"]
    console.print(table("peers", columns, [[p.get(c, "") for c in columns] for p in peers]))
    return 0
