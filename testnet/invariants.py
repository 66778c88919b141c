"""The one invariant checker (spec §6), fed plain data by the simulator now and by real testnets later.

Inputs are plain values (ints, strings, bytes or hex ids, lists, dicts), one event at a time, so a
testnet harness can feed it committed logs, votes and evidence gathered over RPC. Node names and
ids are opaque hashable keys (an instance index in the simulator, a node id string in a testnet).

Event methods (call in the order events happened; `time_ms` is optional everywhere):
- `submitted(tx_hash)`: a client submitted this tx (validity).
- `finalized(node, height, block_id, parent_id, block_round, author, tx_hashes, proof, time_ms)`:
  a FINALIZED delivery; `proof` = [parent QC, child QC], each a dict with `block_id`, `round`,
  `signers` (and `sigs` when `qc_verifier` is given).
- `voted(node, block_id, anchor_id, anchor_round, anchor_author, qc_round)`: a VOTED delivery.
- `spec_revert(node, block_id, anchor_id, anchor_round, anchor_author)`: a SPEC_REVERT delivery.
- `evidence(node, kind, offender, round)`: evidence held by an honest node.
- `signed(signer, kind, round, value, tip=None)`: a statement an honest signer's key produced
  (kind `vote` value = block id; `timeout` value = (high_qc_round, high_tip_round); `proposal`
  value = block id; `ne` value = tip_qc_round, tip = the TC tip id).
- `vote_seen(signer, block_id, round, block_round)`: any vote by anyone (tail-fork resistance).
- `round_entered(node, round)`, `timeout_sent(node, round, rank, floor_rank)`,
  `round_timer_fired(node, round, leader_ok)`.
- `finish(end_ms)`: end-of-run checks (revert evidence, tail-fork, liveness). Returns violations.

Each check appends a `Violation`; `violations` is the list so far.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

Rank = tuple[int, int, int]
LEADER_EVIDENCE = ("EQUIVOCATION_HEADER", "EQUIVOCATION_PROPOSAL")


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    detail: str
    node: Any = None
    time_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "detail": self.detail,
            "node": self.node,
            "time_ms": self.time_ms,
        }


def short(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()[:8]
    return str(value)[:8]


@dataclass(slots=True)
class _NodeLog:
    heights: dict[int, Any] = field(default_factory=dict)
    last_height: int = 0
    last_round: int = 0
    digest: bytes = b""
    final_times: list[int] = field(default_factory=list)
    max_final_round: int = 0


class InvariantChecker:
    """§6.1-6.5, 6.6, 6.7, 6.9, 6.12 over the nodes it is told are honest."""

    def __init__(
        self,
        *,
        stakes: dict[Hashable, int] | None = None,
        quorum: int | None = None,
        leader: Callable[[int], Hashable] | None = None,
        qc_verifier: Callable[[dict[str, Any]], bool] | None = None,
        exempt_signers: Iterable[Hashable] = (),
        check_validity: bool = True,
    ) -> None:
        self.stakes = stakes
        self.quorum = quorum
        self.leader = leader
        self.qc_verifier = qc_verifier
        self.exempt_signers = set(exempt_signers)
        self.check_validity = check_validity
        self.violations: list[Violation] = []
        self._submitted: set[Any] = set()
        self._by_height: dict[int, tuple[Any, Any, Any]] = {}  # height -> (block_id, node, digest)
        self._nodes: dict[Any, _NodeLog] = {}
        self._finalized_ids: dict[Any, int] = {}  # block id -> height
        self._statements: dict[tuple[Any, str, int], Any] = {}
        self._voted_ids: dict[Any, set[Any]] = {}  # signer -> block ids voted
        self._vote_rounds: dict[tuple[Any, int], Any] = {}
        self._reverts: list[tuple[Any, Any, int, Any]] = []
        self._evidence: set[tuple[str, Any, int]] = set()
        self._votes_for: dict[tuple[Any, int], dict[Any, None]] = {}  # (block, round) -> signers
        self._own_round: dict[Any, int] = {}  # block id -> block round
        self._seen_violation: set[tuple[str, Any]] = set()
        self.liveness_from_ms: int | None = None
        self.liveness_bound_ms: int | None = None
        self.liveness_nodes: set[Any] = set()
        self.duplicate_txs = 0
        self._node_txs: dict[Any, set[Any]] = {}

    # ------------------------------------------------------------------ helpers
    def _violate(
        self, invariant: str, detail: str, node: Any = None, time_ms: int | None = None, once: Any = None
    ) -> None:
        if once is not None:
            key = (invariant, once)
            if key in self._seen_violation:
                return
            self._seen_violation.add(key)
        self.violations.append(Violation(invariant, detail, node, time_ms))

    def _log(self, node: Any) -> _NodeLog:
        log = self._nodes.get(node)
        if log is None:
            log = self._nodes[node] = _NodeLog()
        return log

    def _stake(self, signers: Iterable[Any]) -> int:
        if self.stakes is None:
            return len(set(signers))
        return sum(self.stakes.get(s, 0) for s in set(signers))

    # ------------------------------------------------------------------ events
    def submitted(self, tx_hash: Any) -> None:
        self._submitted.add(tx_hash)

    def finalized(
        self,
        node: Any,
        height: int,
        block_id: Any,
        parent_id: Any,
        block_round: int,
        author: Any,
        tx_hashes: Iterable[Any],
        proof: list[dict[str, Any]] | None = None,
        time_ms: int | None = None,
    ) -> None:
        log = self._log(node)
        if height in log.heights:
            if log.heights[height] != block_id:
                self._violate(
                    "no_revert",
                    f"height {height} finalized {short(log.heights[height])} then {short(block_id)}",
                    node,
                    time_ms,
                )
            return
        if height != log.last_height + 1:
            self._violate(
                "agreement", f"finalized height {height} after {log.last_height} (gap)", node, time_ms
            )
        if log.last_height and log.heights.get(log.last_height) != parent_id:
            self._violate(
                "agreement",
                f"height {height} parent {short(parent_id)} is not the block finalized at {log.last_height}",
                node,
                time_ms,
            )
        digest = hashlib.sha256(log.digest)
        seen_here = self._txs_seen(node)
        for tx in tx_hashes:
            if self.check_validity and tx not in self._submitted:
                self._violate(
                    "validity",
                    f"tx {short(tx)} in block {short(block_id)} was never submitted",
                    node,
                    time_ms,
                    once=("tx", tx),
                )
            if tx in seen_here:
                self.duplicate_txs += 1
                continue
            seen_here.add(tx)
            digest.update(tx if isinstance(tx, bytes) else str(tx).encode())
        log.digest = digest.digest()
        log.heights[height] = block_id
        log.last_height = height
        log.max_final_round = max(log.max_final_round, block_round)
        if time_ms is not None:
            log.final_times.append(time_ms)
        first = self._by_height.get(height)
        if first is None:
            self._by_height[height] = (block_id, node, log.digest)
        elif first[0] != block_id:
            self._violate(
                "agreement",
                f"height {height}: node {node} finalized {short(block_id)}, node "
                f"{first[1]} finalized {short(first[0])}",
                node,
                time_ms,
                once=("height", height),
            )
        elif first[2] != log.digest:
            self._violate(
                "ledger",
                f"height {height}: ledger digests differ between {node} and {first[1]}",
                node,
                time_ms,
                once=("digest", height),
            )
        self._finalized_ids[block_id] = height
        self._own_round.setdefault(block_id, block_round)
        if self.leader is not None and author != self.leader(block_round):
            self._violate(
                "ledger",
                f"block {short(block_id)} author {author} is not leader({block_round})",
                node,
                time_ms,
                once=("author", block_id),
            )
        if proof is not None:
            self._check_commit_proof(node, block_id, proof, time_ms)

    def _txs_seen(self, node: Any) -> set[Any]:
        return self._node_txs.setdefault(node, set())

    def _check_commit_proof(
        self, node: Any, block_id: Any, proof: list[dict[str, Any]], time_ms: int | None
    ) -> None:
        if len(proof) != 2 or proof[1]["round"] != proof[0]["round"] + 1:
            self._violate(
                "justified", f"block {short(block_id)}: proof rounds are not consecutive", node, time_ms
            )
            return
        for qc in proof:
            if qc["round"] == 0:
                continue
            if self.quorum is not None and self._stake(qc["signers"]) < self.quorum:
                self._violate(
                    "justified",
                    f"block {short(block_id)}: QC round {qc['round']} below quorum",
                    node,
                    time_ms,
                )
            if self.qc_verifier is not None and not self.qc_verifier(qc):
                self._violate(
                    "justified",
                    f"block {short(block_id)}: QC round {qc['round']} does not verify",
                    node,
                    time_ms,
                )

    def voted(
        self,
        node: Any,
        block_id: Any,
        anchor_id: Any,
        anchor_round: int,
        anchor_author: Any,
        qc_round: int,
        time_ms: int | None = None,
    ) -> None:
        if qc_round != anchor_round:
            self._violate(
                "speculative",
                f"VOTED {short(block_id)} on a QC of round {qc_round} for an anchor of round {anchor_round}",
                node,
                time_ms,
            )

    def spec_revert(
        self,
        node: Any,
        block_id: Any,
        anchor_id: Any,
        anchor_round: int,
        anchor_author: Any,
        time_ms: int | None = None,
    ) -> None:
        if block_id in self._log(node).heights.values():
            self._violate("no_revert", f"SPEC_REVERT of finalized block {short(block_id)}", node, time_ms)
        self._reverts.append((node, block_id, anchor_round, anchor_author))

    def evidence(self, node: Any, kind: str, offender: Any, round_: int) -> None:
        self._evidence.add((kind, offender, round_))

    def signed(
        self, signer: Any, kind: str, round_: int, value: Any, tip: Any = None, time_ms: int | None = None
    ) -> None:
        if signer in self.exempt_signers:
            return
        key = (signer, kind, round_)
        first = self._statements.get(key)
        if first is None:
            self._statements[key] = value
        elif first != value:
            self._violate(
                "signer_safety",
                f"signer {signer} signed two {kind}s in round {round_}",
                signer,
                time_ms,
                once=key,
            )
        if kind == "vote":
            self._voted_ids.setdefault(signer, set()).add(value)
            self._vote_rounds[(signer, round_)] = value
        elif kind == "ne":
            if (signer, round_) in self._vote_rounds:
                self._violate(
                    "signer_safety",
                    f"signer {signer} sent an NE after voting in round {round_}",
                    signer,
                    time_ms,
                    once=("ne-after-vote", signer, round_),
                )
            if tip is not None and tip in self._voted_ids.get(signer, set()):
                self._violate(
                    "signer_safety",
                    f"signer {signer} sent an NE for tip {short(tip)} it voted",
                    signer,
                    time_ms,
                    once=("ne-voted", signer, round_),
                )

    def vote_seen(self, signer: Any, block_id: Any, round_: int, block_round: int | None) -> None:
        if block_round is None or block_round != round_:
            return
        self._own_round[block_id] = block_round
        self._votes_for.setdefault((block_id, round_), {})[signer] = None

    def round_entered(self, node: Any, round_: int, time_ms: int | None = None) -> None:
        log = self._log(node)
        if round_ < log.last_round:
            self._violate("monotone_rounds", f"round went from {log.last_round} to {round_}", node, time_ms)
        log.last_round = max(log.last_round, round_)

    def timeout_sent(
        self, node: Any, round_: int, rank: Rank, floor_rank: Rank, time_ms: int | None = None
    ) -> None:
        if rank < floor_rank:
            self._violate(
                "monotone_reports", f"round {round_} timeout reports {rank} below {floor_rank}", node, time_ms
            )

    def expect_liveness(self, nodes: Iterable[Any], from_ms: int, bound_ms: int) -> None:
        """After `from_ms`, each node finalizes a new block at least every `bound_ms`."""
        self.liveness_nodes = set(nodes)
        self.liveness_from_ms = from_ms
        self.liveness_bound_ms = bound_ms

    def round_timer_fired(self, node: Any, round_: int, time_ms: int, strict: bool) -> None:
        """§6.7: with `strict` (the round is led by a running honest node and entered after GST plus
        one round), a round timer firing is a liveness violation."""
        if strict:
            self._violate(
                "liveness",
                f"round {round_} timer fired though its leader is honest and running",
                node,
                time_ms,
                once=("timer", node, round_),
            )

    # ------------------------------------------------------------------ end of run
    def has_leader_evidence(self, author: Any, round_: int) -> bool:
        return any((kind, author, round_) in self._evidence for kind in LEADER_EVIDENCE)

    def finish(self, end_ms: int | None = None) -> list[Violation]:
        for node, block_id, anchor_round, anchor_author in self._reverts:
            if not self.has_leader_evidence(anchor_author, anchor_round):
                self._violate(
                    "speculative",
                    f"SPEC_REVERT of {short(block_id)} without equivocation evidence "
                    f"against ({anchor_author}, {anchor_round})",
                    node,
                    once=("revert", block_id),
                )
        self._check_tail_forks()
        if end_ms is not None:
            self._check_liveness(end_ms)
        return self.violations

    def _check_tail_forks(self) -> None:
        if self.quorum is None:
            return
        best = max((log for log in self._nodes.values()), key=lambda log: log.max_final_round, default=None)
        if best is None:
            return
        finalized = set(best.heights.values())
        for (block_id, round_), signers in self._votes_for.items():
            if round_ >= best.max_final_round or self._stake(signers) < self.quorum:
                continue
            author = self.leader(round_) if self.leader is not None else None
            if author is not None and self.has_leader_evidence(author, round_):
                continue
            if block_id not in finalized:
                self._violate(
                    "tail_fork",
                    f"block {short(block_id)} voted by a quorum in its round {round_} was "
                    f"not finalized though round {best.max_final_round} was",
                    once=("tail", block_id),
                )

    def _check_liveness(self, end_ms: int) -> None:
        start, bound = self.liveness_from_ms, self.liveness_bound_ms
        if start is None or bound is None or end_ms - start < bound:
            return
        for node in sorted(self.liveness_nodes, key=str):
            times = [t for t in self._log(node).final_times if t >= start]
            previous = start
            for time_ms in times + [end_ms]:
                if time_ms - previous > bound:
                    self._violate(
                        "liveness",
                        f"no new finalized block in {time_ms - previous} ms (bound {bound} ms) "
                        f"after {previous} ms",
                        node,
                        time_ms,
                        once=("gap", node),
                    )
                    break
                previous = time_ms

    # ------------------------------------------------------------------ views
    def finalized_heights(self) -> dict[Any, int]:
        return {node: log.last_height for node, log in self._nodes.items()}

    def finalized_ids(self, node: Any) -> list[Any]:
        log = self._log(node)
        return [log.heights[h] for h in sorted(log.heights)]
