"""`hedgerow version`, `hedgerow keygen --out FILE`, `hedgerow init --home DIR --chain-id ID`."""

from __future__ import annotations

import argparse
import os
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from hedgerow.node.output import console, print_json, table


def register(verbs: Any) -> None:
    parser = verbs.add_parser("version", help="print the hedgerow version",
                              description="Print the installed hedgerow version.")
    parser.set_defaults(handler=run_version)

    parser = verbs.add_parser(
        "keygen", help="create an Ed25519 key file",
        description="Create a new Ed25519 key file (mode 0600) and print its node id. Never overwrites.",
        epilog="example: hedgerow keygen --out ./node.key",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="key file to create")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run_keygen)

    parser = verbs.add_parser(
        "init", help="create a node home directory",
        description="Create a node home: config/node.toml, config/key.ed25519 (mode 0600) and "
        "config/genesis.json naming this node as the single validator, unless --genesis gives one. "
        "Refuses to touch an existing home (exit 2).",
        epilog="example: hedgerow init --home ~/.hedgerow --chain-id local --listen 127.0.0.1:26656",
    )
    parser.add_argument("--home", type=Path, default=_default_home(), required=_default_home() is None,
                        metavar="DIR", help="home directory (default: $HEDGEROW_HOME)")
    parser.add_argument("--chain-id", metavar="ID", help="chain id, e.g. local (not with --join)")
    parser.add_argument("--genesis", type=Path, metavar="FILE", help="use this genesis.json")
    parser.add_argument("--listen", default="127.0.0.1:26656", metavar="HOST:PORT",
                        help="transport listen address (default 127.0.0.1:26656)")
    parser.add_argument("--join", metavar="HOST:PORT", help="follow a running node (its RPC address) as an "
                        "observer: fetch its genesis (see README, 'Connect your own node')")
    parser.add_argument("--genesis-hash", metavar="HEX", help="with --join: the expected genesis SHA-256")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run_init)


def _default_home() -> Path | None:
    value = os.environ.get("HEDGEROW_HOME")
    return Path(value) if value else None


def run_version(args: argparse.Namespace) -> int:
    print(f"hedgerow {package_version('hedgerow')}")
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from hedgerow.node.home import write_key_file
    from hedgerow.protocols.crypto import SigningKey

    key = SigningKey.generate()
    write_key_file(args.out, key)
    summary = {"file": str(args.out), "node_id": key.node_id.hex(), "public_key": key.public.raw.hex()}
    if args.json:
        print_json(summary)
    else:
        console.print(table("new key", ["field", "value"], summary.items()))
    return 0


def run_init(args: argparse.Namespace) -> int:
    from hedgerow.node.home import config_dir, init_home

    if args.join is not None:
        from hedgerow.node.join import run_join

        return run_join(args)
    if args.chain_id is None:
        from hedgerow.node.errors import UsageError

        raise UsageError("init needs --chain-id ID (or --join HOST:PORT)")

    home = init_home(args.home, args.chain_id, genesis_file=args.genesis, listen=args.listen)
    summary = {
        "home": str(home.path),
        "chain_id": home.config.chain_id,
        "node_id": home.key.node_id.hex(),
        "role": "validator" if home.is_validator else "observer",
        "validators": len(home.genesis.validators),
        "listen": home.config.listen,
        "config": str(config_dir(home.path)),
    }
    if args.json:
        print_json(summary)
    else:
        console.print(table(f"initialised {home.path}", ["field", "value"], summary.items()))
    return 0
