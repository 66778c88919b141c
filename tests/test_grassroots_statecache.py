"""The incremental state encoding (`statecache`) against the full one, `packb(state_wire(state))`,
after random sequences of blocks, mid-block reads, snapshots and restores, and direct edits; and the
block-at-once `apply_block` against `begin_block` / `deliver_tx` / `end_block`."""

from __future__ import annotations

import hashlib
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import ClaimState, EscrowState, OfferState
from hedgerow.protocols.grassroots.encoding import packb
from hedgerow.protocols.grassroots.handlers_settle import _candidates_in_order, auto_candidates
from hedgerow.protocols.grassroots.ledger import BlockResult, Ledger
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import (
    ClaimContract,
    EscrowContract,
    LedgerState,
    OfferContract,
    app_hash,
    restore_state,
    snapshot_bytes,
    state_wire,
)
from hedgerow.protocols.grassroots.workload import Workload

PARAMS = Params(chain_id="cache")
CLIENTS = [Client(SigningKey.from_label(f"cache/{i}"), "cache") for i in range(6)]
KEYS = [bytes([i]) * 32 for i in range(1, 6)]


def full(state: LedgerState) -> bytes:
    return packb(state_wire(state))


def assert_encodings_agree(state: LedgerState) -> None:
    expected = full(state)
    assert snapshot_bytes(state) == expected
    assert app_hash(state) == hashlib.sha256(expected).digest()


def same_result(a: BlockResult, b: BlockResult) -> bool:
    return (a.app_hash, a.results_hash, a.block_events) == (b.app_hash, b.results_hash, b.block_events) and [
        r.wire() for r in a.receipts
    ] == [r.wire() for r in b.receipts]


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    blocks=st.integers(4, 14),
    restore_at=st.sets(st.integers(0, 13), max_size=3),
    peek_at=st.sets(st.integers(0, 13), max_size=4),
)
def test_cached_encoding_equals_the_full_one_through_blocks_and_restores(
    seed: int, blocks: int, restore_at: set[int], peek_at: set[int]
) -> None:
    rng = random.Random(seed)
    for client in CLIENTS:
        client.nonce = 0
    load = Workload(CLIENTS, rng, invalid_rate=0.15, maturity_span=8)
    batched = Ledger(PARAMS, LedgerState())  # apply_block, restored from snapshots now and then
    stepped = Ledger(PARAMS, LedgerState())  # begin/deliver/end, never restored
    for index in range(blocks):
        state = stepped.state
        height, now = state.height + 1, state.now + rng.choice((0, 1, 2, 5))
        txs = load.block(state, rng.randint(0, 25))
        stepped.begin_block(height, now)
        for position, raw in enumerate(txs):
            stepped.deliver_tx(raw)
            if index in peek_at and position % 7 == 3:  # a read mid-block, then more changes
                assert_encodings_agree(stepped.state)
        one_by_one = stepped.end_block()
        assert same_result(batched.apply_block(height, now, txs), one_by_one)
        assert_encodings_agree(stepped.state)
        assert_encodings_agree(batched.state)
        if index in restore_at:
            data = snapshot_bytes(batched.state)
            batched = Ledger(PARAMS, restore_state(data))
            assert snapshot_bytes(batched.state) == data
    assert batched.state.height == stepped.state.height


class Edit:
    """Random direct edits of a `LedgerState` through its mutators, as handlers make them."""

    def __init__(self, rng: random.Random, state: LedgerState) -> None:
        self.rng, self.state = rng, state

    def balance(self) -> None:
        rng, state = self.rng, self.state
        holder, issuer, maturity = rng.choice(KEYS), rng.choice(KEYS), rng.choice((0, 3, 200, 2**40))
        have = state.free(holder, issuer, maturity)
        if have and rng.random() < 0.5:
            state.sub(holder, issuer, maturity, rng.randint(1, have))
        else:
            state.add(holder, issuer, maturity, rng.choice((1, 127, 128, 70_000, 2**33)))

    def supply(self) -> None:
        rng = self.rng
        self.state.add_supply(rng.choice(KEYS), rng.choice((0, 9)), minted=rng.randint(0, 300), burned=0)

    def contract(self) -> None:
        rng, state = self.rng, self.state
        new_id = state.next_id
        state.next_id += 1
        lots = ((rng.choice(KEYS), 0, rng.randint(1, 300)),)
        kind = rng.randrange(3)
        if kind == 0:
            state.offers[new_id] = OfferContract(new_id, KEYS[0], KEYS[1], lots, (), 50, state.now)
        elif kind == 1:
            escrow = EscrowContract(new_id, KEYS[0], KEYS[1], lots, 9, None, (), True, state.now)
            state.escrows[new_id] = escrow
        else:
            state.claims[new_id] = ClaimContract(new_id, KEYS[2], KEYS[3], 0, rng.randint(2, 9), state.now)

    def close(self) -> None:
        rng, state = self.rng, self.state
        offers = [o for o in state.offers.values() if o.state == OfferState.OPEN]
        escrows = [e for e in state.escrows.values() if e.state == EscrowState.LOCKED]
        claims = [c for c in state.claims.values() if c.state == ClaimState.OPEN]
        if offers and rng.random() < 0.4:
            rng.choice(offers).state = rng.choice(list(OfferState)[1:])
        elif escrows and rng.random() < 0.5:
            rng.choice(escrows).state = rng.choice(list(EscrowState)[1:])
        elif claims:
            claim = rng.choice(claims)
            claim.amount -= 1  # a partial settlement, or the last unit
            if not claim.amount:
                claim.state = ClaimState.SETTLED

    def other(self) -> None:
        rng, state = self.rng, self.state
        account = rng.choice(KEYS)
        state.nonces[account] = state.nonces.get(account, 0) + rng.choice((1, 200))
        if rng.random() < 0.2:
            state.default_count[account] = state.default_count.get(account, 0) + 1
        state.height += 1
        state.now += rng.choice((0, 1, 300))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 120))
def test_cached_encoding_follows_random_direct_edits(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    state = LedgerState()
    edit = Edit(rng, state)
    actions = [edit.balance] * 5 + [edit.supply, edit.contract, edit.contract, edit.close, edit.close]
    actions.append(edit.other)
    for step in range(steps):
        rng.choice(actions)()
        if rng.random() < 0.3 or step == steps - 1:
            assert_encodings_agree(state)
        if rng.random() < 0.05:
            state = restore_state(snapshot_bytes(state))
            edit.state = state


def test_contract_maps_that_shrink_or_are_replaced_are_encoded_afresh() -> None:
    state = LedgerState(next_id=1)
    edit = Edit(random.Random(3), state)
    for _ in range(300):
        edit.contract()
    assert_encodings_agree(state)
    del state.offers[min(state.offers)]  # not done in v1 (terminal contracts stay), but never stale
    edit.contract()
    assert_encodings_agree(state)
    state.escrows = dict(state.escrows)
    assert_encodings_agree(state)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_lazy_redemption_candidates_keep_the_spec_order(seed: int) -> None:
    rng = random.Random(seed)
    state = LedgerState(now=rng.randint(0, 50))
    issuer, redeemer = KEYS[0], KEYS[1]
    for _ in range(rng.randint(0, 30)):
        state.add(issuer, rng.choice(KEYS), rng.randint(0, 80), rng.randint(1, 9))
    assert list(_candidates_in_order(state, issuer, redeemer)) == auto_candidates(state, issuer, redeemer)


def test_the_shared_packer_starts_clean_after_a_failed_pack() -> None:
    for bad in ([1, object()], [1, 2**70]):
        with pytest.raises((TypeError, OverflowError)):
            packb(bad)
        assert packb([1, b"x", "y"]) == msgpack.packb([1, b"x", "y"], use_bin_type=True)
