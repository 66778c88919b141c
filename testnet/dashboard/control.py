"""Steering a testnet: node actions and partitions, shared by the dashboard and the CLI.

Node actions are the `Testnet` methods `hedgerow testnet kill|pause|resume|start|stop` calls.

A partition goes through the nodes' fault layer (`net/faults.py`): a `[[faults.partition]]` entry in
a node's `config/node.toml` cuts every link between the two sides, and since the transport checks
partitions on the receiving end as well, configuring it on one end of a link cuts that link both
ways. So `partition` writes the entry into the homes of the smaller side only and restarts those of
them that run (graceful stop, start from disk); `heal` removes the entries and restarts them again.
The open partition is recorded in `DIR/partition.json`, so any process (CLI or dashboard) can heal it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError
from hedgerow.protocols.crypto import node_id_of
from hedgerow.testnet.launcher import Testnet, pid_alive

NODE_ACTIONS = ("kill", "pause", "resume", "start", "stop")
PARTITION_FILE = "partition.json"
BEGIN_MARK = "# -- hedgerow testnet partition (written by `hedgerow testnet partition`; removed by heal) --"
END_MARK = "# -- end of hedgerow testnet partition --"


def node_action(testnet: Testnet, action: str, name: str) -> str:
    """Run one node action (the same calls as `hedgerow testnet ACTION NAME`); returns what happened."""
    if action not in NODE_ACTIONS:
        raise UsageError(f"unknown node action {action!r} (have: {', '.join(NODE_ACTIONS)})")
    if action == "start":
        return f"started {name} (pid {testnet.start(name)})"
    if action == "stop":
        return f"stopped {name} (exit {testnet.stop(name)})"
    getattr(testnet, action)(name)
    return f"{action} {name}: done"


@dataclass(frozen=True)
class Partition:
    side_a: list[str]
    side_b: list[str]
    configured_on: list[str]  # the homes that carry the partition entry

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def current_partition(directory: Path) -> Partition | None:
    path = Path(directory) / PARTITION_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Partition(list(raw["side_a"]), list(raw["side_b"]), list(raw["configured_on"]))


def partition(testnet: Testnet, side_a: list[str], side_b: list[str] | None = None) -> Partition:
    """Cut every link between `side_a` and `side_b` (default: every other node); restarts the running
    nodes of the smaller side so their fault layer picks the cut up."""
    if current_partition(testnet.dir) is not None:
        raise UsageError("a partition is already open (heal it first: hedgerow testnet heal --dir DIR)")
    for name in side_a + (side_b or []):
        testnet.record(name)
    side_b = side_b if side_b else [n for n in testnet.nodes if n not in side_a]
    if not side_a or not side_b or set(side_a) & set(side_b):
        raise UsageError("a partition needs two disjoint, non-empty sides")
    configured_on = side_a if len(side_a) <= len(side_b) else side_b
    ids = {name: _node_id(testnet, name) for name in side_a + side_b}
    block = [BEGIN_MARK, "[[faults.partition]]", f"a = {json.dumps([ids[n] for n in side_a])}",
             f"b = {json.dumps([ids[n] for n in side_b])}", "symmetric = true", END_MARK, ""]
    for name in configured_on:
        path = _config_path(testnet, name)
        path.write_text(_strip_partition(path.read_text()).rstrip("\n") + "\n\n" + "\n".join(block))
    result = Partition(list(side_a), list(side_b), list(configured_on))
    (testnet.dir / PARTITION_FILE).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    _restart_running(testnet, configured_on)
    return result


def heal(testnet: Testnet) -> Partition:
    """Remove the open partition from the homes that carry it and restart those that run."""
    found = current_partition(testnet.dir)
    if found is None:
        raise UsageError("no partition is open")
    for name in found.configured_on:
        path = _config_path(testnet, name)
        path.write_text(_strip_partition(path.read_text()))
    (testnet.dir / PARTITION_FILE).unlink()
    _restart_running(testnet, found.configured_on)
    return found


def _restart_running(testnet: Testnet, names: list[str]) -> None:
    for name in names:
        pid = testnet.record(name).pid
        if pid is not None and pid_alive(pid):
            testnet.stop(name)
            testnet.start(name)


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
