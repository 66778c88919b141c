"""The instruments of spec 5.4 expand into ledger txs with the intended effects."""

from __future__ import annotations

import pytest

from hedgerow.protocols.grassroots import instruments
from hedgerow.protocols.grassroots.codes import Code, EscrowState
from hedgerow.protocols.grassroots.testing import Harness


@pytest.fixture
def h() -> Harness:
    return Harness(letters="ABC")


def test_credit_line_is_one_for_one(h: Harness) -> None:
    h.ok(*instruments.credit_line(h["A"], h["B"], 7, 50))
    assert (h.free("A", "B"), h.free("B", "A"), h.free("A", "A")) == (7, 7, 0)


def test_zero_coupon_loan_repaid_by_auto_redemption_at_maturity(h: Harness) -> None:
    lender, borrower = h["A"], h["B"]
    h.ok(*instruments.zero_coupon_loan(lender, borrower, 9, 10, 20, 50))
    assert h.free("A", "B", 20) == 10 and h.free("B", "A") == 9
    with pytest.raises(ValueError):
        instruments.zero_coupon_loan(lender, borrower, 10, 9, 20, 50)
    # at maturity the lender redeems; the borrower nets with the lender's coins it holds, then defaults
    receipts = h.ok(lender.redeem(borrower.account, 20, 10), now=20)
    events = {event[0]: event for event in receipts[0].events}
    assert events["redeem"][4] == 9 and events["default"][4] == 1


def test_balloon_loan_wants_several_maturities(h: Harness) -> None:
    h.ok(*instruments.balloon_loan(h["A"], h["B"], 10, [(100, 1), (200, 1), (300, 11)], 50))
    assert [h.free("A", "B", t) for t in (100, 200, 300)] == [1, 1, 11] and h.free("B", "A") == 10


def test_prepayment_returns_the_borrowers_bonds(h: Harness) -> None:
    lender, borrower = h["A"], h["B"]
    h.ok(*instruments.zero_coupon_loan(lender, borrower, 5, 6, 40, 50))
    h.ok(*instruments.prepayment(borrower, lender.account, 5, [(borrower.account, 40, 5)]))
    assert h.free("A", "B", 40) == 1 and h.free("B", "B", 40) == 5 and h.free("A", "A") == 5


def test_sale_of_debt_at_a_discount(h: Harness) -> None:
    h.ok(*instruments.zero_coupon_loan(h["A"], h["B"], 9, 10, 30, 50))
    h.ok(h["C"].mint(0, 8))
    h.ok(*instruments.sale_of_debt(h["A"], h["C"], [h.lot("B", 30, 10)], [h.lot("C", 0, 8)], 50))
    assert h.free("C", "B", 30) == 10 and h.free("A", "C") == 8


def test_forward_swaps_equal_maturities(h: Harness) -> None:
    h.ok(*instruments.forward(h["A"], h["B"], 3, 60, 50))
    assert h.free("A", "B", 60) == 3 and h.free("B", "A", 60) == 3


def test_delivery_escrow_released_on_delivery_or_refunded(h: Harness) -> None:
    h.ok(h["A"].mint(0, 10))
    paid = h.ok(*instruments.delivery_escrow(h["A"], h.key("B"), [h.lot("A", 0, 4)], 30))[0].events[0][1]
    kept = h.ok(*instruments.delivery_escrow(h["A"], h.key("B"), [h.lot("A", 0, 6)], 30))[0].events[0][1]
    h.ok(h["A"].escrow_release(paid))
    h.block(now=30)
    assert h.state.escrows[kept].state == EscrowState.REFUNDED
    assert (h.free("B", "A"), h.free("A", "A")) == (4, 6)


def test_option_with_premium_exercised_before_expiry(h: Harness) -> None:
    writer, holder = h["A"], h["B"]
    txs = instruments.option(writer, holder, [h.lot("A", 0, 5)], [h.lot("B", 0, 4)], 40, [h.lot("B", 0, 1)])
    receipts = h.ok(*txs)
    option_id = receipts[-1].events[0][1]
    assert h.free("A", "B") == 1  # the premium
    assert h.code(holder.escrow_cancel(option_id)) == Code.NOT_PARTY
    assert h.code(writer.escrow_cancel(option_id)) == Code.ESCROW_NOT_CANCELLABLE
    h.ok(holder.mint(0, 4))
    h.ok(holder.escrow_exercise(option_id), now=39)
    assert (h.free("B", "A"), h.free("A", "B")) == (5, 5)
