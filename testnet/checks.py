"""Checks over a live testnet: gather committed logs, signed statements and votes over RPC, and
report violations (agreement, equal state hashes, signer safety). Each returns a list of
human-readable violations, empty when everything holds; scenario runners (issue 9) call them
after every perturbation.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hedgerow.testnet.launcher import Testnet

LOG_PAGE = 1000


def committed_log(testnet: Testnet, name: str, upto: int | None = None) -> list[tuple[int, bytes, bytes]]:
    """(height, block id, state hash) of every finalized block a node executed, in order."""
    out: list[tuple[int, bytes, bytes]] = []
    start = 1
    while upto is None or start <= upto:
        rows = testnet.call(name, "finalized", start=start, count=LOG_PAGE, timeout_s=10.0)
        if not rows:
            break
        for row in rows:
            if upto is not None and row["height"] > upto:
                return out
            out.append((int(row["height"]), bytes(row["block_id"]), bytes(row["state_hash"])))
        start = out[-1][0] + 1
    return out


def check_agreement(logs: dict[str, list[tuple[int, bytes, bytes]]]) -> list[str]:
    """Identical block ids and state hashes at every height any two nodes both executed, and no
    gaps (each log is 1..k)."""
    violations: list[str] = []
    by_height: dict[int, dict[str, tuple[bytes, bytes]]] = defaultdict(dict)
    for name, log in logs.items():
        for expected, (height, block_id, state_hash) in enumerate(log, start=1):
            if height != expected:
                violations.append(f"{name}: gap in its committed log at height {expected} (found {height})")
                break
            by_height[height][name] = (block_id, state_hash)
    for height in sorted(by_height):
        entries = by_height[height]
        blocks = {block_id for block_id, _ in entries.values()}
        hashes = {state_hash for _, state_hash in entries.values()}
        if len(blocks) > 1:
            violations.append(f"agreement: height {height} has {len(blocks)} different blocks: "
                              + ", ".join(f"{n}={b.hex()[:12]}" for n, (b, _) in sorted(entries.items())))
        elif len(hashes) > 1:
            violations.append(f"state: height {height} has {len(hashes)} different state hashes")
    return violations


def check_signer_safety(signed: dict[str, list[list[Any]]], votes_seen: dict[str, list[list[Any]]],
                        index_of: dict[str, int]) -> list[str]:
    """Per signer and round at most one vote id and one timeout, from each node's persisted signed
    log (across its restarts) and from the votes every node received."""
    violations: list[str] = []
    for name, rows in signed.items():
        seen: dict[tuple[str, int], bytes] = {}
        for kind, round_, digest in rows:
            key = (str(kind), int(round_))
            if key[0] not in ("vote", "timeout", "proposal", "ne"):
                continue
            old = seen.setdefault(key, bytes(digest))
            if old != bytes(digest):
                violations.append(f"{name} signed two different {kind}s in round {round_}")
    received: dict[tuple[int, int], set[bytes]] = defaultdict(set)
    for rows in votes_seen.values():
        for signer, round_, block_id in rows:
            received[(int(signer), int(round_))].add(bytes(block_id))
    names = {index: name for name, index in index_of.items()}
    for (signer, round_), ids in sorted(received.items()):
        if len(ids) > 1:
            violations.append(f"{names.get(signer, signer)} voted {len(ids)} blocks in round {round_} "
                              "(seen by peers)")
    return violations


def gather_signer_evidence(testnet: Testnet, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    # Votes first: a vote seen by a peer must then be in the signer log read afterwards.
    votes = {name: testnet.call(name, "votes_seen", timeout_s=10.0) for name in names}
    signed = {name: testnet.call(name, "signed_log", timeout_s=10.0) for name in names}
    return signed, votes


def validator_indices(testnet: Testnet) -> dict[str, int]:
    """Name -> consensus index (validators sorted by node id, spec §2)."""
    out = {}
    for name in testnet.running():
        info = testnet.call(name, "status")
        if info.get("index") is not None:
            out[name] = int(info["index"])
    return out
