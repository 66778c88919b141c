"""The checks at the end of a scenario, on data gathered over RPC from the live nodes.

Everything goes through the invariant checker the simulator uses (`testnet/invariants.py`):
every honest node's committed chain is fed as FINALIZED events (block id, parent, round, author,
txs, the two-QC proof), its signed log as signed statements, so agreement (identical committed
prefixes), the ledger digest, validity and signer safety are the simulator's checks. On top:
- every acknowledged tx (a node answered `final` at height h) is in the chain exactly once, at h,
  and no tx of the scenario's blocks is in the chain twice (a repeat is a violation even when the
  ledger rejects it by its nonce; `duplicates` counts them for the report);
- the grassroots ledger invariants: the committed txs replayed through the ledger's invariant
  `Monitor` reproduce every node's state hash at every height and break no invariant;
- no honest node double-signed, also from the votes every node received (`votes_seen`).
Violations by nodes the scenario made Byzantine are not violations: they are reported as observed
misbehaviour (the proof that the perturbation happened).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hedgerow.testnet.checks import check_signer_safety
from hedgerow.testnet.invariants import InvariantChecker, Violation
from hedgerow.testnet.launcher import Testnet

PAGE = 256


@dataclass(frozen=True)
class ChainBlock:
    height: int
    block_id: bytes
    parent_id: bytes
    block_round: int
    author: int
    timestamp_ms: int
    txs: tuple[bytes, ...]
    state_hash: bytes
    proof: list[dict[str, Any]] | None


@dataclass
class Evidence:
    chains: dict[str, list[ChainBlock]] = field(default_factory=dict)
    signed: dict[str, list[list[Any]]] = field(default_factory=dict)
    votes_seen: dict[str, list[list[Any]]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    index_of: dict[str, int] = field(default_factory=dict)
    app: str = "kv"
    errors: list[str] = field(default_factory=list)


def fetch_chain(testnet: Testnet, name: str) -> list[ChainBlock]:
    from hedgerow.node.consensus import decode_proof
    from hedgerow.protocols.monadbft import messages as m
    from hedgerow.protocols.wire import decode

    hashes: dict[int, bytes] = {}
    start = 1
    while True:
        rows = testnet.call(name, "finalized", start=start, count=1000, timeout_s=20.0)
        if not rows:
            break
        for row in rows:
            hashes[int(row["height"])] = bytes(row["state_hash"])
        start = int(rows[-1]["height"]) + 1
    out: list[ChainBlock] = []
    start = 1
    while True:
        rows = testnet.call(name, "blocks", start=start, count=PAGE, timeout_s=20.0)
        if not rows:
            break
        for row in rows:
            block = decode(bytes(row["block"]), expected=m.Block)
            header = block.tip.header
            proof = None
            with contextlib.suppress(Exception):
                certs = decode_proof(bytes(row["proof"]))
                if len(certs) == 2 and all(isinstance(c, m.QC) for c in certs):
                    proof = [
                        {"block_id": c.block_id, "round": c.round, "signers": list(c.signers)} for c in certs
                    ]
            out.append(
                ChainBlock(
                    int(row["height"]),
                    block.block_id,
                    header.parent_qc.block_id,
                    header.block_round,
                    header.author,
                    header.timestamp_ms,
                    tuple(block.txs),
                    hashes.get(int(row["height"]), b""),
                    proof,
                )
            )
        start = out[-1].height + 1
    return out


def gather(testnet: Testnet, honest: list[str], reachable: list[str]) -> Evidence:
    """Chains and signed logs of the honest nodes; votes seen and status of every reachable one."""
    evidence = Evidence()
    for name in reachable:
        try:
            status = testnet.call(name, "status", timeout_s=5.0)
            evidence.statuses[name] = status
            if status.get("index") is not None:
                evidence.index_of[name] = int(status["index"])
            evidence.app = str(status.get("app", evidence.app))
            evidence.votes_seen[name] = testnet.call(name, "votes_seen", timeout_s=10.0)
            if name in honest:
                evidence.chains[name] = fetch_chain(testnet, name)
                evidence.signed[name] = testnet.call(name, "signed_log", timeout_s=10.0)
        except Exception as error:  # noqa: BLE001 - an unreachable honest node is itself reported
            evidence.errors.append(f"{name}: could not gather its state ({error})")
    return evidence


def tx_hash(tx: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(tx).digest()


def run_checks(
    evidence: Evidence,
    *,
    byzantine: set[str],
    submitted: set[bytes],
    acknowledged: dict[bytes, int],
    start_height: int,
    validators: int,
    exempt: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[Violation], list[str]]:
    """(violations, observed byzantine misbehaviour). `exempt`: nodes made Byzantine by earlier
    scenarios on this testnet (their old signed statements conflict by design)."""
    f = (validators - 1) // 3
    byz_index = {evidence.index_of[n] for n in byzantine | exempt if n in evidence.index_of}
    checker = InvariantChecker(quorum=validators - f, exempt_signers=byz_index)
    for chain in evidence.chains.values():
        for block in chain:
            if block.height <= start_height:
                for tx in block.txs:
                    checker.submitted(tx_hash(tx))
    for tx in submitted:
        checker.submitted(tx)
    for name, chain in sorted(evidence.chains.items()):
        for block in chain:
            checker.finalized(
                name,
                block.height,
                block.block_id,
                block.parent_id,
                block.block_round,
                block.author,
                [tx_hash(tx) for tx in block.txs],
                block.proof,
                block.timestamp_ms,
            )
    for name, rows in evidence.signed.items():
        index = evidence.index_of.get(name, name)
        for kind, round_, digest in rows:
            if kind in ("vote", "proposal", "timeout"):
                checker.signed(index, str(kind), int(round_), bytes(digest))
    violations = list(checker.finish())
    violations += [Violation("gather", text) for text in evidence.errors]
    executed: dict[bytes, list[tuple[int, bool]]] | None = None
    if evidence.app == "grassroots":
        replayed, executed = _ledger_replay(evidence)
        violations += replayed
    violations += _acknowledged(evidence, acknowledged, executed)
    violations += _included_twice(evidence, start_height, acknowledged)
    safety, observed = _signer_safety(evidence, byzantine, exempt)
    violations += safety
    return violations, observed


def longest(evidence: Evidence) -> list[ChainBlock]:
    return max(evidence.chains.values(), key=len, default=[])


def duplicates(evidence: Evidence, above: int = 0) -> int:
    """Txs of blocks above height `above` included more than once in the longest honest chain."""
    seen: Counter[bytes] = Counter(tx_hash(tx) for block in longest(evidence) for tx in block.txs)
    mine = {tx_hash(tx) for block in longest(evidence) if block.height > above for tx in block.txs}
    return sum(1 for digest in mine if seen[digest] > 1)


def _acknowledged(
    evidence: Evidence, acknowledged: dict[bytes, int], executed: dict[bytes, list[tuple[int, bool]]] | None
) -> list[Violation]:
    """Each acknowledged tx is committed at the height the node reported and appears exactly once
    (with the grassroots ledger the report also says how many times it took effect)."""
    chain = longest(evidence)
    where: dict[bytes, list[int]] = {}
    for block in chain:
        for tx in block.txs:
            where.setdefault(tx_hash(tx), []).append(block.height)
    out: list[Violation] = []
    for digest, height in sorted(acknowledged.items(), key=lambda item: item[1]):
        found = where.get(digest, [])
        short = digest.hex()[:12]
        if not found:
            out.append(
                Violation(
                    "acknowledged",
                    f"tx {short} acknowledged final at height {height} is not in the committed chain (lost)",
                )
            )
        elif found[0] != height:
            out.append(
                Violation(
                    "acknowledged",
                    f"tx {short} acknowledged at height {height} was committed first at height {found[0]}",
                )
            )
        elif len(found) > 1:
            effects = sum(ok for _, ok in executed.get(digest, [])) if executed is not None else None
            took = "" if effects is None else f", took effect {effects} times"
            out.append(
                Violation(
                    "acknowledged",
                    f"tx {short} is in the committed chain {len(found)} times (heights {found}{took})",
                )
            )
    return out


def _included_twice(evidence: Evidence, above: int, acknowledged: dict[bytes, int]) -> list[Violation]:
    """Every tx of a block above height `above` is in the longest honest chain exactly once (the
    acknowledged ones are reported by `_acknowledged`), even when the ledger rejects the repeat."""
    where: dict[bytes, list[int]] = {}
    for block in longest(evidence):
        for tx in block.txs:
            where.setdefault(tx_hash(tx), []).append(block.height)
    out: list[Violation] = []
    for digest, heights in where.items():
        if len(heights) > 1 and heights[-1] > above and digest not in acknowledged:
            out.append(
                Violation(
                    "duplicate", f"tx {digest.hex()[:12]} is in the committed chain at heights {heights}"
                )
            )
    return out


def _ledger_replay(evidence: Evidence) -> tuple[list[Violation], dict[bytes, list[tuple[int, bool]]]]:
    from hedgerow.protocols.grassroots.app import GrassrootsApp
    from hedgerow.protocols.grassroots.codes import Code
    from hedgerow.protocols.grassroots.invariants import Monitor
    from hedgerow.protocols.grassroots.params import Params

    chain_id = next(iter(evidence.statuses.values()), {}).get("chain_id", "hedgerow-testnet")
    app = GrassrootsApp(Params.from_genesis(str(chain_id), None))
    monitor = Monitor(app.ledger, per_tx_state=False)
    out: list[Violation] = []
    executed: dict[bytes, list[tuple[int, bool]]] = {}
    by_height: dict[int, dict[str, bytes]] = {}
    for name, chain in evidence.chains.items():
        for block in chain:
            by_height.setdefault(block.height, {})[name] = block.state_hash
    for block in longest(evidence):
        now = app.block_now(block.height, block.timestamp_ms / 1000.0)
        result = monitor.apply_block(block.height, now, list(block.txs))
        for tx, receipt in zip(block.txs, result.receipts, strict=False):
            executed.setdefault(tx_hash(tx), []).append((block.height, receipt.code == Code.OK))
        expected = app.app_hash()
        wrong = sorted(n for n, h in by_height.get(block.height, {}).items() if h and h != expected)
        if wrong:
            out.append(
                Violation(
                    "ledger",
                    f"height {block.height}: state hash of {', '.join(wrong)} differs "
                    "from replaying the committed txs",
                )
            )
            break
    out += [Violation("ledger", text) for text in monitor.violations[:20]]
    return out, executed


def _signer_safety(
    evidence: Evidence, byzantine: set[str], exempt: set[str] | frozenset[str]
) -> tuple[list[Violation], list[str]]:
    found = check_signer_safety(evidence.signed, evidence.votes_seen, evidence.index_of)
    violations: list[Violation] = []
    counts: Counter[str] = Counter()
    for text in found:
        subject = text.split(" ", 1)[0]
        if subject in byzantine:
            counts[subject + (" double-voted" if " voted " in text else " double-signed")] += 1
        elif subject not in exempt:
            violations.append(Violation("signer_safety", text, subject))
    observed = [f"{what} in {count} rounds (seen by honest peers)" for what, count in sorted(counts.items())]
    return violations, observed


def misbehaviour_seen(evidence: Evidence, honest: list[str]) -> Counter[str]:
    """What honest nodes counted that only a misbehaving peer causes."""
    seen: Counter[str] = Counter()
    for name in honest:
        status = evidence.statuses.get(name) or {}
        seen["evidence"] += int(status.get("evidence") or 0)
        for reason, count in (status.get("dropped") or {}).items():
            if reason.startswith("closed_") and reason not in (
                "closed_broken",
                "closed_local_close",
                "closed_idle_timeout",
                "closed_eof",
            ):
                seen[reason] += int(count)
    return seen
