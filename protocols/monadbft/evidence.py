"""Equivocation evidence (spec R11): an index of first statements per (signer, round) and the
third-party check of an `EvidenceProof`."""

from __future__ import annotations

from typing import Any

import msgpack

from hedgerow.protocols.canonical import canonical_pack
from hedgerow.protocols.monadbft.certificates import Verifier
from hedgerow.protocols.monadbft.messages import (
    D_NE,
    D_PROPOSAL,
    D_TIMEOUT,
    D_TIP,
    D_VOTE,
    EvidenceProof,
    SignedStatement,
)
from hedgerow.protocols.monadbft.params import ValidatorSet

KIND_DOMAIN = {
    "EQUIVOCATION_HEADER": D_TIP,
    "EQUIVOCATION_PROPOSAL": D_PROPOSAL,
    "DOUBLE_VOTE": D_VOTE,
    "CONFLICTING_TIMEOUT": D_TIMEOUT,
    "CONFLICTING_NE": D_NE,
}
LEADER_KINDS = ("EQUIVOCATION_HEADER", "EQUIVOCATION_PROPOSAL")


def statement_round(domain: str, payload: bytes) -> int | None:
    """The round a signed payload speaks about, or None if it does not parse."""
    try:
        value = msgpack.unpackb(
            payload,
            raw=False,
            max_bin_len=len(payload),
            max_str_len=len(payload),
            max_array_len=len(payload),
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception:  # noqa: BLE001 - any malformed payload is simply not a statement
        return None
    if type(value) is not list or len(value) < 2:
        return None
    position = 1 if domain in (D_TIP, D_VOTE) else 0  # header [tag, round, ...]; vote [id, round]
    found = value[position]
    return found if type(found) is int else None


def verify_evidence(
    proof: EvidenceProof, validators: ValidatorSet, chain_id: str, verifier: Verifier | None = None
) -> bool:
    """Valid iff both sigs verify for the offender, same (expected) domain and round, payloads differ."""
    domain = KIND_DOMAIN.get(proof.kind)
    if domain is None or not validators.known(proof.offender):
        return False
    check = verifier or Verifier()
    key = validators.keys[proof.offender]
    prefix = canonical_pack([domain, chain_id])
    for statement in (proof.a, proof.b):
        if statement.domain != domain or statement.signer != proof.offender:
            return False
        if statement_round(domain, statement.payload) != proof.round:
            return False
        if not check.verify_message(key, prefix + statement.payload, statement.sig):
            return False
    return proof.a.payload != proof.b.payload


class EvidenceIndex:
    """First signed statement per (table, signer, round); a conflicting second one yields a proof.
    Each (kind, offender, round) is reported once."""

    def __init__(self) -> None:
        # (kind, signer, round) -> (comparison value, payload object, sig)
        self._first: dict[tuple[str, int, int], tuple[Any, Any, bytes]] = {}
        self.held: dict[tuple[str, int, int], EvidenceProof] = {}

    def note(
        self, kind: str, signer: int, round_: int, value: Any, payload: Any, sig: bytes
    ) -> EvidenceProof | None:
        """Record a verified statement; a different `value` under the same key gives new evidence."""
        key = (kind, signer, round_)
        first = self._first.get(key)
        if first is None:
            self._first[key] = (value, payload, sig)
            return None
        if first[0] == value or key in self.held:
            return None
        domain = KIND_DOMAIN[kind]
        proof = EvidenceProof(
            kind,
            signer,
            round_,
            SignedStatement(domain, canonical_pack(first[1]), signer, first[2]),
            SignedStatement(domain, canonical_pack(payload), signer, sig),
        )
        self.held[key] = proof
        return proof

    def add_verified(self, proof: EvidenceProof) -> bool:
        """Record a proof received from a peer (already verified); True if it is new."""
        key = (proof.kind, proof.offender, proof.round)
        if key in self.held:
            return False
        self.held[key] = proof
        return True

    def against_leader(self, author: int, round_: int) -> bool:
        return any((kind, author, round_) in self.held for kind in LEADER_KINDS)

    def header_conflict(self, author: int, round_: int, block_id: bytes) -> bool:
        first = self._first.get(("EQUIVOCATION_HEADER", author, round_))
        return first is not None and first[0] != block_id

    def prune(self, round_min: int) -> None:
        if round_min <= 0:
            return
        for key in [key for key in self._first if key[2] < round_min]:
            del self._first[key]
