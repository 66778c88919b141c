"""The mempool: signature-checked admission, dedup, per-sender nonces, bounded ("busy" when full)."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from hedgerow.node.app_kv import KIND_NOOP, KvApp, _decode, make_tx, tx_sign_bytes
from hedgerow.node.mempool import Mempool
from hedgerow.protocols.crypto import SigningKey

CHAIN = "test-chain"


def _add(pool: Mempool, app: KvApp, tx: bytes) -> str:
    check = app.check_tx(tx)
    return pool.add(tx, check, app.account_nonce(check.sender))


def test_admission_rules() -> None:
    app = KvApp(CHAIN)
    pool = Mempool(txs_max=3, nonce_window=4)
    alice, bob = SigningKey.from_label("alice"), SigningKey.from_label("bob")
    tx0 = make_tx(alice, CHAIN, 0)
    assert _add(pool, app, tx0) == "ok"
    assert _add(pool, app, tx0) == "duplicate"
    assert _add(pool, app, make_tx(alice, CHAIN, 0, body=[b"k", b"other"])) == "duplicate"
    assert _add(pool, app, make_tx(alice, CHAIN, 9)) == "bad_nonce", "beyond the nonce window"
    forged = bytearray(make_tx(bob, CHAIN, 0))
    forged[-1] ^= 1
    assert _add(pool, app, bytes(forged)) == "invalid:bad_signature"
    assert _add(pool, app, make_tx(bob, "other-chain", 0)) == "invalid:wrong_chain"
    assert _add(pool, app, b"\x93garbage") == "invalid:malformed"
    assert _add(pool, app, make_tx(alice, CHAIN, 1)) == "ok"
    assert _add(pool, app, make_tx(bob, CHAIN, 0)) == "ok"
    assert _add(pool, app, make_tx(bob, CHAIN, 1)) == "busy"
    assert len(pool) == 3 and pool.rejected["busy"] == 1


def test_reap_orders_by_nonce_and_commit_dedups() -> None:
    app = KvApp(CHAIN)
    pool = Mempool()
    alice, bob = SigningKey.from_label("alice"), SigningKey.from_label("bob")
    txs = [make_tx(alice, CHAIN, 2), make_tx(bob, CHAIN, 0),
           make_tx(alice, CHAIN, 0), make_tx(alice, CHAIN, 1)]
    for tx in txs:
        assert _add(pool, app, tx) == "ok"
    reaped = pool.reap(10, 1 << 20)
    assert [(p.sender, p.nonce) for p in reaped] == [
        (alice.public.raw, 0), (alice.public.raw, 1), (alice.public.raw, 2), (bob.public.raw, 0)]
    assert len(pool.reap(2, 1 << 20)) == 2
    results, _ = app.execute_block(1, 0, [p.tx for p in reaped[:2]])
    assert results == [[0, ""], [0, ""]]
    pool.remove([p.tx_hash for p in reaped[:2]])
    assert len(pool) == 2
    assert _add(pool, app, reaped[0].tx) == "duplicate", "committed txs are remembered"
    assert _add(pool, app, make_tx(alice, CHAIN, 1, body=[b"x", b"y"])) == "bad_nonce", "stale nonce"


def test_kv_app_snapshot_restore_continues_the_same_hash_chain() -> None:
    key = SigningKey.from_label("k")
    a, b = KvApp(CHAIN), KvApp(CHAIN)
    a.execute_block(1, 10, [make_tx(key, CHAIN, 0)])
    b.restore(a.snapshot())
    assert b.state_hash() == a.state_hash()
    block = [make_tx(key, CHAIN, 1, body=[b"x", b"1"]), make_tx(key, CHAIN, 1, body=[b"x", b"2"])]
    ra, ha = a.execute_block(2, 20, block)
    rb, hb = b.execute_block(2, 20, block)
    assert ra == rb == [[0, ""], [4, "bad_nonce"]] and ha == hb
    assert a.query("get", {"key": b"x"})["value"] == b"1"


@given(nonce=st.integers(0, 2**64 - 1), key=st.binary(max_size=256), value=st.binary(max_size=3000),
       chain=st.text(min_size=1, max_size=40))
def test_kv_signed_bytes_sliced_from_a_canonical_tx_equal_a_fresh_encoding(
        nonce: int, key: bytes, value: bytes, chain: str) -> None:
    signer = SigningKey.from_label("slice")
    noop = make_tx(signer, chain, nonce, kind=KIND_NOOP)
    for tx in (make_tx(signer, chain, nonce, body=[key, value]), noop):
        kind, public, tx_nonce, body, _, signed = _decode(tx, chain, msgpack.Packer(use_bin_type=True).pack)
        assert signed == tx_sign_bytes(chain, kind, public, tx_nonce, body)
        assert KvApp(chain).check_tx(tx).ok


def test_kv_check_refuses_a_flipped_signature_and_a_non_canonical_copy() -> None:
    key = SigningKey.from_label("k")
    tx = make_tx(key, CHAIN, 0)
    app = KvApp(CHAIN)
    assert app.check_tx(tx[:-1] + bytes([tx[-1] ^ 1])).reason == "bad_signature"
    wide = tx[:-66] + b"\xc5\x00\x40" + tx[-64:]  # the signature as bin 16: same values, other bytes
    assert app.check_tx(wide).reason == "non_canonical"
    assert app.check_tx(tx).ok and app.verifications == 2, "the valid tx is verified once, then cached"
    assert app.check_tx(tx).ok and app.verifications == 2
