"""Ranks, certificate checks (spec R1) and certificate builders. Stateless apart from memos.

`CertChecker` answers `None` for a valid certificate and a reason string (`invalid_cert`,
`invalid_tc`, `invalid_sig`) otherwise; verified certificates are memoised by value. `Verifier`
checks Ed25519 signatures and may share a memo of (key, message, sig) results between cores (the
simulator does, so n cores verifying one QC cost one set of verifications).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hedgerow.protocols.crypto import VerifyKey
from hedgerow.protocols.monadbft.leader import LeaderFn
from hedgerow.protocols.monadbft.messages import (
    D_NE,
    D_TIMEOUT,
    D_TIP,
    D_VOTE,
    GENESIS_ID,
    NEC,
    QC,
    TC,
    NoTipCert,
    TcGroup,
    TimeoutMsg,
    Tip,
    sign_payload_ne,
    sign_payload_tip,
    sign_payload_vote,
    statement_bytes,
)
from hedgerow.protocols.monadbft.params import ValidatorSet

Rank = tuple[int, int, int]
GENESIS_QC = QC(GENESIS_ID, 0, (), ())


def rank_qc(qc: QC) -> Rank:
    return (qc.round, 1, 0)


def rank_tip(tip: Tip) -> Rank:
    return (tip.header.block_round, 0, tip.header.parent_qc.round)


def rank_extend(extend: Tip | QC) -> Rank:
    return rank_qc(extend) if isinstance(extend, QC) else rank_tip(extend)


def rank_info(high_qc_round: int, high_tip_round: int) -> Rank:
    """Rank of a TimeoutInfo or TcGroup key: high_tip_round 0 means QC(high_qc_round)."""
    if high_tip_round == 0:
        return (high_qc_round, 1, 0)
    return (high_tip_round, 0, high_qc_round)


def qc_of(cert: QC | Tip | TC | NoTipCert) -> QC:
    if isinstance(cert, QC):
        return cert
    if isinstance(cert, Tip):
        return cert.header.parent_qc
    return qc_of(cert.high_extend)


def round_of(cert: QC | TC) -> int:
    return cert.round


class Verifier:
    """Ed25519 verification with an optional memo shared between cores of one process."""

    def __init__(
        self,
        memo: dict[tuple[bytes, bytes, bytes], bool] | None = None,
        memo_max: int = 1 << 20,
        cert_memo: dict[object, None] | None = None,
    ) -> None:
        self.memo = memo
        self.memo_max = memo_max
        self.verifications = 0
        # Certificates found valid, shared by cores with the same validator set, chain id and leader
        # schedule (the simulator's cores); None keeps a private memo per core.
        self.cert_memo = cert_memo

    def verify_message(self, key: VerifyKey, message: bytes, sig: bytes) -> bool:
        if self.memo is None:
            self.verifications += 1
            return key.verify_raw(sig, message)
        memo_key = (key.raw, message, sig)
        found = self.memo.get(memo_key)
        if found is None:
            self.verifications += 1
            found = key.verify_raw(sig, message)
            if len(self.memo) >= self.memo_max:
                self.memo.clear()
            self.memo[memo_key] = found
        return found

    def verify(self, key: VerifyKey, domain: str, chain_id: str, payload: Any, sig: bytes) -> bool:
        return self.verify_message(key, statement_bytes(domain, chain_id, payload), sig)


def build_qc(block_id: bytes, round_: int, sigs: Mapping[int, bytes]) -> QC:
    signers = tuple(sorted(sigs))
    return QC(block_id, round_, signers, tuple(sigs[s] for s in signers))


def build_nec(round_: int, tip_qc_round: int, sigs: Mapping[int, bytes]) -> NEC:
    signers = tuple(sorted(sigs))
    return NEC(round_, tip_qc_round, signers, tuple(sigs[s] for s in signers))


def build_tc(round_: int, timeouts: Mapping[int, TimeoutMsg]) -> TC:
    """Groups of identical TimeoutInfo, sorted by key; high extend = the highest-rank report, ties to
    the lowest signer."""
    by_key: dict[tuple[int, int], dict[int, bytes]] = {}
    best: TimeoutMsg | None = None
    for signer in sorted(timeouts):
        msg = timeouts[signer]
        by_key.setdefault((msg.info.high_qc_round, msg.info.high_tip_round), {})[signer] = msg.sig
        if best is None or rank_extend(msg.high_extend) > rank_extend(best.high_extend):
            best = msg
    if best is None:
        raise ValueError("a TC needs at least one timeout")
    groups = tuple(
        TcGroup(key[0], key[1], tuple(sorted(members)), tuple(members[s] for s in sorted(members)))
        for key, members in sorted(by_key.items())
    )
    return TC(round_, groups, best.high_extend)


class CertChecker:
    """R1 checks bound to one validator set, chain id and leader schedule."""

    def __init__(
        self,
        validators: ValidatorSet,
        chain_id: str,
        leader: LeaderFn,
        verifier: Verifier,
        memo_max: int = 8192,
    ) -> None:
        self.validators = validators
        self.chain_id = chain_id
        self.leader = leader
        self.verifier = verifier
        self.memo_max = memo_max
        self._ok: dict[object, None] = verifier.cert_memo if verifier.cert_memo is not None else {}

    def _remember(self, cert: object) -> None:
        if len(self._ok) >= self.memo_max:
            self._ok.clear()
        self._ok[cert] = None

    def signers_ok(
        self, signers: Sequence[int], sigs: Sequence[bytes], domain: str, payload: Any
    ) -> str | None:
        """Known, strictly ascending signers with stake >= Q, every sig valid on one payload."""
        if len(signers) != len(sigs) or not signers:
            return "invalid_cert"
        previous = -1
        for signer in signers:
            if signer <= previous or not self.validators.known(signer):
                return "invalid_cert"
            previous = signer
        if self.validators.stake_of(signers) < self.validators.quorum:
            return "invalid_cert"
        message = statement_bytes(domain, self.chain_id, payload)
        keys = self.validators.keys
        for signer, sig in zip(signers, sigs, strict=True):
            if not self.verifier.verify_message(keys[signer], message, sig):
                return "invalid_sig"
        return None

    def check_qc(self, qc: QC) -> str | None:
        if qc in self._ok:
            return None
        if qc.round == 0:
            return None if qc == GENESIS_QC else "invalid_cert"
        reason = self.signers_ok(qc.signers, qc.sigs, D_VOTE, sign_payload_vote(qc.block_id, qc.round))
        if reason is None:
            self._remember(qc)
        return reason

    def check_nec(self, nec: NEC) -> str | None:
        if nec in self._ok:
            return None
        reason = self.signers_ok(nec.signers, nec.sigs, D_NE, sign_payload_ne(nec.round, nec.tip_qc_round))
        if reason is None:
            self._remember(nec)
        return reason

    def check_tc(self, tc: TC | NoTipCert) -> str | None:
        if tc in self._ok:
            return None
        reason = self._tc_groups_ok(tc.round, tc.groups)
        if reason is not None:
            return reason
        extend = tc.high_extend
        reason = self.check_qc(extend) if isinstance(extend, QC) else self.check_tip(extend)
        if reason is not None:
            return reason
        if rank_extend(extend) != max(rank_info(g.high_qc_round, g.high_tip_round) for g in tc.groups):
            return "invalid_tc"
        self._remember(tc)
        return None

    def _tc_groups_ok(self, round_: int, groups: Sequence[TcGroup]) -> str | None:
        if not 1 <= len(groups) <= self.validators.n:
            return "invalid_tc"
        seen: set[int] = set()
        previous: tuple[int, int] | None = None
        for group in groups:
            if previous is not None and group.key <= previous:
                return "invalid_tc"
            previous = group.key
            hq, ht = group.key
            if not group.signers or len(group.signers) != len(group.sigs) or hq >= round_:
                return "invalid_tc"
            if ht != 0 and not hq < ht <= round_:
                return "invalid_tc"
            last = -1
            for signer in group.signers:
                if signer <= last or signer in seen or not self.validators.known(signer):
                    return "invalid_tc"
                last = signer
                seen.add(signer)
        if self.validators.stake_of(seen) < self.validators.quorum:
            return "invalid_tc"
        keys = self.validators.keys
        for group in groups:
            message = statement_bytes(
                D_TIMEOUT, self.chain_id, [round_, group.high_qc_round, group.high_tip_round]
            )
            for signer, sig in zip(group.signers, group.sigs, strict=True):
                if not self.verifier.verify_message(keys[signer], message, sig):
                    return "invalid_sig"
        return None

    def tip_signature_ok(self, tip: Tip) -> bool:
        """Author is the round's leader and the leader signature verifies (enough to index it)."""
        if tip in self._ok:
            return True
        header = tip.header
        if not self.validators.known(header.author) or header.author != self.leader(header.block_round):
            return False
        return self.verifier.verify(
            self.validators.keys[header.author],
            D_TIP,
            self.chain_id,
            sign_payload_tip(header),
            tip.leader_sig,
        )

    def check_tip(self, tip: Tip) -> str | None:
        if tip in self._ok:
            return None
        header = tip.header
        parent = header.parent_qc
        if header.block_round <= parent.round or header.height < 1:
            return "invalid_cert"
        if not self.tip_signature_ok(tip):
            return "invalid_sig"
        reason = self.check_qc(parent)
        if reason is not None:
            return reason
        reason = self._fresh_cert_ok(tip)
        if reason is None:
            self._remember(tip)
        return reason

    def _fresh_cert_ok(self, tip: Tip) -> str | None:
        """A missing or mismatched fresh cert is `malformed_proposal` (spec §7); a cert that does
        not verify keeps its own reason."""
        header = tip.header
        parent = header.parent_qc
        cert = tip.fresh_cert
        if header.block_round == parent.round + 1:
            return None if cert is None else "malformed_proposal"
        if isinstance(cert, NEC):
            if cert.round != header.block_round or cert.tip_qc_round != parent.round:
                return "malformed_proposal"
            return self.check_nec(cert)
        if isinstance(cert, NoTipCert):
            if cert.round != header.block_round - 1 or cert.high_extend != parent:
                return "invalid_cert"
            return self.check_tc(cert)
        return "malformed_proposal"
