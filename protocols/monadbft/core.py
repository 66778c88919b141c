"""`MonadCore`: the sans-IO MonadBFT state machine (DESIGN.md core contract)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from hedgerow.protocols.actions import Action, InvariantViolation
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.monadbft.certificates import Verifier, qc_of
from hedgerow.protocols.monadbft.commit import CommitMixin
from hedgerow.protocols.monadbft.leader import LeaderFn, make_leader
from hedgerow.protocols.monadbft.messages import (
    QC,
    AdvanceRound,
    Block,
    BlockRequest,
    BlockResponse,
    EvidenceMsg,
    EvidenceQuery,
    NoEndorseMsg,
    Proposal,
    RoundRecovery,
    TimeoutMsg,
    TxMsg,
    VoteMsg,
)
from hedgerow.protocols.monadbft.pacemaker import PacemakerMixin
from hedgerow.protocols.monadbft.params import Params, ValidatorSet
from hedgerow.protocols.monadbft.proposer import ProposerMixin
from hedgerow.protocols.monadbft.records import Checkpoint, Voted
from hedgerow.protocols.monadbft.sync import SyncMixin
from hedgerow.protocols.monadbft.txpool import PayloadSource
from hedgerow.protocols.monadbft.voting import VotingMixin
from hedgerow.protocols.wire import DecodeError, decode

LOCAL_DELIVERIES_MAX = 100_000


class MonadCore(PacemakerMixin, VotingMixin, ProposerMixin, CommitMixin, SyncMixin):
    """One validator's MonadBFT core. See the package docstring for the contract."""

    def __init__(
        self,
        index: int,
        key: SigningKey,
        validators: ValidatorSet,
        chain_id: str,
        params: Params | None = None,
        *,
        leader: LeaderFn | None = None,
        verifier: Verifier | None = None,
        payload_source: PayloadSource | None = None,
        checkpoint: Checkpoint | None = None,
        blocks: Iterable[Block] = (),
    ) -> None:
        params = params or Params()
        super().__init__(
            index,
            key,
            validators,
            chain_id,
            params,
            leader or make_leader(validators, chain_id, params.leader_election),
            verifier or Verifier(),
            payload_source,
        )
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            Proposal: self.on_proposal,
            VoteMsg: self.on_vote,
            TimeoutMsg: self.on_timeout,
            AdvanceRound: self.on_advance_round,
            RoundRecovery: self.on_round_recovery,
            NoEndorseMsg: self.on_no_endorse,
            BlockRequest: self.on_block_request,
            BlockResponse: self.on_block_response,
            TxMsg: self.on_tx,
            EvidenceMsg: self.on_evidence,
            EvidenceQuery: self.on_evidence_query,
        }
        if checkpoint is not None:
            self._restore(checkpoint, blocks)

    # ------------------------------------------------------------------ the contract
    def start(self, now: int) -> list[Action]:
        return self._run(now, self._start)

    def on_message(self, sender: int, message: object, now: int) -> list[Action]:
        handler = self._handlers.get(type(message))
        if handler is None or not self.validators.known(sender):
            self.stats.add("unknown_message")
            return []
        return self._run(now, lambda: handler(sender, message))

    def on_timer(self, timer: Hashable, now: int) -> list[Action]:
        if not isinstance(timer, tuple) or len(timer) != 2:
            return []
        kind, value = timer
        if kind == "round":
            return self._run(now, lambda: self.on_round_timer(value))
        if kind == "vote":
            return self._run(now, lambda: self.on_vote_timer(value))
        if kind == "sync":
            return self._run(now, lambda: self.on_sync_timer(value))
        return []

    def submit_tx(self, tx: bytes, now: int) -> tuple[str, list[Action]]:
        """A client transaction: ('ok' | 'duplicate' | 'mempool_full' | 'invalid_tx', actions)."""
        result: list[str] = []
        actions = self._run(now, lambda: result.append(self.submit(tx)))
        return result[0], actions

    # ------------------------------------------------------------------ internals
    def _run(self, now: int, body: Callable[[], None]) -> list[Action]:
        self._now = max(self._now, now)
        self._out = []
        body()
        handled = 0
        while self._local:
            sender, message = self._local.popleft()
            handler = self._handlers[type(message)]
            handler(sender, message)
            handled += 1
            if handled > LOCAL_DELIVERIES_MAX:
                raise InvariantViolation("self-delivery loop")
        out = self._out
        self._out = []
        return out

    def _start(self) -> None:
        if self._restored:
            self._resume()
            return
        self._dirty = True
        self._persist()
        self._set_timer(("round", self.current_round), self._now + self.params.round_timer_ms)
        self.try_propose()

    def _restore(self, checkpoint: Checkpoint, blocks: Iterable[Block]) -> None:
        checkpoint.check()
        self.highest_vote = checkpoint.highest_vote
        self.highest_ne_round = checkpoint.highest_ne_round
        self.highest_ne_tip = checkpoint.highest_ne_tip
        self.highest_propose = checkpoint.highest_propose
        self.highest_recovery_request = checkpoint.highest_recovery_request
        self.high_qc = checkpoint.high_qc
        self.high_tip = checkpoint.high_tip
        self.high_cert = checkpoint.high_cert
        try:
            if checkpoint.last_timeout is not None:
                self.set_last_timeout(decode(checkpoint.last_timeout, expected=TimeoutMsg))
            if checkpoint.last_vote is not None:
                self.set_last_vote(decode(checkpoint.last_vote, expected=VoteMsg))
        except DecodeError as error:
            raise InvariantViolation(f"bad checkpoint: {error}") from None
        self.my_votes = dict(checkpoint.my_votes)
        self.spec_final = dict(checkpoint.spec_final)
        stored = list(blocks) + list(checkpoint.blocks)
        try:
            self.tree.load(stored, checkpoint.root)
        except KeyError as error:
            raise InvariantViolation(f"bad store: {error}") from None
        self.durable = set(self.tree.blocks)
        self.current_round = self.high_cert.round + 1
        self.restart_round = self.current_round
        self._restored = True
        self._dirty = False

    def _resume(self) -> None:
        r = self.current_round
        self.stats.add("restarts")
        self._set_timer(("round", r), self._now + self.timer_for(self.high_cert))
        if self.last_timeout is not None and self.last_timeout.info.round == r:
            self.phase_one = True
            self._broadcast(self.last_timeout)
        if self.last_vote is not None and self.last_vote.vote.round == r:
            self._send_vote(self.last_vote, self._vote_targets(r))
        revoted = []
        for block_id, anchor in self.spec_final.items():
            block = self.tree.get(block_id)
            if block is not None and block_id not in self.tree.committed:
                revoted.append(Voted(block, self._own_round_qc(anchor), anchor))
        self._deliver(list(revoted))
        for qc in (qc_of(self.high_cert), self.high_qc):
            if not self.tree.has(qc.block_id):
                self.start_sync(qc.block_id, qc.signers)
            else:
                self.sync_ancestors(qc.block_id)
        self.try_propose()

    def _own_round_qc(self, anchor: bytes) -> tuple[QC, ...]:
        """The anchor's own-round QC if the store still shows it (high_qc or a child's parent QC)."""
        block = self.tree.get(anchor)
        if block is None:
            return ()
        own_round = block.tip.header.block_round
        candidates = [self.high_qc] + [child.tip.header.parent_qc for child in self.tree.blocks.values()
                                       if child.tip.header.parent_qc.block_id == anchor]
        return next(((qc,) for qc in candidates if qc.block_id == anchor and qc.round == own_round), ())

    # ------------------------------------------------------------------ read-only views
    @property
    def root_id(self) -> bytes:
        return self.tree.root_id

    @property
    def finalized_height(self) -> int:
        return self.tree.root_meta.height
