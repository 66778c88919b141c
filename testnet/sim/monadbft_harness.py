"""MonadBFT under the simulator: builds validators and cores, stores for crash/restart, feeds the
invariant checker with plain data from every honest node's actions, and counts what scenarios assert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.actions import Broadcast, Deliver, Evidence, Send
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.monadbft import (
    QC,
    TC,
    AdvanceRound,
    Block,
    Checkpoint,
    Finalized,
    MonadCore,
    NoEndorseMsg,
    Params,
    Proposal,
    RoundRecovery,
    SpecRevert,
    TimeoutMsg,
    ValidatorSet,
    Verifier,
    Voted,
    VoteMsg,
)
from hedgerow.protocols.monadbft.certificates import CertChecker, rank_info, rank_qc
from hedgerow.protocols.monadbft.leader import LeaderFn, make_leader
from hedgerow.protocols.monadbft.messages import BlockResponse, NoTipCert, Tip
from hedgerow.protocols.monadbft.txpool import tx_hash
from hedgerow.testnet.invariants import InvariantChecker, Violation
from hedgerow.testnet.sim.engine import TIMER, Network, Node, Simulator

CHAIN_ID = "hedgerow-sim"
_KEYS: dict[int, SigningKey] = {}
VERIFY_MEMO: dict[tuple[bytes, bytes, bytes], bool] = {}


def key_of(validator: int) -> SigningKey:
    key = _KEYS.get(validator)
    if key is None:
        key = _KEYS[validator] = SigningKey.from_label(f"v{validator}")
    return key


def shared_verifier(cert_memo: dict[object, None] | None = None) -> Verifier:
    """Signature results shared by every core of the process; certificate results shared by the
    cores of one simulation (same validators, chain id and leader schedule)."""
    return Verifier(VERIFY_MEMO, memo_max=1 << 19, cert_memo=cert_memo)


class MonadStore:
    """What a node's SQLite store would hold: the latest Checkpoint and every block written."""

    def __init__(self) -> None:
        self.checkpoint: Checkpoint | None = None
        self.blocks: dict[bytes, Block] = {}
        self.checkpoints = 0

    def write(self, record: object) -> None:
        if isinstance(record, Checkpoint):
            self.checkpoint = record
            self.checkpoints += 1
            for block in record.blocks:
                self.blocks[block.block_id] = block
        elif isinstance(record, Block):
            self.blocks[record.block_id] = record


def describe(item: object) -> str:
    """One compact token string per message or action (the trace)."""
    message = getattr(item, "message", None)
    if message is not None:
        item = message
    value = getattr(item, "value", None)
    if isinstance(item, Deliver) and value is not None:
        block = value.block
        return f"{value.kind} h{block.tip.header.height} {block.block_id.hex()[:8]}"
    if isinstance(item, Evidence):
        proof = item.proof
        return f"EVIDENCE {proof.kind} {proof.offender} r{proof.round}"
    if isinstance(item, Proposal):
        return f"Proposal r{item.proposal_round} {item.tip.block_id.hex()[:8]}"
    if isinstance(item, VoteMsg):
        return f"Vote r{item.vote.round} s{item.signer} {item.vote.block_id.hex()[:8]}"
    if isinstance(item, TimeoutMsg):
        return (
            f"Timeout r{item.info.round} s{item.signer} {item.info.high_qc_round}/{item.info.high_tip_round}"
        )
    if isinstance(item, NoEndorseMsg):
        return f"NE r{item.round} s{item.signer}"
    return type(item).__name__


def qc_dict(qc: QC) -> dict[str, Any]:
    return {"block_id": qc.block_id, "round": qc.round, "signers": list(qc.signers), "sigs": list(qc.sigs)}


@dataclass
class Setup:
    """A scenario's configuration (everything but the script)."""

    n: int = 4
    stakes: tuple[int, ...] | None = None
    params: Params = field(default_factory=lambda: Params(delta_ms=100, local_processing_ms=100))
    network: Network = field(default_factory=Network)
    twins: dict[int, int] = field(default_factory=dict)  # validator -> extra instances
    leader: LeaderFn | None = None
    unchecked_signers: set[int] = field(default_factory=set)  # twins: signer safety not checked
    wrappers: dict[int, Callable[[MonadCore], Any]] = field(default_factory=dict)  # iid -> wrapper
    not_started: set[int] = field(default_factory=set)  # iids that never start
    tx_interval_ms: int = 50
    tx_until_ms: int | None = None
    check_validity: bool = True
    params_by_iid: dict[int, Params] = field(default_factory=dict)


class MonadSim:
    """n validators (plus twins) running MonadCore under the seeded simulator, with the checker."""

    def __init__(self, seed: int, setup: Setup, keep_trace: bool = False) -> None:
        self.seed = seed
        self.setup = setup
        n = setup.n
        stakes = setup.stakes or tuple(1 for _ in range(n))
        self.validators = ValidatorSet(tuple(key_of(v).public for v in range(n)), stakes)
        self.leader = setup.leader or make_leader(self.validators, CHAIN_ID, setup.params.leader_election)
        self.verifier = shared_verifier({})
        nodes: list[Node] = []
        for v in range(n):
            for copy in range(1 + setup.twins.get(v, 0)):
                iid = len(nodes)
                name = chr(ord("A") + v) + ("'" * copy) if n <= 26 else f"v{v}" + "'" * copy
                node = Node(iid, v, name, None, store=MonadStore())
                node.core = self._wrap(node, self.make_core(node))
                node.honest = iid not in setup.wrappers
                node.checked = node.honest and v not in setup.twins
                nodes.append(node)
        self.nodes = nodes
        self.sim = Simulator(seed, nodes, setup.network, describe=describe, keep_trace=keep_trace)
        self.certs = CertChecker(self.validators, CHAIN_ID, self.leader, self.verifier)
        self.checker = InvariantChecker(
            stakes={v: s for v, s in enumerate(stakes)},
            quorum=self.validators.quorum,
            leader=self.leader,
            qc_verifier=self._qc_ok,
            exempt_signers=set(setup.twins) | setup.unchecked_signers,
            check_validity=setup.check_validity,
        )
        self.block_info: dict[bytes, tuple[int, int]] = {}  # id -> (block_round, parent qc round)
        self.counts: dict[str, int] = {}
        self.tc_rounds: set[int] = set()
        self.reproposal_rounds: set[int] = set()
        self.nec_rounds: set[int] = set()
        self.voted_ids: set[bytes] = set()
        self.evidence_keys: set[tuple[str, int, int]] = set()
        self.evidence_at: dict[int, set[tuple[str, int, int]]] = {node.iid: set() for node in nodes}
        self.deliveries: dict[int, list[Any]] = {node.iid: [] for node in nodes}
        self.round_entered_at: dict[int, dict[int, int]] = {node.iid: {} for node in nodes}
        self.timer_firings: list[tuple[int, int, int]] = []  # (iid, round, time)
        self.round_hooks: list[Callable[[Node, int, int], None]] = []
        self.strict_liveness_from_ms: int | None = None
        self.faulty_leaders: set[int] = {self.nodes[iid].validator for iid in setup.wrappers}
        self.faulty_leaders |= {self.nodes[iid].validator for iid in setup.not_started}
        self._pre_high_qc: dict[int, int] = {}
        self._last_vote_rank: dict[int, tuple[int, int, int]] = {}
        self._rounds: dict[int, int] = {}
        self._timeouts_seen: dict[tuple[int, int], TimeoutMsg] = {}
        self._tx_counter = 0
        self.persist_violations: list[Violation] = []
        self.violation_steps: list[int] = []
        self.handling: dict[int, object] = {}  # iid -> message being handled (for round-entry causes)
        self.entered_via: dict[tuple[int, int], str] = {}  # (iid, round) -> what made it enter
        self.qcs_seen: dict[int, set[bytes]] = {}  # round -> block ids with a QC on the wire
        self.qc_signer_sets: set[tuple[int, ...]] = set()
        self.revert_anchor_authors: set[int] = set()
        sim = self.sim
        sim.action_observers.append(self._observe_action)
        sim.pre_observers.append(self._before_call)
        sim.step_observers.append(self._after_step)

    # ------------------------------------------------------------------ construction
    def make_core(
        self, node: Node, checkpoint: Checkpoint | None = None, blocks: list[Block] | None = None
    ) -> MonadCore:
        params = self.setup.params_by_iid.get(node.iid, self.setup.params)
        return MonadCore(
            node.validator,
            key_of(node.validator),
            self.validators,
            CHAIN_ID,
            params,
            leader=self.leader,
            verifier=self.verifier,
            checkpoint=checkpoint,
            blocks=blocks or (),
        )

    def _wrap(self, node: Node, core: MonadCore) -> Any:
        wrapper = self.setup.wrappers.get(node.iid)
        return wrapper(core) if wrapper is not None else core

    def _qc_ok(self, qc: dict[str, Any]) -> bool:
        built = QC(qc["block_id"], qc["round"], tuple(qc["signers"]), tuple(qc["sigs"]))
        return self.certs.check_qc(built) is None

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def core(self, node: Node) -> MonadCore:
        core = node.core
        return core.inner if hasattr(core, "inner") else core  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ control
    def start(self, at_ms: int = 0) -> None:
        for node in self.nodes:
            if node.iid not in self.setup.not_started:
                self.sim.schedule(at_ms, lambda node=node: self.sim.start(node))
        if self.setup.tx_interval_ms > 0:
            self.sim.schedule(at_ms + 1, self._submit_tx)

    def _submit_tx(self) -> None:
        until = self.setup.tx_until_ms
        if until is not None and self.sim.now > until:
            return
        running = [node for node in self.nodes if node.alive and node.honest]
        if running:
            node = running[self.sim.rng.randrange(len(running))]
            self._tx_counter += 1
            tx = f"tx-{self.seed}-{self._tx_counter}".encode()
            self.checker.submitted(tx_hash(tx))
            status, actions = node.core.submit_tx(tx, self.sim.now)
            self.sim.execute(node, actions)
        if self.setup.tx_interval_ms > 0:
            self.sim.schedule(self.sim.now + self.setup.tx_interval_ms, self._submit_tx)

    def crash_at(self, node: Node, at_ms: int) -> None:
        self.sim.schedule(at_ms, lambda: self.sim.crash(node))

    def restart_now(self, node: Node) -> None:
        store: MonadStore = node.store
        core = self.make_core(node, store.checkpoint, list(store.blocks.values()))
        self.sim.restart(node, self._wrap(node, core))

    def restart_at(self, node: Node, at_ms: int) -> None:
        self.sim.schedule(at_ms, lambda: self.restart_now(node))

    def honest_running(self) -> list[Node]:
        return [node for node in self.nodes if node.alive and node.honest]

    def min_round(self) -> int:
        running = [self.core(node).current_round for node in self.honest_running() if node.checked]
        return min(running) if running else 0

    def max_round(self) -> int:
        return max((self.core(node).current_round for node in self.nodes if node.alive), default=0)

    def run_to_round(self, round_: int, max_ms: int = 10**9, max_steps: int | None = None) -> str:
        """Until every running honest (checked) node has entered `round_ + 1` ("to round R")."""
        return self.sim.run(until_ms=max_ms, max_steps=max_steps, stop=lambda: self.min_round() > round_)

    def run_for(self, duration_ms: int, max_steps: int | None = None) -> str:
        return self.sim.run(until_ms=self.sim.now + duration_ms, max_steps=max_steps)

    # ------------------------------------------------------------------ observation
    def _before_call(self, node: Node, kind: int, payload: Any) -> None:
        core = self.core(node)
        self.handling[node.iid] = payload
        self._pre_high_qc[node.iid] = core.high_qc.round
        if (
            kind == TIMER
            and isinstance(payload, tuple)
            and payload[0] == "round"
            and payload[1] == core.current_round
            and node.honest
        ):
            round_ = payload[1]
            self.timer_firings.append((node.iid, round_, self.sim.now))
            if node.checked:
                entered = self.round_entered_at[node.iid].get(round_, 0)
                leader = self.leader(round_)
                strict = (
                    self.strict_liveness_from_ms is not None
                    and entered >= self.strict_liveness_from_ms
                    and leader not in self.faulty_leaders
                    and all(n.alive for n in self.nodes if n.validator == leader)
                )
                self.checker.round_timer_fired(node.name, round_, self.sim.now, strict)

    def _after_step(self, node: Node | None) -> None:
        while len(self.violation_steps) < len(self.checker.violations):
            self.violation_steps.append(self.sim.steps)
        if node is None or not node.alive:
            return
        core = self.core(node)
        round_ = core.current_round
        previous = self._rounds.get(node.iid, 0)
        if round_ != previous:
            self._rounds[node.iid] = round_
            self.round_entered_at[node.iid][round_] = self.sim.now
            cause = self.handling.get(node.iid)
            self.entered_via[(node.iid, round_)] = (
                type(cause).__name__ if not isinstance(cause, tuple) else f"timer:{cause[0]}"
            )
            if node.checked:
                self.checker.round_entered(node.name, round_, self.sim.now)
            if isinstance(core.high_cert, TC) and core.high_cert.round == round_ - 1 and node.honest:
                self.tc_rounds.add(round_ - 1)
            for hook in self.round_hooks:
                hook(node, previous, round_)

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _observe_action(self, node: Node, action: Any) -> None:
        if isinstance(action, Send | Broadcast):
            self._observe_message(node, action.message)
        elif isinstance(action, Deliver):
            self._observe_delivery(node, action.value)
        elif isinstance(action, Evidence) and node.honest:
            proof = action.proof
            key = (proof.kind, proof.offender, proof.round)
            self.evidence_keys.add(key)
            self.evidence_at[node.iid].add(key)
            self.checker.evidence(node.name, proof.kind, proof.offender, proof.round)

    def _note_qc(self, qc: QC) -> None:
        self.qcs_seen.setdefault(qc.round, set()).add(qc.block_id)
        if qc.round and qc.signers not in self.qc_signer_sets:
            self.qc_signer_sets.add(qc.signers)

    def _observe_message(self, node: Node, message: object) -> None:
        v = node.validator
        now = self.sim.now
        if isinstance(message, AdvanceRound) and isinstance(message.cert, QC):
            self._note_qc(message.cert)
        if isinstance(message, Proposal):
            tip = message.tip
            self._note_qc(tip.header.parent_qc)
            self.block_info[tip.block_id] = (tip.header.block_round, tip.header.parent_qc.round)
            if message.proposer == v and node.honest:
                self._check_persisted(node, "proposal", message.proposal_round)
                self.checker.signed(v, "proposal", message.proposal_round, tip.block_id, time_ms=now)
                if tip.header.block_round < message.proposal_round:
                    self.reproposal_rounds.add(message.proposal_round)
                elif tip.fresh_cert is not None and not isinstance(tip.fresh_cert, NoTipCert):
                    self.nec_rounds.add(message.proposal_round)
        elif isinstance(message, VoteMsg) and message.signer == v:
            vote = message.vote
            info = self.block_info.get(vote.block_id)
            self.checker.vote_seen(v, vote.block_id, vote.round, info[0] if info else None)
            if node.honest:
                self._check_persisted(node, "vote", vote.round, vote.block_id)
                self.checker.signed(v, "vote", vote.round, vote.block_id, time_ms=now)
                if info is not None:
                    self._last_vote_rank[node.iid] = (info[0], 0, info[1])
        elif isinstance(message, TimeoutMsg) and message.signer == v:
            self._observe_timeout(node, message)
        elif isinstance(message, NoEndorseMsg) and message.signer == v and node.honest:
            self._check_persisted(node, "ne", message.round)
            self.checker.signed(
                v, "ne", message.round, message.tip_qc_round, tip=self.core(node).highest_ne_tip, time_ms=now
            )
        elif isinstance(message, RoundRecovery) and message.proposer == v and node.honest:
            self._check_persisted(node, "recovery", message.round)
        elif isinstance(message, BlockResponse):
            for block in message.blocks:
                header = block.tip.header
                self.block_info.setdefault(block.block_id, (header.block_round, header.parent_qc.round))

    def _observe_timeout(self, node: Node, message: TimeoutMsg) -> None:
        v = node.validator
        info = message.info
        extend = message.high_extend
        self._note_qc(extend if isinstance(extend, QC) else extend.header.parent_qc)
        if message.tip_vote_sig is not None and isinstance(extend, Tip):
            header = extend.header
            self.block_info.setdefault(extend.block_id, (header.block_round, header.parent_qc.round))
            self.checker.vote_seen(v, extend.block_id, info.round, header.block_round)
            if node.honest:
                self.checker.signed(v, "vote", info.round, extend.block_id, time_ms=self.sim.now)
        if not node.honest:
            return
        self._check_persisted(node, "timeout", info.round)
        if self._timeouts_seen.get((node.validator, info.round)) == message:
            return  # a re-broadcast of the same bytes (timer re-arm, restart)
        self._timeouts_seen[(node.validator, info.round)] = message
        self.checker.signed(
            v, "timeout", info.round, (info.high_qc_round, info.high_tip_round), time_ms=self.sim.now
        )
        floor = max(
            rank_qc(QC(b"", self._pre_high_qc.get(node.iid, 0), (), ())),
            self._last_vote_rank.get(node.iid, (0, 0, 0)),
        )
        self.checker.timeout_sent(
            node.name,
            info.round,
            rank_info(info.high_qc_round, info.high_tip_round),
            floor,
            time_ms=self.sim.now,
        )

    def _check_persisted(self, node: Node, kind: str, round_: int, block_id: bytes | None = None) -> None:
        """Persist before send: the store's latest Checkpoint already covers this statement."""
        checkpoint: Checkpoint | None = node.store.checkpoint
        ok = checkpoint is not None
        if checkpoint is not None:
            if kind == "vote":
                ok = (
                    checkpoint.highest_vote >= round_
                    and checkpoint.my_votes.get(round_, block_id) == block_id
                )
            elif kind == "timeout":
                ok = checkpoint.highest_vote >= round_ and checkpoint.last_timeout is not None
            elif kind == "proposal":
                ok = checkpoint.highest_propose >= round_
            elif kind == "ne":
                ok = checkpoint.highest_ne_round >= round_
            elif kind == "recovery":
                ok = checkpoint.highest_recovery_request >= round_
        if not ok:
            violation = Violation(
                "persist_before_send",
                f"{kind} of round {round_} left before its Checkpoint",
                node.name,
                self.sim.now,
            )
            self.persist_violations.append(violation)
            self.checker.violations.append(violation)

    def _observe_delivery(self, node: Node, value: Any) -> None:
        self.deliveries[node.iid].append(value)
        if not node.checked:
            return
        block = value.block
        header = block.tip.header
        now = self.sim.now
        if isinstance(value, Finalized):
            self._count("finalized_events")
            self.checker.finalized(
                node.name,
                header.height,
                block.block_id,
                header.parent_qc.block_id,
                header.block_round,
                header.author,
                [tx_hash(tx) for tx in block.txs],
                [qc_dict(qc) for qc in value.proof],
                time_ms=now,
            )
        elif isinstance(value, Voted):
            self.voted_ids.add(block.block_id)
            anchor = self._anchor(node, value.anchor)
            qc_round = value.proof[0].round if value.proof else anchor[0]
            self.checker.voted(node.name, block.block_id, value.anchor, anchor[0], anchor[1], qc_round, now)
        elif isinstance(value, SpecRevert):
            self._count("spec_reverts")
            anchor = self._anchor(node, value.anchor)
            self.revert_anchor_authors.add(anchor[1])
            self.checker.spec_revert(node.name, block.block_id, value.anchor, anchor[0], anchor[1], now)

    def _anchor(self, node: Node, anchor_id: bytes) -> tuple[int, int]:
        block = self.core(node).tree.get(anchor_id) or node.store.blocks.get(anchor_id)
        if block is None:
            return (-1, -1)
        return block.tip.header.block_round, block.tip.header.author

    # ------------------------------------------------------------------ results
    def finish(self) -> list[Violation]:
        return self.checker.finish(self.sim.now)

    def summary(self) -> dict[str, Any]:
        checked = [node for node in self.nodes if node.checked and node.iid not in self.setup.not_started]
        heights = [self.core(node).finalized_height for node in checked]
        timeouts = sum(self.core(node).stats.get("timeouts") for node in self.nodes if node.honest)
        return {
            "rounds": self.max_round(),
            "finalized": min(heights) if heights else 0,
            "finalized_max": max(heights) if heights else 0,
            "tcs": len(self.tc_rounds),
            "timeouts": timeouts,
            "timer_firings": len(self.timer_firings),
            "reproposals": len(self.reproposal_rounds),
            "necs": len(self.nec_rounds),
            "voted": len(self.voted_ids),
            "reverts": self.counts.get("spec_reverts", 0),
            "evidence": len(self.evidence_keys),
            "messages": sum(self.sim.sent.values()),
            "steps": self.sim.steps,
            "time_ms": self.sim.now,
        }
