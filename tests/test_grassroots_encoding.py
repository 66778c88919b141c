"""Canonical encoding (spec 3): byte-exact re-encode of every kind, and MALFORMED for everything else."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import Code, Kind
from hedgerow.protocols.grassroots.encoding import Malformed, decode_tx, encode_tx, packb, sign_message
from hedgerow.protocols.grassroots.ledger import precheck
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.testing import TEST_CHAIN

PARAMS = Params(chain_id=TEST_CHAIN)
A = Client(SigningKey.from_label("enc/A"), TEST_CHAIN)
B = Client(SigningKey.from_label("enc/B"), TEST_CHAIN)
KA, KB = A.account, B.account


def one_of_each() -> list[bytes]:
    lot = [(KB, 0, 2)]
    return [
        A.mint(0, 5),
        A.burn(3, 1),
        A.transfer(KB, lot),
        A.offer(KB, [(KA, 0, 1)], lot, 9),
        A.accept(3, bytes(range(32))),
        A.decline(4),
        A.cancel_offer(5),
        A.redeem(KB, 0, 2, []),
        A.redeem(KB, 0, 2, [(KA, 7, 2)]),
        A.escrow_create(KB, lot, release_at=4, cancellable=True),
        A.escrow_create(KB, lot, refund_at=4, strike=[(KB, 0, 3)]),
        A.escrow_release(1),
        A.escrow_cancel(2),
        A.escrow_exercise(3),
        A.settle_claim(4, lot),
        A.withdraw_claim(5),
        A.swap_with(B, [(KA, 0, 1)], [(KB, 0, 1)], 99),
    ]


def test_every_kind_reencodes_byte_exact_and_verifies() -> None:
    txs = one_of_each()
    assert {decode_tx(raw, PARAMS).kind for raw in txs} == set(Kind)
    for raw in txs:
        tx = decode_tx(raw, PARAMS)
        again = encode_tx(tx.version, tx.chain_id, tx.kind, tx.signer, tx.nonce, tx.body.wire(), tx.sig)
        assert again == raw
        assert tx.sign_payload == sign_message(
            tx.version, tx.chain_id, tx.kind, tx.signer, tx.nonce, tx.body.wire()
        )
        assert precheck(raw, PARAMS)[0] == Code.OK


def envelope(body: Any, kind: int = Kind.TRANSFER, **overrides: Any) -> bytes:
    fields = {
        "version": 1,
        "chain_id": TEST_CHAIN,
        "kind": kind,
        "signer": KA,
        "nonce": 0,
        "body": body,
        "sig": bytes(64),
    }
    fields.update(overrides)
    return packb(list(fields.values()))


LOT = [KB, 0, 1]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="reserved-byte"),
        pytest.param(packb({"kind": 1}), id="map"),
        pytest.param(envelope([KB, [LOT]])[:-1], id="truncated"),
        pytest.param(envelope([KB, [LOT]]) + b"\x00", id="trailing"),
        pytest.param(envelope([0.5, 1], kind=Kind.MINT), id="float"),
        pytest.param(envelope([True, 1], kind=Kind.MINT), id="bool-as-int"),
        pytest.param(envelope({0: 1}, kind=Kind.MINT), id="map-body"),
        pytest.param(envelope([0, 0], kind=Kind.MINT), id="amount-zero"),
        pytest.param(envelope([0, -1], kind=Kind.MINT), id="amount-negative"),
        pytest.param(envelope([2**48 + 1, 1], kind=Kind.MINT), id="maturity-range"),
        pytest.param(envelope([0, 1, 2], kind=Kind.MINT), id="extra-field"),
        pytest.param(envelope([KB, []]), id="transfer-no-lots"),
        pytest.param(envelope([KB, [[KB, 5, 1], [KB, 0, 1]]]), id="unsorted-lots"),
        pytest.param(envelope([KB, [LOT, LOT]]), id="duplicate-lots"),
        pytest.param(envelope([KB, [[KB, 0, 1, 0]]]), id="lot-arity"),
        pytest.param(envelope([KB, [[KB[:31], 0, 1]]]), id="short-issuer"),
        pytest.param(envelope([KB, [[KB, m, 1] for m in range(17)]]), id="too-many-lots"),
        pytest.param(envelope([KB, [], [], 5], kind=Kind.OFFER), id="offer-both-empty"),
        pytest.param(
            envelope([KB, [LOT], None, None, [], False], kind=Kind.ESCROW_CREATE), id="escrow-no-deadline"
        ),
        pytest.param(
            envelope([KB, [LOT], 5, 6, [], False], kind=Kind.ESCROW_CREATE), id="escrow-two-deadlines"
        ),
        pytest.param(
            envelope([KB, [LOT], 5, None, [LOT], False], kind=Kind.ESCROW_CREATE), id="strike-release"
        ),
        pytest.param(envelope([KB, [], None, 5, [], False], kind=Kind.ESCROW_CREATE), id="escrow-no-lots"),
        pytest.param(envelope([KB, [LOT], None, 5, [], 0], kind=Kind.ESCROW_CREATE), id="cancellable-int"),
        pytest.param(envelope([KB, [LOT], [], 5, bytes(63)], kind=Kind.SWAP), id="short-cosig"),
        pytest.param(envelope([1, bytes(31)], kind=Kind.ACCEPT), id="short-terms-hash"),
        pytest.param(envelope([KB, [LOT]], kind=16), id="unknown-kind"),
        pytest.param(envelope([KB, [LOT]], sig=bytes(63)), id="short-sig"),
        pytest.param(envelope([KB, [LOT]], chain_id=b"bytes-chain"), id="chain-id-bytes"),
        pytest.param(envelope([KB, [LOT]], nonce=-1), id="negative-nonce"),
        pytest.param(envelope([KB, [LOT]], signer=KA + b"\x00"), id="long-signer"),
        pytest.param(envelope([KB, [[KB, 0, 1]] * 1] + [b"x" * 4000]), id="oversize"),
    ],
)
def test_malformed_inputs(raw: bytes) -> None:
    with pytest.raises(Malformed):
        decode_tx(raw, PARAMS)
    assert precheck(raw, PARAMS) == (Code.MALFORMED, None)


def test_non_minimal_integer_encoding_is_rejected() -> None:
    canonical = envelope([0, 5], kind=Kind.MINT)
    index = canonical.rindex(b"\x05")
    widened = canonical[:index] + b"\xcd\x00\x05" + canonical[index + 1 :]  # uint16 for 5
    assert msgpack.unpackb(widened) == msgpack.unpackb(canonical)
    with pytest.raises(Malformed, match="canonical"):
        decode_tx(widened, PARAMS)


def test_str8_for_a_short_chain_id_is_rejected() -> None:
    canonical = envelope([0, 5], kind=Kind.MINT)
    short = packb(TEST_CHAIN)
    long_form = b"\xd9" + bytes([len(TEST_CHAIN)]) + TEST_CHAIN.encode()
    with pytest.raises(Malformed):
        decode_tx(canonical.replace(short, long_form, 1), PARAMS)


keys = st.sampled_from([KA, KB])
lots_strategy = st.dictionaries(
    st.tuples(keys, st.integers(0, 2**48)), st.integers(1, 2**64 - 1), max_size=16
).map(lambda d: tuple((i, m, a) for (i, m), a in sorted(d.items())))


@given(
    kind=st.sampled_from(list(Kind)),
    lots=lots_strategy,
    n=st.integers(1, 2**64 - 1),
    t=st.integers(0, 2**48),
    nonce=st.integers(0, 2**64 - 1),
)
def test_property_built_txs_roundtrip(kind: Kind, lots: tuple[Any, ...], n: int, t: int, nonce: int) -> None:
    client = Client(A.key, TEST_CHAIN, nonce=nonce)
    if kind in (Kind.MINT, Kind.BURN):
        raw = client.mint(t, n) if kind == Kind.MINT else client.burn(t, n)
    elif kind == Kind.REDEEM:
        raw = client.redeem(KB, t, n, lots)
    elif kind == Kind.SETTLE_CLAIM:
        raw = client.settle_claim(n, lots)
    elif kind in (Kind.TRANSFER, Kind.ESCROW_CREATE) and lots:
        raw = (
            client.transfer(KB, lots)
            if kind == Kind.TRANSFER
            else client.escrow_create(KB, lots, refund_at=t)
        )
    elif kind in (Kind.OFFER, Kind.SWAP):
        raw = (
            client.offer(KB, lots, [(KB, 0, 1)], n)
            if kind == Kind.OFFER
            else client.swap_with(B, lots, [(KB, 0, 1)], n)
        )
    else:
        raw = client.decline(n)
    tx = decode_tx(raw, PARAMS)
    assert packb([tx.version, tx.chain_id, int(tx.kind), tx.signer, tx.nonce, tx.body.wire(), tx.sig]) == raw
    assert precheck(raw, PARAMS)[0] == Code.OK


@given(st.binary(max_size=300))
def test_property_random_bytes_never_crash(raw: bytes) -> None:
    code, tx = precheck(raw, PARAMS)
    assert code in (Code.MALFORMED, Code.WRONG_CHAIN, Code.BAD_SIGNATURE) or tx is not None
