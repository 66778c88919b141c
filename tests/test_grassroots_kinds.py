"""Every tx kind: its success case and every error code, in the spec's precondition order (5.2, 5.3)."""

from __future__ import annotations

import pytest

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import ClaimState, Code, EscrowState, OfferState
from hedgerow.protocols.grassroots.encoding import sha256
from hedgerow.protocols.grassroots.ledger import BlockOrderError
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.testing import TEST_CHAIN, Harness


@pytest.fixture
def h() -> Harness:
    return Harness()


def defaulted(h: Harness) -> int:
    """A owes B 5 A-coins and holds nothing: B's auto redemption opens a claim; returns its id."""
    h.ok(h["A"].mint(0, 5), h["A"].transfer(h.key("B"), [h.lot("A", 0, 5)]))
    receipts = h.ok(h["B"].redeem(h.key("A"), 0, 5))
    default = [e for e in receipts[0].events if e[0] == "default"]
    assert default == [["default", h.key("A"), h.key("B"), 0, 5, default[0][5]]]
    return int(default[0][5])


# --- steps 1-4 ------------------------------------------------------------------------------------


def test_malformed_bytes_change_nothing_and_hash_the_raw_bytes(h: Harness) -> None:
    before = h.state.nonces.copy()
    receipts = h.block(b"\x93\x01\x02")
    assert receipts[0].code == Code.MALFORMED and receipts[0].tx_hash == sha256(b"\x93\x01\x02")
    assert h.state.nonces == before


def test_wrong_chain_and_wrong_version(h: Harness) -> None:
    other = Client(h["A"].key, "another-chain")
    assert h.code(other.mint(0, 1)) == Code.WRONG_CHAIN
    assert h.code(Client(h["A"].key, TEST_CHAIN, version=2).mint(0, 1)) == Code.WRONG_CHAIN
    assert h.state.nonces == {}


def test_bad_signature_and_bad_cosignature(h: Harness) -> None:
    tx = h["A"].mint(0, 1)
    forged = tx[:-1] + bytes([tx[-1] ^ 1])
    assert h.code(forged) == Code.BAD_SIGNATURE
    a, b, c = h["A"], h["B"], h["C"]
    terms = a.swap_terms(b.account, [], [h.lot("B", 0, 1)], 50)
    wrong_cosig = c.key.sign_raw(terms.message())
    assert h.code(a.swap(terms, wrong_cosig)) == Code.BAD_SIGNATURE
    assert h.state.nonces == {}


def test_wrong_chain_is_checked_before_the_signature(h: Harness) -> None:
    tx = Client(h["A"].key, "x").mint(0, 1)
    assert h.code(tx[:-1] + bytes([tx[-1] ^ 1])) == Code.WRONG_CHAIN


def test_bad_signature_is_checked_before_the_nonce(h: Harness) -> None:
    h["A"].nonce = 7
    tx = h["A"].mint(0, 1)
    assert h.code(tx[:-1] + bytes([tx[-1] ^ 1])) == Code.BAD_SIGNATURE


def test_replay_and_gap_give_bad_nonce_without_consuming(h: Harness) -> None:
    tx = h["A"].mint(0, 1)
    h.ok(tx)
    assert h.code(tx) == Code.BAD_NONCE
    h["A"].nonce = 5
    assert h.code(h["A"].mint(0, 1)) == Code.BAD_NONCE
    assert h.state.nonces[h.key("A")] == 1


def test_a_tx_failing_its_preconditions_consumes_its_nonce(h: Harness) -> None:
    assert h.code(h["A"].burn(0, 1)) == Code.INSUFFICIENT_BALANCE
    assert h.state.nonces[h.key("A")] == 1
    assert h.code(h["A"].mint(0, 1)) == Code.OK


# --- MINT / BURN / TRANSFER -----------------------------------------------------------------------


def test_mint_adds_to_treasury_and_supply(h: Harness) -> None:
    receipts = h.ok(h["A"].mint(30, 7))
    assert h.free("A", "A", 30) == 7 and h.state.minted[(h.key("A"), 30)] == 7
    assert receipts[0].events == [["mint", h.key("A"), 30, 7]]


def test_mint_invalid_amount_above_max_and_at_supply_limit() -> None:
    h = Harness(params=Params(chain_id=TEST_CHAIN, max_amount=2**62))
    assert h.code(h["A"].mint(0, 2**62 + 1)) == Code.INVALID_AMOUNT
    h.ok(h["A"].mint(0, 2**62), h["A"].mint(0, 2**62 - 1))
    assert h.code(h["A"].mint(0, 1)) == Code.INVALID_AMOUNT  # minted + n == 2**63
    assert h.code(h["A"].mint(1, 1)) == Code.OK


def test_mint_in_default_fails_and_amount_is_checked_first(h: Harness) -> None:
    defaulted(h)
    assert h.code(h["A"].mint(0, 1)) == Code.ISSUER_IN_DEFAULT
    assert h.code(h["A"].mint(0, 10**12 + 1)) == Code.INVALID_AMOUNT


def test_burn_own_treasury_only(h: Harness) -> None:
    h.ok(h["A"].mint(0, 5))
    h.ok(h["A"].burn(0, 2))
    assert h.free("A", "A") == 3 and h.state.burned[(h.key("A"), 0)] == 2
    assert h.code(h["A"].burn(0, 4)) == Code.INSUFFICIENT_BALANCE
    h.ok(h["A"].transfer(h.key("B"), [h.lot("A", 0, 3)]))
    assert h.code(h["A"].burn(0, 1)) == Code.INSUFFICIENT_BALANCE  # B's holding is not A's treasury


def test_transfer_pays_and_checks_self_trade_first(h: Harness) -> None:
    h.ok(h["A"].mint(0, 5))
    receipts = h.ok(h["A"].transfer(h.key("B"), [h.lot("A", 0, 2)]))
    assert h.free("B", "A") == 2 and h.free("A", "A") == 3
    assert receipts[0].events[0][0] == "transfer"
    assert h.code(h["A"].transfer(h.key("A"), [h.lot("A", 0, 99)])) == Code.SELF_TRADE
    assert h.code(h["A"].transfer(h.key("B"), [h.lot("A", 0, 4)])) == Code.INSUFFICIENT_BALANCE


# --- OFFER / ACCEPT / DECLINE / CANCEL_OFFER ------------------------------------------------------


def open_offer(h: Harness, expires_in: int = 10) -> tuple[int, int]:
    """A offers 3 A0 to B for 2 B0; returns (offer id, expires_at)."""
    h.ok(h["A"].mint(0, 3), h["B"].mint(0, 2))
    expires = h.state.now + 1 + expires_in
    receipts = h.ok(h["A"].offer(h.key("B"), [h.lot("A", 0, 3)], [h.lot("B", 0, 2)], expires))
    return int(receipts[0].events[0][1]), expires


def test_offer_locks_give_and_accept_swaps(h: Harness) -> None:
    offer_id, expires = open_offer(h)
    assert h.free("A", "A") == 0 and h.state.offers[offer_id].state == OfferState.OPEN
    assert h.code(h["A"].transfer(h.key("C"), [h.lot("A", 0, 1)])) == Code.INSUFFICIENT_BALANCE  # locked
    h.ok(h["B"].accept_terms(offer_id, h.key("A"), [h.lot("A", 0, 3)], [h.lot("B", 0, 2)], expires))
    assert h.free("B", "A") == 3 and h.free("A", "B") == 2
    assert h.state.offers[offer_id].state == OfferState.ACCEPTED


def test_offer_preconditions_in_order(h: Harness) -> None:
    a, now = h["A"], h.state.now
    b = h.key("B")
    big = [h.lot("A", 0, 1)]
    assert h.code(a.offer(h.key("A"), big, [], now)) == Code.SELF_TRADE  # also a bad deadline
    assert h.code(a.offer(b, big, [], h.state.now + 1)) == Code.BAD_DEADLINE  # == now of its block
    ttl = h.params.max_offer_ttl
    assert h.code(a.offer(b, big, [], h.state.now + 2 + ttl)) == Code.BAD_DEADLINE
    assert h.code(a.offer(b, big, [], h.state.now + 1 + ttl)) == Code.INSUFFICIENT_BALANCE
    assert h.code(a.offer(b, [], [h.lot("B", 0, 1)], h.state.now + 1 + ttl)) == Code.OK  # an invoice


def test_too_many_open_offers() -> None:
    h = Harness(params=Params(chain_id=TEST_CHAIN, max_open_per_account=2))
    want = [h.lot("B", 0, 1)]
    h.ok(h["A"].offer(h.key("B"), [], want, 50), h["A"].offer(h.key("C"), [], want, 50))
    assert h.code(h["A"].offer(h.key("B"), [h.lot("A", 0, 9)], want, 50)) == Code.TOO_MANY_OPEN
    h.ok(h["A"].cancel_offer(1))
    assert h.code(h["A"].offer(h.key("B"), [], want, 50)) == Code.OK


def test_accept_codes_in_order(h: Harness) -> None:
    offer_id, expires = open_offer(h)
    give, want = [h.lot("A", 0, 3)], [h.lot("B", 0, 2)]
    assert h.code(h["B"].accept(99, bytes(32))) == Code.UNKNOWN_CONTRACT
    assert h.code(h["C"].accept(offer_id, bytes(32))) == Code.NOT_PARTY
    assert h.code(h["B"].accept(offer_id, bytes(32))) == Code.TERMS_MISMATCH
    h.ok(h["B"].transfer(h.key("C"), [h.lot("B", 0, 2)]))
    assert h.code(h["B"].accept_terms(offer_id, h.key("A"), give, want, expires)) == Code.INSUFFICIENT_BALANCE
    h.ok(h["B"].decline(offer_id))
    assert h.code(h["B"].accept_terms(offer_id, h.key("A"), give, want, expires)) == Code.CONTRACT_CLOSED
    assert h.free("A", "A") == 3  # give went back on decline


def test_accept_after_expiry_and_expiry_at_equal_now(h: Harness) -> None:
    offer_id, expires = open_offer(h, expires_in=3)
    accept = h["B"].accept_terms(offer_id, h.key("A"), [h.lot("A", 0, 3)], [h.lot("B", 0, 2)], expires)
    receipts = h.block(accept, now=expires)  # expires_at == now: expired at begin_block, before the tx
    assert receipts[0].code == Code.OFFER_EXPIRED
    assert h.last is not None and h.last.block_events == [["offer_expired", offer_id, expires]]
    assert h.state.offers[offer_id].state == OfferState.EXPIRED and h.free("A", "A") == 3
    assert h.code(h["A"].cancel_offer(offer_id)) == Code.CONTRACT_CLOSED


def test_accept_past_expiry_says_expired_even_for_a_declined_offer(h: Harness) -> None:
    offer_id, expires = open_offer(h, expires_in=3)
    h.ok(h["B"].decline(offer_id))
    accept = h["B"].accept_terms(offer_id, h.key("A"), [h.lot("A", 0, 3)], [h.lot("B", 0, 2)], expires)
    assert h.code(accept, now=expires) == Code.OFFER_EXPIRED  # `now >= expires_at` is checked before CLOSED
    assert h.state.offers[offer_id].state == OfferState.DECLINED


def test_decline_and_cancel_codes(h: Harness) -> None:
    offer_id, _ = open_offer(h)
    escrow_id = h.ok(h["B"].escrow_create(h.key("A"), [h.lot("B", 0, 1)], release_at=90))[0].events[0][1]
    assert h.code(h["B"].decline(escrow_id)) == Code.UNKNOWN_CONTRACT  # an id of another contract type
    assert h.code(h["A"].decline(offer_id)) == Code.NOT_PARTY
    assert h.code(h["B"].cancel_offer(offer_id)) == Code.NOT_PARTY
    h.ok(h["A"].cancel_offer(offer_id))
    assert h.state.offers[offer_id].state == OfferState.CANCELLED and h.free("A", "A") == 3
    assert h.code(h["B"].decline(offer_id)) == Code.CONTRACT_CLOSED
    assert h.code(h["A"].cancel_offer(offer_id)) == Code.CONTRACT_CLOSED


# --- SWAP -----------------------------------------------------------------------------------------


def test_swap_codes_in_order(h: Harness) -> None:
    a, b = h["A"], h["B"]
    h.ok(a.mint(0, 4), b.mint(0, 4))
    assert h.code(a.swap_with(a, [h.lot("A", 0, 1)], [], 90)) == Code.SELF_TRADE
    assert (
        h.code(a.swap_with(b, [h.lot("A", 0, 1)], [h.lot("B", 0, 1)], h.state.now + 1)) == Code.OFFER_EXPIRED
    )
    assert h.code(a.swap_with(b, [h.lot("A", 0, 5)], [h.lot("B", 0, 1)], 90)) == Code.INSUFFICIENT_BALANCE
    assert h.code(a.swap_with(b, [h.lot("A", 0, 1)], [h.lot("B", 0, 5)], 90)) == Code.INSUFFICIENT_BALANCE
    h.ok(a.swap_with(b, [h.lot("A", 0, 4)], [h.lot("B", 0, 4)], 90))
    assert h.free("A", "B") == 4 and h.free("B", "A") == 4


# --- REDEEM ---------------------------------------------------------------------------------------


def test_redeem_explicit_codes_in_order(h: Harness) -> None:
    h.credit_line("A", "B", 5)
    a, b = h["A"], h.key("B")
    h.ok(h["B"].mint(50, 2), h["B"].transfer(h.key("A"), [h.lot("B", 50, 2)]))
    assert h.code(a.redeem(h.key("A"), 0, 1, [h.lot("B", 0, 1)])) == Code.SELF_REDEEM
    assert h.code(a.redeem(b, 0, 6, [h.lot("A", 0, 6)])) == Code.INSUFFICIENT_BALANCE
    assert h.code(a.redeem(b, 0, 2, [h.lot("A", 0, 1)])) == Code.AMOUNT_MISMATCH
    assert h.code(a.redeem(b, 0, 2, [h.lot("B", 50, 2)])) == Code.WANT_OWN_ISSUER
    assert h.code(a.redeem(b, 50, 2, [h.lot("A", 0, 2)])) == Code.NOT_MATURE
    assert h.code(a.redeem(b, 0, 2, [h.lot("C", 0, 2)])) == Code.WANT_NOT_HELD
    receipts = h.ok(a.redeem(b, 0, 2, [h.lot("A", 0, 2)]))
    assert receipts[0].events == [["redeem", b, h.key("A"), 0, 2, [[h.key("A"), 0, 2]]]]
    assert h.free("A", "A") == 2 and h.free("B", "B") == 2 and h.free("A", "B") == 3


def test_redeem_with_equal_liquidity_dates_is_allowed(h: Harness) -> None:
    h.ok(h["A"].mint(40, 3), h["B"].mint(40, 3))
    h.ok(h["A"].swap_with(h["B"], [h.lot("A", 40, 3)], [h.lot("B", 40, 3)], 30))
    # immature B(40) for A(40): L(u) == L(t) == 40
    h.ok(h["A"].redeem(h.key("B"), 40, 1, [h.lot("A", 40, 1)]))
    h.ok(h["A"].mint(5, 2), h["A"].transfer(h.key("B"), [h.lot("A", 5, 2)]))
    # both matured: L(5) == L(40) == now once now >= 40
    h.ok(h["A"].redeem(h.key("B"), 40, 2, [h.lot("A", 5, 2)]), now=45)


def test_redeem_auto_needs_a_matured_bond(h: Harness) -> None:
    h.ok(h["B"].mint(50, 2), h["B"].transfer(h.key("A"), [h.lot("B", 50, 2)]))
    assert h.code(h["A"].redeem(h.key("B"), 50, 2)) == Code.WANT_REQUIRED
    assert h.code(h["A"].redeem(h.key("B"), 50, 2), now=50) == Code.OK  # mature(t) <=> t <= now


def test_redeem_auto_nets_first_then_matured_third_parties_by_maturity_and_issuer(h: Harness) -> None:
    h4 = Harness(letters="PQRS")
    p, q, r, s = (h4[x] for x in "PQRS")
    h4.ok(p.mint(0, 10), p.transfer(q.account, [h4.lot("P", 0, 10)]))
    # P holds: Q(70)x2, Q(5)x1 (netting), R(0)x2, S(0)x2, R(3)x1 (matured third), S(90)x5 (immature)
    h4.ok(q.mint(70, 2), q.mint(5, 1), r.mint(0, 2), s.mint(0, 2), r.mint(3, 1), s.mint(90, 5))
    h4.ok(
        q.transfer(p.account, [h4.lot("Q", 5, 1), h4.lot("Q", 70, 2)]),
        r.transfer(p.account, [h4.lot("R", 0, 2), h4.lot("R", 3, 1)]),
        s.transfer(p.account, [h4.lot("S", 0, 2), h4.lot("S", 90, 5)]),
    )
    menu = auto_menu(h4)
    assert menu == [
        (q.account, 5, 1),
        (q.account, 70, 2),
        *sorted([(r.account, 0, 2), (s.account, 0, 2)]),
        (r.account, 3, 1),
    ]
    receipts = h4.ok(q.redeem(p.account, 0, 10), now=10)
    paid = [(lot[0], lot[1], lot[2]) for lot in receipts[0].events[0][5]]
    assert sorted(paid) == sorted(menu)
    assert receipts[0].events[1] == ["default", p.account, q.account, 0, 2, 1]
    claim = h4.state.claims[1]
    assert (claim.amount, claim.state, h4.state.default_count[p.account]) == (2, ClaimState.OPEN, 1)
    assert h4.state.free(p.account, s.account, 90) == 5  # immature third-party bonds are not drawn on


def auto_menu(h4: Harness) -> list[tuple[bytes, int, int]]:
    from hedgerow.protocols.grassroots.handlers_settle import auto_candidates

    return auto_candidates(h4.state, h4.key("P"), h4.key("Q"))


# --- ESCROW ---------------------------------------------------------------------------------------


def test_escrow_create_codes_in_order() -> None:
    h = Harness(params=Params(chain_id=TEST_CHAIN, max_open_per_account=1))
    a, b = h["A"], h.key("B")
    h.ok(a.mint(0, 5))
    lots = [h.lot("A", 0, 2)]
    assert h.code(a.escrow_create(h.key("A"), lots, release_at=0)) == Code.SELF_TRADE
    assert h.code(a.escrow_create(b, lots, release_at=h.state.now + 1)) == Code.BAD_DEADLINE
    far = h.state.now + 2 + h.params.max_escrow_ttl
    assert h.code(a.escrow_create(b, lots, refund_at=far)) == Code.BAD_DEADLINE
    assert h.code(a.escrow_create(b, [h.lot("A", 0, 6)], release_at=90)) == Code.INSUFFICIENT_BALANCE
    h.ok(a.escrow_create(b, lots, release_at=90))
    assert h.code(a.escrow_create(b, [h.lot("A", 0, 9)], release_at=90)) == Code.TOO_MANY_OPEN


def test_time_release_escrow_fires_and_cancel_at_release_time_is_closed(h: Harness) -> None:
    h.ok(h["A"].mint(0, 5))
    escrow_id = h.ok(h["A"].escrow_create(h.key("B"), [h.lot("A", 0, 3)], release_at=10, cancellable=True))[0]
    eid = escrow_id.events[0][1]
    assert h.code(h["A"].escrow_cancel(eid), now=10) == Code.CONTRACT_CLOSED  # release_at == now fired first
    assert h.state.escrows[eid].state == EscrowState.RELEASED and h.free("B", "A") == 3


def test_escrow_cancel_codes_in_order(h: Harness) -> None:
    h.ok(h["A"].mint(0, 5))
    fixed = h.ok(h["A"].escrow_create(h.key("B"), [h.lot("A", 0, 1)], release_at=50))[0].events[0][1]
    free = h.ok(h["A"].escrow_create(h.key("B"), [h.lot("A", 0, 1)], refund_at=50, cancellable=True))
    fid = free[0].events[0][1]
    assert h.code(h["A"].escrow_cancel(99)) == Code.UNKNOWN_CONTRACT
    assert h.code(h["B"].escrow_cancel(fid)) == Code.NOT_PARTY
    assert h.code(h["A"].escrow_cancel(fixed)) == Code.ESCROW_NOT_CANCELLABLE
    h.ok(h["A"].escrow_cancel(fid))
    assert h.state.escrows[fid].state == EscrowState.REFUNDED and h.free("A", "A") == 4
    assert h.code(h["A"].escrow_cancel(fid)) == Code.CONTRACT_CLOSED
    h.block(now=50)
    assert h.code(h["A"].escrow_cancel(fixed)) == Code.ESCROW_NOT_CANCELLABLE  # listed before LOCKED


def test_escrow_release_codes(h: Harness) -> None:
    h.ok(h["A"].mint(0, 5))
    eid = h.ok(h["A"].escrow_create(h.key("B"), [h.lot("A", 0, 2)], refund_at=50))[0].events[0][1]
    assert h.code(h["A"].escrow_release(eid + 1)) == Code.UNKNOWN_CONTRACT
    assert h.code(h["B"].escrow_release(eid)) == Code.NOT_PARTY
    h.ok(h["A"].escrow_release(eid))
    assert h.free("B", "A") == 2 and h.state.escrows[eid].state == EscrowState.RELEASED
    assert h.code(h["A"].escrow_release(eid)) == Code.CONTRACT_CLOSED


def test_option_exercise_one_tick_before_refund_and_codes(h: Harness) -> None:
    a, b = h["A"], h["B"]
    h.ok(a.mint(0, 5), b.mint(0, 5))
    strike = [h.lot("B", 0, 3)]
    option_id = h.ok(a.escrow_create(b.account, [h.lot("A", 0, 2)], refund_at=20, strike=strike))[0].events[
        0
    ][1]
    late_id = h.ok(a.escrow_create(b.account, [h.lot("A", 0, 1)], refund_at=20, strike=strike))[0].events[0][
        1
    ]
    plain = h.ok(a.escrow_create(b.account, [h.lot("A", 0, 1)], refund_at=30))[0].events[0][1]
    assert h.code(b.escrow_exercise(99)) == Code.UNKNOWN_CONTRACT
    assert h.code(a.escrow_exercise(option_id)) == Code.NOT_PARTY
    nonce = h.state.nonces[b.account]
    assert h.code(b.escrow_exercise(plain)) == Code.NO_STRIKE
    assert h.state.nonces[b.account] == nonce + 1  # depends on the stored escrow, so the nonce is consumed
    h.ok(b.transfer(h.key("C"), [h.lot("B", 0, 3)]))
    assert h.code(b.escrow_exercise(option_id)) == Code.INSUFFICIENT_BALANCE
    h.ok(b.mint(0, 3))
    h.ok(b.escrow_exercise(option_id), now=19)  # one tick before refund_at
    assert h.free("B", "A") == 2 and h.free("A", "B") == 3
    assert h.state.escrows[option_id].state == EscrowState.EXERCISED
    assert h.code(b.escrow_exercise(late_id), now=20) == Code.CONTRACT_CLOSED  # refunded at begin_block
    assert h.state.escrows[late_id].state == EscrowState.REFUNDED


# --- SETTLE_CLAIM / WITHDRAW_CLAIM ----------------------------------------------------------------


def test_settle_claim_partial_then_full_and_codes(h: Harness) -> None:
    claim_id = defaulted(h)
    a = h["A"]
    h.ok(h["C"].mint(0, 9), h["C"].transfer(a.account, [h.lot("C", 0, 9)]))
    assert h.code(a.settle_claim(99, [h.lot("C", 0, 1)])) == Code.UNKNOWN_CONTRACT
    assert h.code(h["B"].settle_claim(claim_id, [h.lot("C", 0, 1)])) == Code.NOT_PARTY
    assert h.code(a.settle_claim(claim_id, [])) == Code.AMOUNT_MISMATCH
    assert h.code(a.settle_claim(claim_id, [h.lot("C", 0, 6)])) == Code.AMOUNT_MISMATCH
    assert h.code(a.settle_claim(claim_id, [h.lot("A", 0, 1)])) == Code.WANT_OWN_ISSUER
    assert h.code(a.settle_claim(claim_id, [h.lot("B", 0, 1)])) == Code.INSUFFICIENT_BALANCE
    h.ok(a.settle_claim(claim_id, [h.lot("C", 0, 2)]))  # partial
    claim = h.state.claims[claim_id]
    assert (claim.amount, claim.state, h.free("B", "C"), h.free("A", "A")) == (3, ClaimState.OPEN, 2, 2)
    assert h.code(a.mint(0, 1)) == Code.ISSUER_IN_DEFAULT
    h.ok(a.settle_claim(claim_id, [h.lot("C", 0, 3)]))
    assert (claim.amount, claim.state, h.free("A", "A")) == (0, ClaimState.SETTLED, 5)
    assert h.code(a.settle_claim(claim_id, [h.lot("C", 0, 1)])) == Code.CONTRACT_CLOSED
    assert h.code(a.mint(0, 1)) == Code.OK and h.state.default_count[a.account] == 1


def test_withdraw_claim_returns_the_units(h: Harness) -> None:
    claim_id = defaulted(h)
    assert h.code(h["B"].withdraw_claim(claim_id + 5)) == Code.UNKNOWN_CONTRACT
    assert h.code(h["A"].withdraw_claim(claim_id)) == Code.NOT_PARTY
    h.ok(h["B"].withdraw_claim(claim_id))
    assert h.free("B", "A") == 5 and h.state.claims[claim_id].state == ClaimState.WITHDRAWN
    assert h.code(h["B"].withdraw_claim(claim_id)) == Code.CONTRACT_CLOSED
    assert h.code(h["A"].mint(0, 1)) == Code.OK


# --- block start ----------------------------------------------------------------------------------


def test_deadlines_fire_merged_by_deadline_then_id(h: Harness) -> None:
    a, b = h["A"], h.key("B")
    h.ok(a.mint(0, 9))
    h.ok(
        a.escrow_create(b, [h.lot("A", 0, 1)], release_at=20),  # id 1, deadline 20
        a.offer(b, [h.lot("A", 0, 1)], [], 15),  # id 2, deadline 15
        a.escrow_create(b, [h.lot("A", 0, 1)], refund_at=15),  # id 3, deadline 15
        a.offer(b, [h.lot("A", 0, 1)], [], 40),
    )  # id 4, not yet
    h.block(now=30)
    assert h.last is not None
    assert h.last.block_events == [
        ["offer_expired", 2, 15],
        ["escrow_refunded", 3, 15],
        ["escrow_released", 1, 20],
    ]
    h.block(now=35)
    assert h.last.block_events == []


def test_block_order_errors(h: Harness) -> None:
    h.block(now=5)
    with pytest.raises(BlockOrderError):
        h.ledger.apply_block(3, 6, [])
    with pytest.raises(BlockOrderError):
        h.ledger.apply_block(2, 4, [])
    assert h.ledger.apply_block(2, 5, []).height == 2


def test_unregistered_accounts_exist_implicitly() -> None:
    h = Harness()
    stranger = Client(SigningKey.from_label("nobody"), TEST_CHAIN)
    assert h.code(stranger.transfer(h.key("A"), [(stranger.account, 0, 1)])) == Code.INSUFFICIENT_BALANCE
    assert h.state.nonces[stranger.account] == 1
