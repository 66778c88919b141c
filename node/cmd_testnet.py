"""`hedgerow testnet up|down|status|kill|pause|resume|start|stop`: real node processes on loopback.

Thin CLI over `hedgerow.testnet.launcher` (the library issue 9's scenarios and the dashboard use).
Other modules add subcommands by listing themselves in `EXTRA_SUBCOMMANDS` (each with
`register(subparsers)` setting `handler`).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError, UsageError, VerdictFailure
from hedgerow.node.output import console, print_json, table

EXTRA_SUBCOMMANDS: tuple[str, ...] = ("hedgerow.node.cmd_dashboard", "hedgerow.testnet.scenario_cli",
                                      "hedgerow.node.job_client")


def register(verbs: Any) -> None:
    parser = verbs.add_parser("testnet", help="start, inspect and perturb a local multi-process testnet",
                              description="Examples:\n  hedgerow testnet up -n 4 --dir ./net\n"
                              "  hedgerow testnet status --dir ./net --json\n"
                              "  hedgerow testnet kill v2 --dir ./net\n"
                              "  hedgerow testnet start v2 --dir ./net\n"
                              "  hedgerow testnet down --dir ./net",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="testnet_command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="generate keys and genesis, start N nodes, return when they commit")
    up.add_argument("-n", "--validators", type=int, default=4)
    up.add_argument("--observers", type=int, default=0)
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--manifest", type=Path)
    up.add_argument("--app", default=None, help="application: kv (default) or grassroots")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the first commits")
    up.add_argument("--json", action="store_true")
    up.set_defaults(handler=cmd_up)
    down = sub.add_parser("down", help="stop every node gracefully (SIGTERM)")
    down.add_argument("--dir", type=Path, required=True)
    down.add_argument("--clean", action="store_true", help="also delete the testnet directory")
    down.set_defaults(handler=cmd_down)
    status = sub.add_parser("status", help="height, round, leader, peers, last commit age per node")
    status.add_argument("--dir", type=Path, required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    for name, help_text in (("kill", "SIGKILL a node"), ("pause", "SIGSTOP a node"),
                            ("resume", "SIGCONT a paused node"),
                            ("start", "start a node again from its home"),
                            ("stop", "SIGTERM a node and wait for it")):
        one = sub.add_parser(name, help=help_text)
        one.add_argument("name")
        one.add_argument("--dir", type=Path, required=True)
        one.set_defaults(handler=cmd_one, action=name)
    for module in EXTRA_SUBCOMMANDS:
        importlib.import_module(module).register(sub)


def cmd_up(args: argparse.Namespace) -> int:
    from hedgerow.testnet.launcher import WaitTimeout, up
    from hedgerow.testnet.manifest import default_manifest, load_manifest

    if args.manifest is not None:
        manifest = load_manifest(args.manifest)
    else:
        manifest = default_manifest(args.validators, args.observers, app=args.app or "kv")
    if args.app is not None and args.manifest is not None:
        raise UsageError("--app goes in the manifest when one is given")
    try:
        result = up(args.dir, manifest, deadline_s=args.timeout)
    except WaitTimeout as error:
        raise VerdictFailure(f"{error}; logs under {args.dir}/*/data/logs (nodes were killed)") from None
    if args.manifest is not None:
        shutil.copy(args.manifest, Path(args.dir) / "manifest.toml")
    statuses = result.testnet.status()
    if args.json:
        print_json({"dir": str(args.dir), "elapsed_s": round(result.elapsed_s, 3),
                    "nodes": [s.to_json() for s in statuses]})
    else:
        _print_status(statuses, f"testnet up in {result.elapsed_s:.1f} s: {args.dir}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from hedgerow.testnet.launcher import Testnet

    testnet = Testnet.open(args.dir)
    codes = testnet.down()
    bad = {name: code for name, code in codes.items() if code not in (None, 0)}
    console.print(f"stopped {len(codes)} nodes" + (f"; non-zero exits: {bad}" if bad else ""))
    if args.clean:
        shutil.rmtree(args.dir)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hedgerow.testnet.launcher import Testnet

    statuses = Testnet.open(args.dir).status()
    if args.json:
        print_json({"nodes": [s.to_json() for s in statuses]})
    else:
        _print_status(statuses, f"testnet {args.dir}")
    return 0


def cmd_one(args: argparse.Namespace) -> int:
    from hedgerow.testnet.launcher import Testnet

    testnet = Testnet.open(args.dir)
    action = args.action
    if action == "start":
        pid = testnet.start(args.name)
        console.print(f"started {args.name} (pid {pid})")
        return 0
    if action == "stop":
        code = testnet.stop(args.name)
        console.print(f"stopped {args.name} (exit {code})")
        return 0
    getattr(testnet, action)(args.name)
    console.print(f"{action} {args.name}: done")
    return 0


def _print_status(statuses: list[Any], title: str) -> None:
    columns = ["name", "role", "pid", "alive", "height", "round", "leader", "peers", "last commit"]
    rows = []
    for s in statuses:
        age = "" if s.last_commit_age_ms is None else f"{s.last_commit_age_ms / 1000:.1f} s"
        alive = "paused" if s.paused else ("yes" if s.alive else "no")
        rows.append([s.name, s.role, s.pid or "", alive, _blank(s.height), _blank(s.round), _blank(s.leader),
                     _blank(s.peers), age])
    console.print(table(title, columns, rows))


def _blank(value: Any) -> Any:
    return "" if value is None else value


__all__ = ["register", "ConfigError"]
