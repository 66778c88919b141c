"""`CoreState`: every field of the MonadBFT core and the output helpers the handler mixins share.

Output discipline: handlers append actions to `self._out`; messages addressed to this node go to
`self._local` and are handled before the entry point returns (self-delivery is internal, spec §2).
`_persist()` emits `Persist(Checkpoint)` when the safety state changed; every signed send goes
through `_send(..., signed=True)` / `_broadcast(..., signed=True)`, which persist first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.actions import (
    Action,
    Broadcast,
    Deliver,
    Evidence,
    Persist,
    Send,
    SetTimer,
)
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.monadbft.blocktree import BlockTree
from hedgerow.protocols.monadbft.certificates import GENESIS_QC, CertChecker, Verifier
from hedgerow.protocols.monadbft.evidence import EvidenceIndex
from hedgerow.protocols.monadbft.leader import LeaderFn
from hedgerow.protocols.monadbft.messages import (
    NEC,
    QC,
    TC,
    Block,
    EvidenceMsg,
    EvidenceProof,
    Proposal,
    TimeoutMsg,
    Tip,
    VoteMsg,
    statement_bytes,
)
from hedgerow.protocols.monadbft.params import Params, ValidatorSet
from hedgerow.protocols.monadbft.records import Checkpoint, Delivery
from hedgerow.protocols.monadbft.txpool import PayloadSource, TxPool
from hedgerow.protocols.wire import encode


@dataclass(slots=True)
class SyncRequest:
    """An outstanding block request: peers in the spec's order, the next one to ask."""

    peers: list[int]
    next_peer: int = 0
    sent: int = 0
    count: int = 1


@dataclass(slots=True)
class PacedVote:
    vote: VoteMsg
    targets: tuple[int, ...]


@dataclass(slots=True)
class Stats:
    """Monotone counters the simulator and the node's metrics read (never used for decisions)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


class CoreState:
    """Fields and output helpers; the protocol rules live in the mixins that build `MonadCore`."""

    def __init__(
        self,
        index: int,
        key: SigningKey,
        validators: ValidatorSet,
        chain_id: str,
        params: Params,
        leader: LeaderFn,
        verifier: Verifier,
        payload_source: PayloadSource | None,
    ) -> None:
        if not validators.known(index) or validators.keys[index] != key.public:
            raise ValueError("the signing key must be validator `index`'s key")
        self.index = index
        self.key = key
        self.validators = validators
        self.chain_id = chain_id
        self.params = params
        self.leader = leader
        self.verifier = verifier
        self.certs = CertChecker(validators, chain_id, leader, verifier)
        self.payload_source = payload_source
        # Safety state (persisted in every Checkpoint).
        self.highest_vote = 0
        self.highest_ne_round = 0
        self.highest_ne_tip: bytes | None = None
        self.highest_propose = 0
        self.highest_recovery_request = 0
        self.high_qc: QC = GENESIS_QC
        self.high_tip: Tip | None = None
        self.high_cert: QC | TC = GENESIS_QC
        self.last_timeout: TimeoutMsg | None = None
        self.last_vote: VoteMsg | None = None
        self._last_timeout_bytes: bytes | None = None
        self._last_vote_bytes: bytes | None = None
        self.my_votes: dict[int, bytes] = {}
        self.spec_final: dict[bytes, bytes] = {}
        self.tree = BlockTree()
        self.durable: set[bytes] = set()
        self._durable_pending: dict[bytes, Block] = {}
        # Pacemaker (volatile).
        self.current_round = 1
        self.phase_one = False
        self.timeouts: dict[int, TimeoutMsg] = {}
        self.bad_senders: set[int] = set()
        # Votes and QCs (volatile).
        self.votes: dict[tuple[int, bytes], dict[int, bytes]] = {}
        self.first_votes: dict[int, dict[int, bytes]] = {}
        self.qc_rounds: set[int] = set()
        self.qcs_by_block: dict[bytes, dict[int, QC]] = {}
        self.pending_vote: Proposal | None = None
        self.paced_vote: PacedVote | None = None
        self.last_vote_sent_ms: int | None = None
        # No-endorsement state (leader, current round).
        self.ne_votes: dict[int, dict[int, bytes]] = {}
        self.ne_seen: set[int] = set()
        self.necs: dict[int, NEC] = {}
        self.handled_proposal: dict[int, bytes] = {}
        self._indexed_tips: dict[Tip, None] = {}
        self.sync_requests: dict[bytes, SyncRequest] = {}
        self.evidence = EvidenceIndex()
        self.pool = TxPool(params.max_mempool_txs, params.max_mempool_bytes, params.finalized_tx_memory)
        self.stats = Stats()
        self.restart_round: int | None = None
        self._restored = False
        self._dirty = True
        self._now = 0
        self._out: list[Action] = []
        self._local: deque[tuple[int, object]] = deque()

    # ------------------------------------------------------------------ derived
    @property
    def root_round(self) -> int:
        return self.tree.root_meta.block_round

    def timer_for(self, cert: QC | TC) -> int:
        """R3 and §8(a): QC-entered rounds 3δ, TC with QC extend 4δ, TC with Tip extend 6δ (+vp+lp)."""
        if isinstance(cert, QC):
            return self.params.round_timer_ms
        if isinstance(cert.high_extend, Tip):
            return self.params.recovery_timer_ms
        return self.params.tc_timer_ms

    def abstaining(self) -> bool:
        return self.params.restart_abstain_current_round and self.restart_round == self.current_round

    # ------------------------------------------------------------------ records
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            highest_vote=self.highest_vote,
            highest_ne_round=self.highest_ne_round,
            highest_ne_tip=self.highest_ne_tip,
            highest_propose=self.highest_propose,
            highest_recovery_request=self.highest_recovery_request,
            root=self.tree.root_id,
            high_tip=self.high_tip,
            high_qc=self.high_qc,
            high_cert=self.high_cert,
            last_timeout=self._last_timeout_bytes,
            last_vote=self._last_vote_bytes,
            my_votes=dict(self.my_votes),
            spec_final=dict(self.spec_final),
            blocks=tuple(self._durable_pending.values()),
        )

    def set_last_vote(self, vote: VoteMsg) -> None:
        self.last_vote = vote
        self._last_vote_bytes = encode(vote)
        self._dirty = True

    def set_last_timeout(self, timeout: TimeoutMsg) -> None:
        self.last_timeout = timeout
        self._last_timeout_bytes = encode(timeout)
        self._dirty = True

    def make_durable(self, block_id: bytes) -> None:
        """The next Checkpoint carries this block and its non-durable uncommitted ancestors."""
        for block in reversed(self.tree.path_from_root(block_id)):
            if block.block_id in self.durable:
                break
            self._durable_pending[block.block_id] = block
            self._dirty = True

    def sign(self, domain: str, payload: Any) -> bytes:
        return self.key.sign_raw(statement_bytes(domain, self.chain_id, payload))

    # ------------------------------------------------------------------ output helpers
    def _persist(self) -> None:
        if not self._dirty and not self._durable_pending:
            return
        record = self.checkpoint()
        record.check()
        self._out.append(Persist(record))
        self.durable.update(self._durable_pending)
        self._durable_pending = {}
        self._dirty = False

    def _send(self, to: int, msg: object, *, signed: bool = False) -> None:
        if signed:
            self._persist()
        if to == self.index:
            self._local.append((self.index, msg))
        else:
            self._out.append(Send(to, msg))

    def _broadcast(self, msg: object, *, signed: bool = False, local: bool = True) -> None:
        if signed:
            self._persist()
        self._out.append(Broadcast(msg))
        if local:
            self._local.append((self.index, msg))

    def _set_timer(self, timer: Hashable, at_ms: int) -> None:
        self._out.append(SetTimer(timer, at_ms))

    def _deliver(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        self._persist()  # root and spec_final are durable before anything is delivered
        for delivery in deliveries:
            self._out.append(Deliver(delivery))

    def _reject(self, reason: str) -> None:
        self.stats.add(reason)

    def _report(self, proof: EvidenceProof | None) -> None:
        """New evidence: one Evidence action plus one EvidenceMsg broadcast (spec R11)."""
        if proof is None:
            return
        self.stats.add("evidence")
        self._out.append(Evidence(proof))
        self._broadcast(EvidenceMsg(proof), local=False)

    # ------------------------------------------------------------------ cross-mixin hooks
    def observe_qc(self, qc: QC) -> None:
        raise NotImplementedError

    def process_cert(self, cert: QC | TC) -> None:
        raise NotImplementedError

    def commit_check(self, qc: QC) -> None:
        raise NotImplementedError

    def try_propose(self) -> None:
        raise NotImplementedError

    def try_vote_pending(self) -> None:
        raise NotImplementedError

    def local_timeout(self) -> None:
        raise NotImplementedError

    def start_sync(self, block_id: bytes, hint: tuple[int, ...], count: int = 0) -> None:
        raise NotImplementedError

    def add_block(self, block: Block) -> None:
        raise NotImplementedError

    def sync_ancestors(self, block_id: bytes) -> None:
        raise NotImplementedError

    def on_vote_signature(self, signer: int, block_id: bytes, round_: int, sig: bytes) -> None:
        raise NotImplementedError

    def index_tip(self, tip: Tip) -> bool:
        raise NotImplementedError
