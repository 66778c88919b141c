"""Byzantine behaviours as wrappers around an honest MonadBFT core.

A wrapper runs the honest core and rewrites what it sends (or what it hears): it keeps the core's
safety state honest-looking while lying on the wire, which is how real attackers with a stock
client behave. Every wrapper signs with the validator's real key.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from hedgerow.protocols.actions import Broadcast, Send, SetTimer
from hedgerow.protocols.monadbft import MonadCore
from hedgerow.protocols.monadbft.messages import (
    D_PROPOSAL,
    D_TIMEOUT,
    D_TIP,
    D_VOTE,
    QC,
    TC,
    Header,
    Proposal,
    TimeoutInfo,
    TimeoutMsg,
    Tip,
    Vote,
    VoteMsg,
    payload_hash_of,
    sign_payload_proposal,
    sign_payload_timeout,
    sign_payload_tip,
    sign_payload_vote,
    tc_hash_of,
)


class Wrapper:
    """Delegates to the honest core; subclasses override `outgoing` / `incoming`."""

    name = "honest"

    def __init__(self, inner: MonadCore) -> None:
        self.inner = inner

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def start(self, now: int) -> list[Any]:
        return self.outgoing(self.inner.start(now), now)

    def on_message(self, sender: int, message: object, now: int) -> list[Any]:
        if not self.incoming(sender, message, now):
            return []
        return self.outgoing(self.inner.on_message(sender, message, now), now)

    def on_timer(self, timer: Hashable, now: int) -> list[Any]:
        return self.outgoing(self.inner.on_timer(timer, now), now)

    def submit_tx(self, tx: bytes, now: int) -> tuple[str, list[Any]]:
        status, actions = self.inner.submit_tx(tx, now)
        return status, self.outgoing(actions, now)

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        return actions

    def incoming(self, sender: int, message: object, now: int) -> bool:
        return True

    # helpers -------------------------------------------------------------------------------
    def own_proposal(self, action: Any) -> Proposal | None:
        message = getattr(action, "message", None)
        if isinstance(message, Proposal) and message.proposer == self.inner.index:
            return message
        return None

    def own_vote(self, action: Any) -> VoteMsg | None:
        message = getattr(action, "message", None)
        if isinstance(message, VoteMsg) and message.signer == self.inner.index:
            return message
        return None

    def sign_vote(self, block_id: bytes, round_: int) -> VoteMsg:
        core = self.inner
        sig = core.sign(D_VOTE, sign_payload_vote(block_id, round_))
        return VoteMsg(Vote(block_id, round_), core.index, sig)

    def sign_proposal(
        self, round_: int, header: Header, fresh_cert: Any, txs: tuple[bytes, ...], tc: Any
    ) -> Proposal:
        core = self.inner
        tip = Tip(header, core.sign(D_TIP, sign_payload_tip(header)), fresh_cert)
        sig = core.sign(D_PROPOSAL, sign_payload_proposal(round_, tip.block_id, tc_hash_of(tc)))
        return Proposal(round_, tip, txs, tc, core.index, sig)

    def sibling(self, p: Proposal) -> Proposal:
        """A second block for the same round and parent: txs reversed, timestamp + 1."""
        header = p.tip.header
        txs = tuple(reversed(p.txs))
        twin = Header(
            header.block_round,
            header.parent_qc,
            header.author,
            header.height,
            header.timestamp_ms + 1,
            payload_hash_of(txs),
        )
        return self.sign_proposal(p.proposal_round, twin, p.tip.fresh_cert, txs, p.last_round_tc)


class SilentLeader(Wrapper):
    """Votes and times out, never proposes (its core never even builds a proposal)."""

    name = "silent-leader"

    def __init__(self, inner: MonadCore) -> None:
        super().__init__(inner)
        inner.try_propose = lambda: None  # type: ignore[method-assign]

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        return [a for a in actions if self.own_proposal(a) is None]


class EagerTimeoutSilentLeader(SilentLeader):
    """Never proposes, and times out at once in its own rounds (S20's node 6)."""

    name = "silent-eager-leader"

    def __init__(self, inner: MonadCore) -> None:
        super().__init__(inner)
        self.hurried: set[int] = set()

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        out = []
        for action in super().outgoing(actions, now):
            if (
                isinstance(action, SetTimer)
                and isinstance(action.timer, tuple)
                and action.timer[0] == "round"
                and self.inner.leader(action.timer[1]) == self.inner.index
                and action.timer[1] not in self.hurried
            ):
                self.hurried.add(action.timer[1])
                action = SetTimer(action.timer, now)
            out.append(action)
        return out


class Equivocator(Wrapper):
    """In its rounds, signs two blocks on one parent: the first to `first`, the second to `second`
    (validator indices); optionally casts no vote in those rounds."""

    name = "equivocator"

    def __init__(
        self,
        inner: MonadCore,
        first: tuple[int, ...],
        second: tuple[int, ...],
        rounds: set[int] | None = None,
        vote: bool = False,
    ) -> None:
        super().__init__(inner)
        self.first = first
        self.second = second
        self.rounds = rounds
        self.vote = vote
        self.siblings: dict[int, tuple[bytes, bytes]] = {}
        if not vote:
            honest_vote = inner._try_vote

            def try_vote(p: Proposal) -> None:
                if not self._targets(p.proposal_round):
                    honest_vote(p)

            inner._try_vote = try_vote  # type: ignore[method-assign]

    def _targets(self, round_: int) -> bool:
        if self.rounds is None:
            return bool(self.inner.leader(round_) == self.inner.index)
        return round_ in self.rounds

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        out: list[Any] = []
        for action in actions:
            proposal = self.own_proposal(action)
            fresh = proposal is not None and proposal.tip.header.block_round == proposal.proposal_round
            if (
                proposal is not None
                and fresh
                and isinstance(action, Broadcast)
                and self._targets(proposal.proposal_round)
            ):
                other = self.sibling(proposal)
                self.siblings[proposal.proposal_round] = (proposal.tip.block_id, other.tip.block_id)
                out.extend(Send(v, proposal) for v in self.first if v != self.inner.index)
                out.extend(Send(v, other) for v in self.second if v != self.inner.index)
            else:
                out.append(action)
        return out


class DoubleVoter(Wrapper):
    """In chosen rounds (all if None) sends its vote and then a vote for another block id."""

    name = "double-voter"

    def __init__(
        self, inner: MonadCore, rounds: set[int] | None = None, forged_id: bytes | None = None
    ) -> None:
        super().__init__(inner)
        self.rounds = rounds
        self.forged_id = forged_id

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        out: list[Any] = []
        for action in actions:
            out.append(action)
            vote = self.own_vote(action)
            if (
                vote is not None
                and isinstance(action, Send)
                and (self.rounds is None or vote.vote.round in self.rounds)
            ):
                forged = self.forged_id or bytes(reversed(vote.vote.block_id))
                out.append(Send(action.to, self.sign_vote(forged, vote.vote.round)))
        return out


class TailForker(Wrapper):
    """As leader after a happy round, ignores its predecessor's block: proposes a fresh block on the
    grandparent QC (no TC can justify it, so honest replicas reject it as malformed)."""

    name = "tail-forker"

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        out: list[Any] = []
        core = self.inner
        for action in actions:
            proposal = self.own_proposal(action)
            if proposal is None or not isinstance(action, Broadcast) or proposal.last_round_tc is not None:
                out.append(action)
                continue
            parent = core.tree.get(proposal.tip.header.parent_qc.block_id)
            if parent is None:
                out.append(action)
                continue
            grand_qc = parent.tip.header.parent_qc
            grand = core.tree.meta(grand_qc.block_id)
            if grand is None:
                out.append(action)
                continue
            header = Header(
                proposal.proposal_round,
                grand_qc,
                core.index,
                grand.height + 1,
                max(now, grand.timestamp_ms),
                payload_hash_of(proposal.txs),
            )
            out.append(
                Broadcast(self.sign_proposal(proposal.proposal_round, header, None, proposal.txs, None))
            )
        return out


BEHAVIOURS = {
    "silent-leader": SilentLeader,
    "equivocator": Equivocator,
    "double-voter": DoubleVoter,
    "tail-forker": TailForker,
}


def sign_timeout(
    core: MonadCore, round_: int, extend: Tip | QC, last_round_cert: QC | TC | None, tip_vote: bool = False
) -> TimeoutMsg:
    """A TimeoutMsg of `round_` reporting `extend`, signed with the core's key (no state change)."""
    if isinstance(extend, QC):
        info = TimeoutInfo(round_, extend.round, 0)
    else:
        info = TimeoutInfo(round_, extend.header.parent_qc.round, extend.header.block_round)
    tip_vote_sig = None
    if tip_vote and isinstance(extend, Tip):
        tip_vote_sig = core.sign(D_VOTE, sign_payload_vote(extend.block_id, round_))
    return TimeoutMsg(
        info,
        core.index,
        core.sign(D_TIMEOUT, sign_payload_timeout(info)),
        extend,
        tip_vote_sig,
        last_round_cert,
    )


def strip_tip_vote(message: TimeoutMsg) -> TimeoutMsg:
    return TimeoutMsg(
        message.info, message.signer, message.sig, message.high_extend, None, message.last_round_cert
    )
