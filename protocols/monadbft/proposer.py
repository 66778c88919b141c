"""Leader side: try_propose (spec R4), fresh blocks and re-proposals, RoundRecovery and
no-endorsement certificates (R8)."""

from __future__ import annotations

from hedgerow.protocols.monadbft.certificates import build_nec, qc_of
from hedgerow.protocols.monadbft.messages import (
    D_NE,
    D_PROPOSAL,
    D_RECOVERY,
    D_TIP,
    NEC,
    QC,
    TC,
    BlockRequest,
    BlockResponse,
    Header,
    NoEndorseMsg,
    NoTipCert,
    Proposal,
    RoundRecovery,
    Tip,
    payload_hash_of,
    sign_payload_ne,
    sign_payload_proposal,
    sign_payload_recovery,
    sign_payload_tip,
    tc_hash_of,
)
from hedgerow.protocols.monadbft.state import CoreState


class ProposerMixin(CoreState):
    # ------------------------------------------------------------------ R4
    def try_propose(self) -> None:
        r = self.current_round
        if self.leader(r) != self.index or r <= max(self.highest_propose, self.highest_vote):
            return
        if self.abstaining():
            return
        if self.high_qc.round == r - 1:
            self._propose_fresh(self.high_qc, None, None)
            return
        cert = self.high_cert
        if not isinstance(cert, TC):
            return
        extend = cert.high_extend
        if isinstance(extend, QC):
            self._propose_fresh(extend, NoTipCert(cert.round, cert.groups, extend), cert)
            return
        nec = self.necs.get(r)
        if nec is not None:
            self._propose_fresh(extend.header.parent_qc, nec, cert)
            return
        block = self.tree.get(extend.block_id)
        if block is not None:
            self._propose(r, extend, block.txs, cert)
            self.stats.add("reproposals")
            return
        self._recover(r, cert, extend)

    def _recover(self, r: int, tc: TC, tip: Tip) -> None:
        """The TC's high tip is missing: ask its reporters for it and ask everyone for NEs."""
        key = (tip.header.parent_qc.round, tip.header.block_round)
        reporters = next((g.signers for g in tc.groups if g.key == key), ())
        request = BlockRequest(tip.block_id, 1)
        for signer in reporters:
            if signer != self.index:
                self._send(signer, request)
        if r > self.highest_recovery_request:
            self.highest_recovery_request = r
            self._dirty = True
            sig = self.sign(D_RECOVERY, sign_payload_recovery(r, tc_hash_of(tc)))
            self.stats.add("recoveries")
            self._broadcast(RoundRecovery(r, tc, self.index, sig), signed=True)

    def _propose_fresh(self, parent_qc: QC, fresh_cert: NEC | NoTipCert | None, tc: TC | None) -> None:
        r = self.current_round
        parent_meta = self.tree.meta(parent_qc.block_id)
        if parent_meta is None or not self.tree.is_linked(parent_qc.block_id):
            self.start_sync(parent_qc.block_id, parent_qc.signers)
            return  # retried when the parent arrives (try_propose is idempotent)
        exclude = frozenset[bytes]().union(
            *[self.tree.tx_digests(block) for block in self.tree.path_from_root(parent_qc.block_id)]
        )
        params = self.params
        if self.payload_source is not None:
            txs = tuple(self.payload_source(params.max_block_txs, params.max_block_bytes, exclude))
        else:
            txs = tuple(self.pool.take(params.max_block_txs, params.max_block_bytes, exclude))
        header = Header(
            r,
            parent_qc,
            self.index,
            parent_meta.height + 1,
            max(self._now, parent_meta.timestamp_ms),
            payload_hash_of(txs),
        )
        tip = Tip(header, self.sign(D_TIP, sign_payload_tip(header)), fresh_cert)
        if isinstance(fresh_cert, NEC):
            self.stats.add("nec_proposals")
        self._propose(r, tip, txs, tc)

    def _propose(self, r: int, tip: Tip, txs: tuple[bytes, ...], tc: TC | None) -> None:
        payload = sign_payload_proposal(r, tip.block_id, tc_hash_of(tc))
        proposal = Proposal(r, tip, txs, tc, self.index, self.sign(D_PROPOSAL, payload))
        self.highest_propose = r
        self._dirty = True
        self.stats.add("proposals")
        self._broadcast(proposal, signed=True)

    # ------------------------------------------------------------------ R8
    def on_round_recovery(self, sender: int, m: RoundRecovery) -> None:
        tc = m.tc
        extend = tc.high_extend
        if (
            m.proposer != self.leader(m.round)
            or not self.validators.known(m.proposer)
            or tc.round != m.round - 1
            or not isinstance(extend, Tip)
        ):
            self._reject("invalid_recovery")
            return
        self.index_tip(extend)
        key = self.validators.keys[m.proposer]
        if (
            not self.verifier.verify(
                key, D_RECOVERY, self.chain_id, sign_payload_recovery(m.round, tc_hash_of(tc)), m.sig
            )
            or self.certs.check_tc(tc) is not None
        ):
            self._reject("invalid_recovery")
            return
        self.process_cert(tc)
        r = m.round
        if r != self.current_round:
            self._reject("old_recovery")
            return
        block = self.tree.get(extend.block_id)
        if block is not None and (extend.block_id in self.durable or extend.block_id in self.tree.committed):
            self._send(m.proposer, BlockResponse(extend.block_id, (block,)))
            return
        if extend.block_id in self.my_votes.values() or r <= max(self.highest_ne_round, self.highest_vote):
            return
        if self.abstaining():
            return
        self.highest_ne_round = r
        self.highest_ne_tip = extend.block_id
        self._dirty = True
        tip_qc_round = extend.header.parent_qc.round
        sig = self.sign(D_NE, sign_payload_ne(r, tip_qc_round))
        self.stats.add("nes_sent")
        self._send(m.proposer, NoEndorseMsg(r, tip_qc_round, self.index, sig), signed=True)

    def on_no_endorse(self, sender: int, m: NoEndorseMsg) -> None:
        if m.round < self.current_round:
            self._reject("old_ne")
            return
        if m.round > self.current_round or self.leader(m.round) != self.index:
            self._reject("unexpected_ne")
            return
        if m.signer != sender or not self.validators.known(m.signer):
            self._reject("invalid_ne")
            return
        key = self.validators.keys[m.signer]
        payload = sign_payload_ne(m.round, m.tip_qc_round)
        if not self.verifier.verify(key, D_NE, self.chain_id, payload, m.sig):
            self._reject("invalid_sig")
            return
        proof = self.evidence.note("CONFLICTING_NE", m.signer, m.round, m.tip_qc_round, payload, m.sig)
        self._report(proof)
        if m.signer in self.ne_seen:
            return
        self.ne_seen.add(m.signer)
        tally = self.ne_votes.setdefault(m.tip_qc_round, {})
        tally[m.signer] = m.sig
        if m.round in self.necs or self.validators.stake_of(tally) < self.validators.quorum:
            return
        if m.tip_qc_round != qc_of(self.high_cert).round:
            return
        self.necs[m.round] = build_nec(m.round, m.tip_qc_round, tally)
        self.stats.add("necs")
        self.try_propose()
