"""Canonical transaction encoding (spec 3): msgpack arrays only, re-encoded byte-exact on decode.

A tx is `[version, chain_id, kind, signer, nonce, body, sig]`. Its signature covers
`SIGN_DOMAIN + packb([version, chain_id, kind, signer, nonce, body])`; SWAP's `cosig` covers
`COSIGN_DOMAIN + packb([chain_id, signer, nonce, counterparty, give, want, expires_at])`.
Everything a decoder accepts is typed and range-checked here (step 1 of spec 5.2 -> MALFORMED).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgpack

from hedgerow.protocols.grassroots.codes import Kind
from hedgerow.protocols.grassroots.params import Params

VERSION = 1
SIGN_DOMAIN = b"hedgerow/grassroots/tx/v1\0"
COSIGN_DOMAIN = b"hedgerow/grassroots/cosign/v1\0"
PUBKEY_BYTES = 32
SIG_BYTES = 64
HASH_BYTES = 32
UINT64_MAX = 2**64 - 1

Lot = tuple[bytes, int, int]  # (issuer, maturity, amount)
Lots = tuple[Lot, ...]


class Malformed(ValueError):
    """The bytes are not a canonical, well-typed transaction (code MALFORMED)."""


# `msgpack.packb` builds a Packer per call; one reused Packer gives the same bytes in half the time.
# Packing lists, bytes, str, bool, None and ints runs in C without calling back into Python, so two
# threads cannot interleave inside one `pack`; on an error the Packer resets its buffer.
_pack = msgpack.Packer(use_bin_type=True).pack


def packb(value: Any) -> bytes:
    packed: bytes = _pack(value)
    return packed


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- field checks -------------------------------------------------------------------------------


def _int(value: Any, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise Malformed(f"{what} must be an integer in [{low}, {high}]")
    return value


def _key(value: Any, what: str) -> bytes:
    if type(value) is not bytes or len(value) != PUBKEY_BYTES:
        raise Malformed(f"{what} must be {PUBKEY_BYTES} bytes")
    return value


def _opt_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, 0, UINT64_MAX, what)


def _fields(body: Any, count: int, kind: Kind) -> list[Any]:
    if type(body) is not list or len(body) != count:
        raise Malformed(f"{kind.name} body must be an array of {count}")
    return body


def parse_lots(value: Any, params: Params, what: str = "lots") -> Lots:
    """A lot list: strictly ascending by (issuer, maturity), amounts >= 1, at most `max_lots`."""
    if type(value) is not list or len(value) > params.max_lots:
        raise Malformed(f"{what} must be an array of at most {params.max_lots} lots")
    lots: list[Lot] = []
    for item in value:
        if type(item) is not list or len(item) != 3:
            raise Malformed(f"each of {what} must be [issuer, maturity, amount]")
        lot = (
            _key(item[0], "issuer"),
            _int(item[1], 0, params.max_maturity, "maturity"),
            _int(item[2], 1, UINT64_MAX, "amount"),
        )
        if lots and lot[:2] <= lots[-1][:2]:
            raise Malformed(f"{what} must be strictly ascending by (issuer, maturity)")
        lots.append(lot)
    return tuple(lots)


def lots_wire(lots: Lots) -> list[list[Any]]:
    return [[issuer, maturity, amount] for issuer, maturity, amount in lots]


def lots_sum(lots: Lots) -> int:
    return sum(lot[2] for lot in lots)


# --- bodies -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mint:
    maturity: int
    amount: int

    def wire(self) -> list[Any]:
        return [self.maturity, self.amount]


@dataclass(frozen=True, slots=True)
class Burn:
    maturity: int
    amount: int

    def wire(self) -> list[Any]:
        return [self.maturity, self.amount]


@dataclass(frozen=True, slots=True)
class Transfer:
    to: bytes
    lots: Lots

    def wire(self) -> list[Any]:
        return [self.to, lots_wire(self.lots)]


@dataclass(frozen=True, slots=True)
class Offer:
    counterparty: bytes
    give: Lots
    want: Lots
    expires_at: int

    def wire(self) -> list[Any]:
        return [self.counterparty, lots_wire(self.give), lots_wire(self.want), self.expires_at]


@dataclass(frozen=True, slots=True)
class Accept:
    offer_id: int
    terms_hash: bytes

    def wire(self) -> list[Any]:
        return [self.offer_id, self.terms_hash]


@dataclass(frozen=True, slots=True)
class ContractRef:
    """DECLINE, CANCEL_OFFER, ESCROW_RELEASE/CANCEL/EXERCISE and WITHDRAW_CLAIM: `[contract_id]`."""

    contract_id: int

    def wire(self) -> list[Any]:
        return [self.contract_id]


@dataclass(frozen=True, slots=True)
class Redeem:
    issuer: bytes
    maturity: int
    amount: int
    want: Lots

    def wire(self) -> list[Any]:
        return [self.issuer, self.maturity, self.amount, lots_wire(self.want)]


@dataclass(frozen=True, slots=True)
class EscrowCreate:
    beneficiary: bytes
    lots: Lots
    release_at: int | None
    refund_at: int | None
    strike: Lots
    cancellable: bool

    def wire(self) -> list[Any]:
        return [
            self.beneficiary,
            lots_wire(self.lots),
            self.release_at,
            self.refund_at,
            lots_wire(self.strike),
            self.cancellable,
        ]

    @property
    def deadline(self) -> int:
        deadline = self.release_at if self.release_at is not None else self.refund_at
        assert deadline is not None  # guaranteed by parse
        return deadline


@dataclass(frozen=True, slots=True)
class SettleClaim:
    claim_id: int
    lots: Lots

    def wire(self) -> list[Any]:
        return [self.claim_id, lots_wire(self.lots)]


@dataclass(frozen=True, slots=True)
class Swap:
    counterparty: bytes
    give: Lots
    want: Lots
    expires_at: int
    cosig: bytes

    def wire(self) -> list[Any]:
        return [self.counterparty, lots_wire(self.give), lots_wire(self.want), self.expires_at, self.cosig]


KINDS: dict[int, Kind] = {int(kind): kind for kind in Kind}
Body = Mint | Burn | Transfer | Offer | Accept | ContractRef | Redeem | EscrowCreate | SettleClaim | Swap

CONTRACT_REF_KINDS = frozenset(
    {
        Kind.DECLINE,
        Kind.CANCEL_OFFER,
        Kind.ESCROW_RELEASE,
        Kind.ESCROW_CANCEL,
        Kind.ESCROW_EXERCISE,
        Kind.WITHDRAW_CLAIM,
    }
)


def parse_body(kind: Kind, body: Any, params: Params) -> Body:
    """Type- and range-check a body, with every stateless check of its kind (spec 5.2 step 1)."""
    if kind in (Kind.MINT, Kind.BURN):
        maturity, amount = _fields(body, 2, kind)
        cls = Mint if kind == Kind.MINT else Burn
        return cls(_int(maturity, 0, params.max_maturity, "maturity"), _int(amount, 1, UINT64_MAX, "amount"))
    if kind == Kind.TRANSFER:
        to, lots = _fields(body, 2, kind)
        transfer = Transfer(_key(to, "to"), parse_lots(lots, params))
        if not transfer.lots:
            raise Malformed("TRANSFER needs at least one lot")
        return transfer
    if kind in (Kind.OFFER, Kind.SWAP):
        return _parse_exchange(kind, body, params)
    if kind == Kind.ACCEPT:
        offer_id, terms_hash = _fields(body, 2, kind)
        if type(terms_hash) is not bytes or len(terms_hash) != HASH_BYTES:
            raise Malformed("terms_hash must be 32 bytes")
        return Accept(_int(offer_id, 0, UINT64_MAX, "offer_id"), terms_hash)
    if kind in CONTRACT_REF_KINDS:
        (contract_id,) = _fields(body, 1, kind)
        return ContractRef(_int(contract_id, 0, UINT64_MAX, "contract id"))
    if kind == Kind.REDEEM:
        issuer, maturity, amount, want = _fields(body, 4, kind)
        return Redeem(
            _key(issuer, "issuer"),
            _int(maturity, 0, params.max_maturity, "maturity"),
            _int(amount, 1, UINT64_MAX, "amount"),
            parse_lots(want, params, "want"),
        )
    if kind == Kind.ESCROW_CREATE:
        return _parse_escrow(body, params)
    if kind == Kind.SETTLE_CLAIM:
        claim_id, lots = _fields(body, 2, kind)
        return SettleClaim(_int(claim_id, 0, UINT64_MAX, "claim_id"), parse_lots(lots, params))
    raise Malformed(f"unknown kind {kind}")


def _parse_exchange(kind: Kind, body: Any, params: Params) -> Offer | Swap:
    items = _fields(body, 5 if kind == Kind.SWAP else 4, kind)
    counterparty = _key(items[0], "counterparty")
    give, want = parse_lots(items[1], params, "give"), parse_lots(items[2], params, "want")
    expires_at = _int(items[3], 0, UINT64_MAX, "expires_at")
    if not give and not want:
        raise Malformed(f"{kind.name} with both give and want empty")
    if kind == Kind.OFFER:
        return Offer(counterparty, give, want, expires_at)
    cosig = items[4]
    if type(cosig) is not bytes or len(cosig) != SIG_BYTES:
        raise Malformed("cosig must be 64 bytes")
    return Swap(counterparty, give, want, expires_at, cosig)


def _parse_escrow(body: Any, params: Params) -> EscrowCreate:
    beneficiary, lots, release_at, refund_at, strike, cancellable = _fields(body, 6, Kind.ESCROW_CREATE)
    if type(cancellable) is not bool:
        raise Malformed("cancellable must be a bool")
    escrow = EscrowCreate(
        _key(beneficiary, "beneficiary"),
        parse_lots(lots, params),
        _opt_int(release_at, "release_at"),
        _opt_int(refund_at, "refund_at"),
        parse_lots(strike, params, "strike"),
        cancellable,
    )
    if not escrow.lots:
        raise Malformed("ESCROW_CREATE needs at least one lot")
    if (escrow.release_at is None) == (escrow.refund_at is None):
        raise Malformed("ESCROW_CREATE needs exactly one of release_at and refund_at")
    if escrow.strike and escrow.release_at is not None:
        raise Malformed("a strike goes with refund_at, never with release_at")
    return escrow


# --- the envelope -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tx:
    """A decoded, schema-valid transaction with the bytes it came from."""

    version: int
    chain_id: str
    kind: Kind
    signer: bytes
    nonce: int
    body: Body
    sig: bytes
    raw: bytes
    tx_hash: bytes

    @property
    def sign_payload(self) -> bytes:
        """The bytes the envelope signature covers (spec 3)."""
        # The canonical encoding of a 7-array is 0x97 + fields, and sig is last as bin8 (66 bytes),
        # so the 6-array of the signed fields is 0x96 + the same field bytes.
        return SIGN_DOMAIN + b"\x96" + self.raw[1 : -(SIG_BYTES + 2)]


def tx_hash_of(raw: bytes) -> bytes:
    return sha256(raw)


def sign_message(version: int, chain_id: str, kind: int, signer: bytes, nonce: int, body_wire: Any) -> bytes:
    return SIGN_DOMAIN + packb([version, chain_id, kind, signer, nonce, body_wire])


def cosign_message(
    chain_id: str, signer: bytes, nonce: int, counterparty: bytes, give: Lots, want: Lots, expires_at: int
) -> bytes:
    return COSIGN_DOMAIN + packb(
        [chain_id, signer, nonce, counterparty, lots_wire(give), lots_wire(want), expires_at]
    )


def terms_hash(
    offer_id: int, proposer: bytes, counterparty: bytes, give: Lots, want: Lots, expires_at: int
) -> bytes:
    return sha256(packb([offer_id, proposer, counterparty, lots_wire(give), lots_wire(want), expires_at]))


def encode_tx(
    version: int, chain_id: str, kind: int, signer: bytes, nonce: int, body_wire: Any, sig: bytes
) -> bytes:
    return packb([version, chain_id, kind, signer, nonce, body_wire, sig])


def decode_tx(raw: bytes, params: Params) -> Tx:
    """Decode and schema-check `raw`; raise `Malformed` on anything non-canonical or out of range."""
    if len(raw) > params.max_tx_bytes:
        raise Malformed(f"tx of {len(raw)} bytes exceeds {params.max_tx_bytes}")
    try:
        value = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    except Exception as error:  # noqa: BLE001 - any undecodable input is MALFORMED
        raise Malformed(f"undecodable: {type(error).__name__}") from None
    if type(value) is not list or len(value) != 7:
        raise Malformed("a tx is an array of 7")
    version, chain_id, kind, signer, nonce, body, sig = value
    _int(version, 0, UINT64_MAX, "version")
    if type(chain_id) is not str:
        raise Malformed("chain_id must be a string")
    tx_kind = KINDS[_int(kind, Kind.MINT, Kind.SWAP, "kind")]
    if type(sig) is not bytes or len(sig) != SIG_BYTES:
        raise Malformed("sig must be 64 bytes")
    tx = Tx(
        version,
        chain_id,
        tx_kind,
        _key(signer, "signer"),
        _int(nonce, 0, UINT64_MAX, "nonce"),
        parse_body(tx_kind, body, params),
        sig,
        raw,
        sha256(raw),
    )
    if _pack(value) != raw:
        raise Malformed("not canonical: re-encoding differs")
    return tx
