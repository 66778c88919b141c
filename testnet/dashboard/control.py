"""Steering a testnet: node actions and partitions, shared by the dashboard and the CLI.

Node actions are the `Testnet` methods `hedgerow testnet kill|pause|resume|start|stop` calls.

A partition goes through the nodes' fault layer (`net/faults.py`). `partition` writes a
`[[faults.partition]]` entry into every home's `config/node.toml` (so a node started later boots
with it) and then brings each running node's live fault layer in line with its file through the
`faults` RPC of `testnet/perturb_node.py` (no restart); a node without that RPC (a home written
before it existed) is restarted instead. `heal` removes the entries and syncs the nodes again. The
transport checks a cut on both the sending and the receiving end, so a node that cannot be synced
(paused) is still cut off by the others; it is synced when it is resumed through `node_action`.
The open partition is recorded in `DIR/partition.json`, so any process (CLI or dashboard) can heal it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError
from hedgerow.node.rpc_client import RpcCallError
from hedgerow.protocols.crypto import node_id_of
from hedgerow.testnet.launcher import Testnet, pid_alive

NODE_ACTIONS = ("kill", "pause", "resume", "start", "stop")
PARTITION_FILE = "partition.json"
BEGIN_MARK = "# -- hedgerow testnet partition (written by `hedgerow testnet partition`; removed by heal) --"
END_MARK = "# -- end of hedgerow testnet partition --"
SYNC_TIMEOUT_S = 2.0


def node_action(testnet: Testnet, action: str, name: str) -> str:
    """Run one node action (the same calls as `hedgerow testnet ACTION NAME`); returns what happened.
    A resumed node also gets its live fault layer synced with its config (a partition may have been
    opened or healed while it was stopped)."""
    if action not in NODE_ACTIONS:
        raise UsageError(f"unknown node action {action!r} (have: {', '.join(NODE_ACTIONS)})")
    if action == "start":
        return f"started {name} (pid {testnet.start(name)})"
    if action == "stop":
        return f"stopped {name} (exit {testnet.stop(name)})"
    getattr(testnet, action)(name)
    if action == "resume":
        sync_faults(testnet, name)
    return f"{action} {name}: done"


@dataclass(frozen=True)
class Partition:
    side_a: list[str]
    side_b: list[str]
    configured_on: list[str]  # the homes that carry the partition entry
    synced: list[str] = field(default_factory=list)  # running nodes that took it live (RPC)
    restarted: list[str] = field(default_factory=list)  # running nodes without the RPC

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def current_partition(directory: Path) -> Partition | None:
    path = Path(directory) / PARTITION_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Partition(list(raw["side_a"]), list(raw["side_b"]), list(raw["configured_on"]),
                     list(raw.get("synced", [])), list(raw.get("restarted", [])))


def partition(testnet: Testnet, side_a: list[str], side_b: list[str] | None = None) -> Partition:
    """Cut every link between `side_a` and `side_b` (default: every other node), live."""
    if current_partition(testnet.dir) is not None:
        raise UsageError("a partition is already open (heal it first: hedgerow testnet heal --dir DIR)")
    for name in side_a + (side_b or []):
        testnet.record(name)
    side_b = side_b if side_b else [n for n in testnet.nodes if n not in side_a]
    if not side_a or not side_b or set(side_a) & set(side_b):
        raise UsageError("a partition needs two disjoint, non-empty sides")
    ids = {name: _node_id(testnet, name) for name in side_a + side_b}
    block = [BEGIN_MARK, "[[faults.partition]]", f"a = {json.dumps([ids[n] for n in side_a])}",
             f"b = {json.dumps([ids[n] for n in side_b])}", "symmetric = true", END_MARK, ""]
    names = list(testnet.nodes)
    for name in names:
        path = _config_path(testnet, name)
        path.write_text(_strip_partition(path.read_text()).rstrip("\n") + "\n\n" + "\n".join(block))
    state = testnet.dir / PARTITION_FILE
    state.write_text(json.dumps(Partition(list(side_a), list(side_b), names).to_json(), indent=2) + "\n")
    synced, restarted = _apply(testnet, names)
    result = Partition(list(side_a), list(side_b), names, synced, restarted)
    state.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def heal(testnet: Testnet) -> Partition:
    """Remove the open partition from the homes that carry it and sync the running nodes."""
    found = current_partition(testnet.dir)
    if found is None:
        raise UsageError("no partition is open")
    for name in found.configured_on:
        path = _config_path(testnet, name)
        path.write_text(_strip_partition(path.read_text()))
    (testnet.dir / PARTITION_FILE).unlink()
    synced, restarted = _apply(testnet, found.configured_on)
    return Partition(found.side_a, found.side_b, found.configured_on, synced, restarted)


def sync_faults(testnet: Testnet, name: str) -> bool | None:
    """Replace a running node's live fault layer by the `[faults]` table of its node.toml. True: done;
    False: the node has no `faults` RPC; None: it did not answer."""
    table = tomllib.loads(_config_path(testnet, name).read_text()).get("faults") or {}
    try:
        testnet.call(name, "faults", timeout_s=SYNC_TIMEOUT_S, table=table)
    except RpcCallError as error:
        return False if "unknown method" in str(error) else None
    except OSError:
        return None
    return True


def _apply(testnet: Testnet, names: list[str]) -> tuple[list[str], list[str]]:
    """Sync the running, unpaused nodes among `names` with their config; restart those without the
    RPC. Returns (synced, restarted)."""
    synced, restarted = [], []
    for name in names:
        record = testnet.record(name)
        if record.pid is None or record.paused or not pid_alive(record.pid):
            continue
        done = sync_faults(testnet, name)
        if done:
            synced.append(name)
        elif done is False:
            testnet.stop(name)
            testnet.start(name)
            restarted.append(name)
    return synced, restarted


def _config_path(testnet: Testnet, name: str) -> Path:
    return Path(testnet.record(name).home) / "config" / "node.toml"


def _node_id(testnet: Testnet, name: str) -> str:
    return node_id_of(bytes.fromhex(testnet.record(name).public_key)).hex()


def _strip_partition(text: str) -> str:
    """The config text without a block between BEGIN_MARK and END_MARK (kept intact otherwise)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside = False
    for line in lines:
        if line.strip() == BEGIN_MARK:
            inside = True
            continue
        if inside:
            inside = line.strip() != END_MARK
            continue
        out.append(line)
    return "".join(out).rstrip("\n") + "\n"
