"""Stable numbers of the grassroots ledger: result codes, tx kinds, contract states (spec 3, 7)."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Receipt codes. Stable: they are hashed into results_hash and printed by the CLI."""

    OK = 0
    MALFORMED = 1
    WRONG_CHAIN = 2
    BAD_SIGNATURE = 3
    BAD_NONCE = 4
    INSUFFICIENT_BALANCE = 10
    INVALID_AMOUNT = 11
    SELF_TRADE = 12
    SELF_REDEEM = 13
    NOT_MATURE = 15
    WANT_REQUIRED = 16
    WANT_OWN_ISSUER = 17
    WANT_NOT_HELD = 18
    AMOUNT_MISMATCH = 19
    UNKNOWN_CONTRACT = 20
    NOT_PARTY = 21
    CONTRACT_CLOSED = 22
    OFFER_EXPIRED = 23
    TERMS_MISMATCH = 24
    BAD_DEADLINE = 25
    ESCROW_NOT_CANCELLABLE = 26
    ISSUER_IN_DEFAULT = 27
    TOO_MANY_OPEN = 28
    NO_STRIKE = 29


class Kind(IntEnum):
    """Transaction kinds (spec 3)."""

    MINT = 1
    BURN = 2
    TRANSFER = 3
    OFFER = 4
    ACCEPT = 5
    DECLINE = 6
    CANCEL_OFFER = 7
    REDEEM = 8
    ESCROW_CREATE = 9
    ESCROW_RELEASE = 10
    ESCROW_CANCEL = 11
    ESCROW_EXERCISE = 12
    SETTLE_CLAIM = 13
    WITHDRAW_CLAIM = 14
    SWAP = 15


class OfferState(IntEnum):
    OPEN = 0
    ACCEPTED = 1
    DECLINED = 2
    CANCELLED = 3
    EXPIRED = 4


class EscrowState(IntEnum):
    LOCKED = 0
    RELEASED = 1
    REFUNDED = 2
    EXERCISED = 3


class ClaimState(IntEnum):
    OPEN = 0
    SETTLED = 1
    WITHDRAWN = 2


# Codes a tx gets before its nonce is consumed (steps 1-4 of spec 5.2): such a tx changes nothing.
PRE_NONCE_CODES = frozenset({Code.MALFORMED, Code.WRONG_CHAIN, Code.BAD_SIGNATURE, Code.BAD_NONCE})
