"""REDEEM (explicit want and auto with netting and default claims), SETTLE_CLAIM, WITHDRAW_CLAIM."""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from hedgerow.protocols.grassroots.codes import ClaimState, Code
from hedgerow.protocols.grassroots.encoding import (
    ContractRef,
    Lot,
    Lots,
    Redeem,
    SettleClaim,
    Tx,
    lots_sum,
    lots_wire,
)
from hedgerow.protocols.grassroots.handlers_trade import FAIL, Result
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import ClaimContract, LedgerState, bump


def liquidity_date(maturity: int, now: int) -> int:
    """L(t) = max(t, now): the date from which a bond is as good as a coin."""
    return maturity if maturity > now else now


def handle_redeem(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Redeem)
    issuer, redeemer = body.issuer, tx.signer
    if issuer == redeemer:
        return Code.SELF_REDEEM, FAIL
    if state.free(redeemer, issuer, body.maturity) < body.amount:
        return Code.INSUFFICIENT_BALANCE, FAIL
    if body.want:
        return _redeem_explicit(state, body, redeemer)
    return _redeem_auto(state, body, redeemer)


def _redeem_explicit(state: LedgerState, body: Redeem, redeemer: bytes) -> Result:
    issuer, want = body.issuer, body.want
    if lots_sum(want) != body.amount:
        return Code.AMOUNT_MISMATCH, FAIL
    if any(lot[0] == issuer for lot in want):
        return Code.WANT_OWN_ISSUER, FAIL
    floor = liquidity_date(body.maturity, state.now)
    if any(liquidity_date(lot[1], state.now) < floor for lot in want):
        return Code.NOT_MATURE, FAIL
    if not state.holds(issuer, want):
        return Code.WANT_NOT_HELD, FAIL
    state.sub(redeemer, issuer, body.maturity, body.amount)
    state.add(issuer, issuer, body.maturity, body.amount)
    state.debit(issuer, want)
    state.credit(redeemer, want)
    return Code.OK, [["redeem", issuer, redeemer, body.maturity, body.amount, lots_wire(want)]]


def auto_candidates(state: LedgerState, issuer: bytes, redeemer: bytes) -> list[Lot]:
    """The issuer's free classes an auto redemption draws on, in order (spec 5.3): the redeemer's own
    bonds first (netting, ascending maturity), then matured third-party bonds by (maturity, issuer)."""
    held = state.holdings.get(issuer, {})
    netting = sorted((maturity, amount) for (other, maturity), amount in held.items() if other == redeemer)
    third = sorted(
        (maturity, other, amount)
        for (other, maturity), amount in held.items()
        if other != issuer and other != redeemer and maturity <= state.now
    )
    return [(redeemer, maturity, amount) for maturity, amount in netting] + [
        (other, maturity, amount) for maturity, other, amount in third
    ]


def _candidates_in_order(state: LedgerState, issuer: bytes, redeemer: bytes) -> Iterator[Lot]:
    """`auto_candidates` lazily: one pass over the issuer's holdings, then heaps, so a redemption
    that the first lot or two fill does not sort every class the issuer holds."""
    held = state.holdings.get(issuer, {}).items()
    netting = [(maturity, amount) for (other, maturity), amount in held if other == redeemer]
    now = state.now
    third = [
        (maturity, other, amount)
        for (other, maturity), amount in held
        if maturity <= now and other != issuer and other != redeemer
    ]
    heapq.heapify(netting)
    while netting:
        maturity, amount = heapq.heappop(netting)
        yield redeemer, maturity, amount
    heapq.heapify(third)
    while third:
        maturity, other, amount = heapq.heappop(third)
        yield other, maturity, amount


def _redeem_auto(state: LedgerState, body: Redeem, redeemer: bytes) -> Result:
    issuer = body.issuer
    if body.maturity > state.now:
        return Code.WANT_REQUIRED, FAIL
    filled: list[Lot] = []
    left = body.amount
    for other, maturity, amount in _candidates_in_order(state, issuer, redeemer):
        take = min(left, amount)
        filled.append((other, maturity, take))
        left -= take
        if not left:
            break
    got: Lots = tuple(sorted(filled))
    paid = body.amount - left
    state.sub(redeemer, issuer, body.maturity, body.amount)
    if paid:
        state.add(issuer, issuer, body.maturity, paid)
        state.debit(issuer, got)
        state.credit(redeemer, got)
    events = [["redeem", issuer, redeemer, body.maturity, paid, lots_wire(got)]]
    if left:
        claim_id = state.next_id
        state.next_id += 1
        state.claims[claim_id] = ClaimContract(claim_id, redeemer, issuer, body.maturity, left, state.now)
        bump(state.open_claims_against, issuer, 1)
        state.default_count[issuer] = state.default_count.get(issuer, 0) + 1
        events.append(["default", issuer, redeemer, body.maturity, left, claim_id])
    return Code.OK, events


def _claim_check(
    state: LedgerState, tx: Tx, claim_id: int, as_issuer: bool
) -> tuple[Code, ClaimContract | None]:
    claim = state.claims.get(claim_id)
    if claim is None:
        return Code.UNKNOWN_CONTRACT, None
    if tx.signer != (claim.issuer if as_issuer else claim.claimant):
        return Code.NOT_PARTY, None
    if claim.state != ClaimState.OPEN:
        return Code.CONTRACT_CLOSED, None
    return Code.OK, claim


def handle_settle_claim(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, SettleClaim)
    code, claim = _claim_check(state, tx, body.claim_id, as_issuer=True)
    if claim is None:
        return code, FAIL
    paid = lots_sum(body.lots)
    if not 1 <= paid <= claim.amount:
        return Code.AMOUNT_MISMATCH, FAIL
    if any(lot[0] == tx.signer for lot in body.lots):
        return Code.WANT_OWN_ISSUER, FAIL
    if not state.holds(tx.signer, body.lots):
        return Code.INSUFFICIENT_BALANCE, FAIL
    state.debit(tx.signer, body.lots)
    state.credit(claim.claimant, body.lots)
    state.add(tx.signer, tx.signer, claim.maturity, paid)
    claim.amount -= paid
    if not claim.amount:
        _close_claim(state, claim, ClaimState.SETTLED)
    return Code.OK, [["settle_claim", claim.id, lots_wire(body.lots), claim.amount]]


def handle_withdraw_claim(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, ContractRef)
    code, claim = _claim_check(state, tx, body.contract_id, as_issuer=False)
    if claim is None:
        return code, FAIL
    returned = claim.amount
    state.add(claim.claimant, claim.issuer, claim.maturity, returned)
    claim.amount = 0
    _close_claim(state, claim, ClaimState.WITHDRAWN)
    return Code.OK, [["withdraw_claim", claim.id, returned]]


def _close_claim(state: LedgerState, claim: ClaimContract, final: ClaimState) -> None:
    claim.state = final
    bump(state.open_claims_against, claim.issuer, -1)
