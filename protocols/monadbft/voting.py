"""Replica side: proposals (spec R2, R5), votes and QCs (R6), AdvanceRound."""

from __future__ import annotations

from hedgerow.protocols.monadbft.certificates import build_qc
from hedgerow.protocols.monadbft.messages import (
    D_PROPOSAL,
    D_VOTE,
    QC,
    TC,
    AdvanceRound,
    Block,
    NoTipCert,
    Proposal,
    Tip,
    Vote,
    VoteMsg,
    payload_hash_of,
    sign_payload_proposal,
    sign_payload_tip,
    sign_payload_vote,
    tc_hash_of,
)
from hedgerow.protocols.monadbft.state import CoreState, PacedVote


class VotingMixin(CoreState):
    # ------------------------------------------------------------------ R2
    def proposal_error(self, p: Proposal) -> str | None:
        """R2 well-formedness; None when the proposal may be processed."""
        tip = p.tip
        header = tip.header
        if payload_hash_of(p.txs) != header.payload_hash:
            return "invalid_block"
        if p.proposer != self.leader(p.proposal_round) or not self.validators.known(p.proposer):
            return "invalid_proposal_leader"
        key = self.validators.keys[p.proposer]
        payload = sign_payload_proposal(p.proposal_round, tip.block_id, tc_hash_of(p.last_round_tc))
        if not self.verifier.verify(key, D_PROPOSAL, self.chain_id, payload, p.proposer_sig):
            return "invalid_proposal_leader"
        reason = self.certs.check_tip(tip)
        if reason is not None:
            return "invalid_cert" if reason == "invalid_sig" else reason  # or malformed / invalid_tc
        if header.block_round > p.proposal_round:
            return "malformed_proposal"
        parent = header.parent_qc
        tc = p.last_round_tc
        if p.proposal_round == parent.round + 1:
            return None if tc is None else "malformed_proposal"
        if tc is None or tc.round != p.proposal_round - 1:
            return "malformed_proposal"
        if self.certs.check_tc(tc) is not None:
            return "invalid_tc"
        extend = tc.high_extend
        fresh = header.block_round == p.proposal_round
        if isinstance(extend, QC):
            ok = fresh and parent == extend and isinstance(tip.fresh_cert, NoTipCert)
            return None if ok else "malformed_proposal"
        if tip.block_id == extend.block_id:
            return None  # re-proposal of the TC's high tip
        if (
            fresh
            and tip.fresh_cert is not None
            and not isinstance(tip.fresh_cert, NoTipCert)
            and parent.round == extend.header.parent_qc.round
        ):
            return None  # fresh sibling justified by an NEC
        return "malformed_proposal"

    def block_error(self, block: Block, reproposal: bool) -> str | None:
        """R5(7) checks that need no parent."""
        params = self.params
        if len(block.txs) > params.max_block_txs:
            return "invalid_block"
        size = 0
        seen: set[bytes] = set()
        for tx in block.txs:
            if len(tx) > params.max_tx_bytes or tx in seen:
                return "invalid_block"
            seen.add(tx)
            size += len(tx)
        if size > params.max_block_bytes:
            return "invalid_block"
        if not reproposal and block.tip.header.timestamp_ms > self._now + params.max_clock_skew_ms:
            return "invalid_block"
        return None

    # ------------------------------------------------------------------ R5
    def on_proposal(self, sender: int, p: Proposal) -> None:
        tip = p.tip
        self.index_tip(tip)
        reason = self.proposal_error(p)
        if reason is not None:
            self._reject(reason)
            return
        r = p.proposal_round
        if r <= self.root_round:
            self._reject("old_proposal")
            return
        self.observe_qc(tip.header.parent_qc)
        if p.last_round_tc is not None:
            self.process_cert(p.last_round_tc)
        if r > self.current_round:
            self._reject("future_proposal")
            return
        block_id = tip.block_id
        handled = self.handled_proposal.get(r)
        proof = self.evidence.note(
            "EQUIVOCATION_PROPOSAL",
            p.proposer,
            r,
            (block_id, tc_hash_of(p.last_round_tc)),
            sign_payload_proposal(r, block_id, tc_hash_of(p.last_round_tc)),
            p.proposer_sig,
        )
        self._report(proof)
        if handled is not None:
            if handled != block_id:
                self._reject("equivocating_proposal")
                return
            if (
                self.last_vote is not None
                and self.last_vote.vote == Vote(block_id, r)
                and r == self.current_round
                and self.paced_vote is None
            ):
                self._send_vote(self.last_vote, self._vote_targets(r))  # re-send, never re-sign
            return
        if proof is not None:
            return
        self.handled_proposal[r] = block_id
        block = p.block
        reason = self.block_error(block, reproposal=tip.header.block_round < r)
        if reason is not None:
            self._reject(reason)
            return
        self.add_block(block)
        if r == self.current_round:
            self.pending_vote = p
            self.try_vote_pending()

    def try_vote_pending(self) -> None:
        p = self.pending_vote
        if p is None:
            return
        r = p.proposal_round
        block_id = p.tip.block_id
        if r != self.current_round:
            self.pending_vote = None
            return
        if not self.tree.is_linked(block_id):
            if not self.tree.has(block_id):
                self.pending_vote = None  # the block was found invalid
            return
        self.pending_vote = None
        self._try_vote(p)

    def _try_vote(self, p: Proposal) -> None:
        r = p.proposal_round
        tip = p.tip
        tc = p.last_round_tc
        tc_tip = tc.high_extend.block_id if tc is not None and isinstance(tc.high_extend, Tip) else None
        if r <= self.highest_vote or (r == self.highest_ne_round and tc_tip != self.highest_ne_tip):
            self._reject("unsafe_vote")
            return
        if self.abstaining():
            self._reject("restart_abstain")
            return
        block_id = tip.block_id
        self.highest_vote = r
        self.my_votes[r] = block_id
        self.high_tip = tip if tip.header.block_round > self.high_qc.round else None
        sig = self.sign(D_VOTE, sign_payload_vote(block_id, r))
        vote = VoteMsg(Vote(block_id, r), self.index, sig)
        self.set_last_vote(vote)
        self.make_durable(block_id)
        self._persist()
        self.stats.add("votes")
        targets = self._vote_targets(r)
        pace = self.params.vote_pace_ms
        happy = tip.header.parent_qc.round + 1 == r
        if (
            pace > 0
            and happy
            and self.last_vote_sent_ms is not None
            and self.last_vote_sent_ms + pace > self._now
        ):
            self.paced_vote = PacedVote(vote, targets)
            self._set_timer(("vote", r), self.last_vote_sent_ms + pace)
            return
        self._send_vote(vote, targets)

    def _vote_targets(self, r: int) -> tuple[int, ...]:
        if not self.params.fast_recovery:
            return (self.leader(r + 1),)
        first, second = self.leader(r), self.leader(r + 1)
        return (first,) if first == second else (first, second)

    def _send_vote(self, vote: VoteMsg, targets: tuple[int, ...]) -> None:
        self.last_vote_sent_ms = self._now
        for target in targets:
            self._send(target, vote, signed=True)

    def on_vote_timer(self, round_: int) -> None:
        paced = self.paced_vote
        if paced is None or paced.vote.vote.round != round_:
            return
        self.paced_vote = None
        if self.current_round != round_:
            self._reject("stale_vote")
            return
        self._send_vote(paced.vote, paced.targets)

    # ------------------------------------------------------------------ R6
    def on_vote(self, sender: int, m: VoteMsg) -> None:
        if m.signer == sender and m.signer in self.bad_senders and m.vote.round == self.current_round:
            return  # a bad signature from this sender earlier in the round (spec §7)
        before = self.stats.get("invalid_sig")
        self.on_vote_signature(m.signer, m.vote.block_id, m.vote.round, m.sig)
        failed = self.stats.get("invalid_sig") > before
        if failed and m.signer == sender and m.vote.round == self.current_round:
            self.bad_senders.add(sender)

    def on_vote_signature(self, signer: int, block_id: bytes, round_: int, sig: bytes) -> None:
        """A VoteMsg or a tip vote carried in a timeout."""
        current = self.current_round
        if round_ > current + self.params.future_vote_bound:
            self._reject("future_vote")
            return
        if round_ < current - self.params.future_vote_bound or not self.validators.known(signer):
            self._reject("old_vote")
            return
        seen = self.first_votes.setdefault(round_, {})
        first = seen.get(signer)
        if first == block_id:
            return  # a duplicate of a counted vote
        counting = round_ >= current and round_ not in self.qc_rounds
        if first is None and not counting and round_ < current:
            self._reject("old_vote")
        key = self.validators.keys[signer]
        if not self.verifier.verify(key, D_VOTE, self.chain_id, sign_payload_vote(block_id, round_), sig):
            self._reject("invalid_sig")
            return
        proof = self.evidence.note(
            "DOUBLE_VOTE", signer, round_, block_id, sign_payload_vote(block_id, round_), sig
        )
        if first is not None:
            self._report(proof)
            return
        seen[signer] = block_id
        if not counting:
            return
        tally = self.votes.setdefault((round_, block_id), {})
        tally[signer] = sig
        if self.validators.stake_of(tally) >= self.validators.quorum:
            qc = build_qc(block_id, round_, tally)
            self.qc_rounds.add(round_)
            self.stats.add("qcs_built")
            self.observe_qc(qc)
            if self.leader(round_) == self.index and self.params.fast_recovery:
                self._broadcast(AdvanceRound(qc), local=False)

    # ------------------------------------------------------------------ AdvanceRound
    def on_advance_round(self, sender: int, m: AdvanceRound) -> None:
        cert = m.cert
        if isinstance(cert, QC):
            if cert.round < self.current_round and cert.round <= self.high_qc.round:
                self._reject("old_advance")
                return
            if self.certs.check_qc(cert) is not None:
                self._reject("invalid_cert")
                return
            forward = cert.round >= self.current_round
            self.observe_qc(cert)
            target = self.leader(self.current_round)
            if forward and self.params.fast_recovery and target != self.index and target != sender:
                self._send(target, m)
            return
        if not isinstance(cert, TC):
            return
        if cert.round < self.current_round:
            self._reject("old_advance")
            return
        if self.certs.check_tc(cert) is not None:
            self._reject("invalid_tc")
            return
        self.process_cert(cert)

    def index_tip(self, tip: Tip) -> bool:
        """R11: index a validly signed header by (author, block_round); True if it verified."""
        if tip in self._indexed_tips:
            return True
        if not self.certs.tip_signature_ok(tip):
            return False
        if len(self._indexed_tips) > 4096:
            self._indexed_tips.clear()
        self._indexed_tips[tip] = None
        header = tip.header
        proof = self.evidence.note(
            "EQUIVOCATION_HEADER",
            header.author,
            header.block_round,
            tip.block_id,
            sign_payload_tip(header),
            tip.leader_sig,
        )
        self._report(proof)
        return True
