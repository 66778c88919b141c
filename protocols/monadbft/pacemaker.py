"""Rounds, QCs and timeouts: spec R3 (observe_qc, process_cert) and R7 (local timeout, TimeoutMsg)."""

from __future__ import annotations

from hedgerow.protocols.monadbft.certificates import build_tc, qc_of, rank_extend, rank_info
from hedgerow.protocols.monadbft.messages import (
    D_TIMEOUT,
    D_VOTE,
    QC,
    TC,
    AdvanceRound,
    TimeoutInfo,
    TimeoutMsg,
    Tip,
    sign_payload_timeout,
    sign_payload_vote,
)
from hedgerow.protocols.monadbft.state import CoreState


class PacemakerMixin(CoreState):
    # ------------------------------------------------------------------ R3
    def observe_qc(self, qc: QC) -> None:
        """Every verified QC from any source: raise high_qc, run the commit rule, maybe advance."""
        if qc.round > self.high_qc.round:
            self.high_qc = qc
            if self.high_tip is not None and self.high_tip.header.block_round <= qc.round:
                self.high_tip = None
            self._dirty = True
        self.process_cert(qc)  # first, so a Checkpoint never has high_qc above high_cert
        by_round = self.qcs_by_block.setdefault(qc.block_id, {})
        if qc.round not in by_round:
            by_round[qc.round] = qc
            self.commit_check(qc)

    def process_cert(self, cert: QC | TC) -> None:
        if isinstance(cert, TC):
            if isinstance(cert.high_extend, Tip):
                self.index_tip(cert.high_extend)  # R11: TC tips are indexed too
            self.observe_qc(qc_of(cert))
        if cert.round <= self.high_cert.round:
            return
        if isinstance(cert, TC):
            self.stats.add("tcs")
            if isinstance(cert.high_extend, Tip):
                self.stats.add("tcs_with_tip")
        jump = cert.round + 1 - self.current_round
        if jump > 1:
            self.stats.add("round_jumps")
        self.high_cert = cert
        self.current_round = cert.round + 1
        self.timeouts = {}
        self.phase_one = False
        self.bad_senders = set()
        self.pending_vote = None
        self._prune_round_state()
        self._dirty = True
        self._persist()
        self._set_timer(("round", self.current_round), self._now + self.timer_for(cert))
        self.try_propose()

    def _prune_round_state(self) -> None:
        current = self.current_round
        oldest_kept = current - self.params.future_vote_bound
        self.votes = {key: tally for key, tally in self.votes.items() if key[0] >= current}
        self.first_votes = {r: seen for r, seen in self.first_votes.items() if r >= oldest_kept}
        self.qc_rounds = {r for r in self.qc_rounds if r >= oldest_kept}
        self.ne_votes = {}
        self.ne_seen = set()
        self.necs = {r: nec for r, nec in self.necs.items() if r >= current}
        horizon = current - self.params.handled_proposal_rounds
        if self.handled_proposal and min(self.handled_proposal) < horizon:
            self.handled_proposal = {r: b for r, b in self.handled_proposal.items() if r >= horizon}

    # ------------------------------------------------------------------ R7 local timeout
    def on_round_timer(self, round_: int) -> None:
        if round_ != self.current_round:
            return
        self.stats.add("round_timer_fired")
        self.local_timeout()

    def local_timeout(self) -> None:
        r = self.current_round
        self.phase_one = True
        duration = self.timer_for(self.high_cert)
        if self.last_timeout is not None and self.last_timeout.info.round == r:
            self._broadcast(self.last_timeout, local=False)  # same bytes, never a second signature
            self._set_timer(("round", r), self._now + duration)
            return
        self.highest_vote = max(self.highest_vote, r)
        tip = self.high_tip
        extend: Tip | QC = tip if tip is not None else self.high_qc
        extend_qc = qc_of(extend)
        info = TimeoutInfo(r, extend_qc.round, tip.header.block_round if tip is not None else 0)
        last_cert = None if extend_qc.round + 1 == r else self.high_cert
        tip_vote_sig: bytes | None = None
        if (
            tip is not None
            and self.params.fast_recovery
            and (self.highest_ne_round < r or tip.header.block_round == r)
            and self.my_votes.get(r, tip.block_id) == tip.block_id
        ):
            tip_vote_sig = self.sign(D_VOTE, sign_payload_vote(tip.block_id, r))
            self.my_votes[r] = tip.block_id
            self.make_durable(tip.block_id)
        sig = self.sign(D_TIMEOUT, sign_payload_timeout(info))
        msg = TimeoutMsg(info, self.index, sig, extend, tip_vote_sig, last_cert)
        self.set_last_timeout(msg)
        self.stats.add("timeouts")
        self._broadcast(msg, signed=True)
        self._set_timer(("round", r), self._now + duration)

    # ------------------------------------------------------------------ R7 TimeoutMsg
    def _timeout_well_formed(self, m: TimeoutMsg) -> bool:
        info = m.info
        hq, ht = info.high_qc_round, info.high_tip_round
        if hq >= info.round or (ht != 0 and not hq < ht <= info.round):
            return False
        if rank_extend(m.high_extend) != rank_info(hq, ht):
            return False
        if m.tip_vote_sig is not None and not isinstance(m.high_extend, Tip):
            return False
        cert = m.last_round_cert
        if (cert is None) != (hq + 1 == info.round):
            return False
        return cert is None or cert.round == info.round - 1

    def on_timeout(self, sender: int, m: TimeoutMsg) -> None:
        if m.signer != sender or not self.validators.known(m.signer):
            self._reject("invalid_timeout")
            return
        if isinstance(m.high_extend, Tip):
            self.index_tip(m.high_extend)
        info = m.info
        if info.round < self.current_round:
            self._reject("old_timeout")
            return
        if m.signer in self.bad_senders and info.round == self.current_round:
            return
        if not self._timeout_well_formed(m):
            self._reject("invalid_timeout")
            return
        existing = self.timeouts.get(m.signer) if info.round == self.current_round else None
        if existing is not None and existing == m:
            return  # a re-broadcast of the same timeout
        if not self._timeout_verified(m):
            return
        self.observe_qc(qc_of(m.high_extend))
        if m.tip_vote_sig is not None and isinstance(m.high_extend, Tip):
            self.on_vote_signature(m.signer, m.high_extend.block_id, info.round, m.tip_vote_sig)
        cert = m.last_round_cert
        if cert is not None and self.current_round < info.round:
            self._follow_last_round_cert(cert)
        if info.round != self.current_round:
            self._reject("unjustified_timeout")
            return
        self._count_timeout(m)

    def _timeout_verified(self, m: TimeoutMsg) -> bool:
        info = m.info
        key = self.validators.keys[m.signer]
        if not self.verifier.verify(key, D_TIMEOUT, self.chain_id, sign_payload_timeout(info), m.sig):
            self._reject("invalid_sig")
            if info.round == self.current_round:
                self.bad_senders.add(m.signer)
            return False
        extend = m.high_extend
        reason = self.certs.check_qc(extend) if isinstance(extend, QC) else self.certs.check_tip(extend)
        if reason is None and m.last_round_cert is not None and self.current_round < info.round:
            cert = m.last_round_cert
            reason = self.certs.check_qc(cert) if isinstance(cert, QC) else self.certs.check_tc(cert)
        if reason is not None:
            self._reject("invalid_timeout")
            return False
        proof = self.evidence.note(
            "CONFLICTING_TIMEOUT",
            m.signer,
            info.round,
            (info.high_qc_round, info.high_tip_round),
            sign_payload_timeout(info),
            m.sig,
        )
        self._report(proof)
        return True

    def _follow_last_round_cert(self, cert: QC | TC) -> None:
        if isinstance(cert, QC):
            self.observe_qc(cert)
            return
        if cert.round == self.current_round:
            if not self.phase_one:
                self.local_timeout()
        elif self.params.fast_recovery:
            self._broadcast(AdvanceRound(cert), local=False)
        self.process_cert(cert)

    def _count_timeout(self, m: TimeoutMsg) -> None:
        existing = self.timeouts.get(m.signer)
        if existing is not None:
            return  # a signer's first timeout stays (a conflicting one was reported above)
        self.timeouts[m.signer] = m
        stake = self.validators.stake_of(self.timeouts)
        if not self.phase_one and stake >= self.validators.honest:
            self.stats.add("timeout_amplified")
            self.local_timeout()
        elif self.phase_one and stake >= self.validators.quorum:
            tc = build_tc(self.current_round, self.timeouts)
            self.stats.add("tcs_built")
            self.process_cert(tc)
