"""`hedgerow init --home DIR --join HOST:PORT [--genesis-hash H]`: a home that follows a running
network as an observer.

It fetches genesis over the RPC of the node at HOST:PORT, checks its SHA-256 against
`--genesis-hash` when given (always do this with a node you do not control: it is what ties your
observer to the right chain), writes the key (fresh, mode 0600), the genesis bytes exactly as
fetched, and a node.toml with `role = "observer"` that syncs from HOST:PORT. Then `hedgerow run
--home DIR` verifies every finalized block's certificates, executes it and serves reads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hedgerow.node.config import parse_genesis, split_address
from hedgerow.node.errors import ConfigError, UsageError
from hedgerow.node.rpc_client import RpcCallError, RpcClient
from hedgerow.protocols.crypto import SigningKey


def fetch_genesis(address: str, key: SigningKey) -> bytes:
    host, port = split_address(address, "--join")
    try:
        with RpcClient.connect(host, port, key, timeout_s=10.0) as client:
            reply = client.call("genesis", timeout_s=10.0)
    except RpcCallError as error:
        raise ConfigError(f"--join {address}: {error}") from None
    data = reply.get("genesis") if isinstance(reply, dict) else None
    if not isinstance(data, bytes):
        raise ConfigError(f"--join {address}: the node sent no genesis")
    return data


def join_home(home: Path, address: str, *, genesis_hash: str | None = None,
              rpc_listen: str = "127.0.0.1:0", metrics_listen: str = "", name: str | None = None
              ) -> dict[str, Any]:
    """Create an observer home from a running node; returns a summary for the CLI."""
    from hedgerow.node.home import write_key_file

    home = Path(home).expanduser()
    config = home / "config"
    if config.exists():
        raise UsageError(f"{home} is already a node home ({config} exists); refusing to overwrite")
    key = SigningKey.generate()
    data = fetch_genesis(address, key)
    digest = hashlib.sha256(data).hexdigest()
    if genesis_hash is not None and genesis_hash.lower() != digest:
        raise ConfigError(f"genesis from {address} has hash {digest}, not the expected {genesis_hash}")
    genesis = parse_genesis(data, f"genesis from {address}")
    rpc_host, rpc_port = split_address(rpc_listen, "--rpc")
    if rpc_port == 0:
        from hedgerow.testnet.launcher import free_ports

        rpc_port = free_ports(1)[0]
    config.mkdir(parents=True)
    (home / "data" / "logs").mkdir(parents=True, exist_ok=True)
    write_key_file(config / "key.ed25519", key)
    (config / "genesis.json").write_bytes(data)
    lines = ["version = 1", f"chain_id = {json.dumps(genesis.chain_id)}",
             f"name = {json.dumps(name or 'observer-' + key.public.short_id)}", 'role = "observer"', "",
             "[sync]", f"peers = [{json.dumps(address)}]", "", "[rpc]",
             f"listen = {json.dumps(f'{rpc_host}:{rpc_port}')}", "", "[metrics]",
             f"listen = {json.dumps(metrics_listen)}", ""]
    (config / "node.toml").write_text("\n".join(lines))
    return {"home": str(home), "node_id": key.node_id.hex(), "chain_id": genesis.chain_id,
            "genesis_hash": digest, "sync_from": address, "rpc": f"{rpc_host}:{rpc_port}"}


def run_join(args: Any) -> int:
    """`hedgerow init --join` (called from node/cmd_basic.py's init)."""
    from hedgerow.node.output import console, print_json, table

    if args.chain_id is not None or args.genesis is not None:
        raise UsageError("--join fetches genesis and chain id from the node; drop --chain-id/--genesis")
    summary = join_home(args.home, args.join, genesis_hash=args.genesis_hash)
    if args.json:
        print_json(summary)
    else:
        console.print(table(f"joined as observer: {summary['home']}", ["field", "value"], summary.items()))
        console.print(f"next: hedgerow run --home {summary['home']}")
    return 0
