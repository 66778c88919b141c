"""MINT, BURN, TRANSFER, OFFER, ACCEPT, DECLINE, CANCEL_OFFER and SWAP (spec 5.3).

Each handler checks its preconditions in the spec's order and returns the first failing code with
no effect; only when all hold does it mutate the state and return its events.
"""

from __future__ import annotations

from typing import Any

from hedgerow.protocols.grassroots.codes import Code, OfferState
from hedgerow.protocols.grassroots.encoding import (
    Accept,
    Burn,
    ContractRef,
    Lots,
    Mint,
    Offer,
    Swap,
    Transfer,
    Tx,
    lots_wire,
    terms_hash,
)
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import LedgerState, OfferContract, bump

Result = tuple[Code, list[list[Any]]]
SUPPLY_LIMIT = 2**63
FAIL: list[list[Any]] = []


def handle_mint(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Mint)
    key = (tx.signer, body.maturity)
    if body.amount > params.max_amount or state.minted.get(key, 0) + body.amount >= SUPPLY_LIMIT:
        return Code.INVALID_AMOUNT, FAIL
    if state.in_default(tx.signer):
        return Code.ISSUER_IN_DEFAULT, FAIL
    state.add(tx.signer, tx.signer, body.maturity, body.amount)
    state.add_supply(tx.signer, body.maturity, minted=body.amount)
    return Code.OK, [["mint", tx.signer, body.maturity, body.amount]]


def handle_burn(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Burn)
    maturity, amount = body.maturity, body.amount
    if state.free(tx.signer, tx.signer, maturity) < amount:
        return Code.INSUFFICIENT_BALANCE, FAIL
    state.sub(tx.signer, tx.signer, maturity, amount)
    state.add_supply(tx.signer, maturity, burned=amount)
    return Code.OK, [["burn", tx.signer, maturity, amount]]


def handle_transfer(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Transfer)
    if body.to == tx.signer:
        return Code.SELF_TRADE, FAIL
    if not state.holds(tx.signer, body.lots):
        return Code.INSUFFICIENT_BALANCE, FAIL
    state.debit(tx.signer, body.lots)
    state.credit(body.to, body.lots)
    return Code.OK, [["transfer", tx.signer, body.to, lots_wire(body.lots)]]


def handle_offer(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Offer)
    if body.counterparty == tx.signer:
        return Code.SELF_TRADE, FAIL
    if not state.now < body.expires_at <= state.now + params.max_offer_ttl:
        return Code.BAD_DEADLINE, FAIL
    if state.open_offers_by.get(tx.signer, 0) >= params.max_open_per_account:
        return Code.TOO_MANY_OPEN, FAIL
    if not state.holds(tx.signer, body.give):
        return Code.INSUFFICIENT_BALANCE, FAIL
    offer_id = state.next_id
    state.next_id += 1
    state.debit(tx.signer, body.give)
    state.offers[offer_id] = OfferContract(
        offer_id, tx.signer, body.counterparty, body.give, body.want, body.expires_at, state.now
    )
    bump(state.open_offers_by, tx.signer, 1)
    state.push_deadline(body.expires_at, offer_id)
    return Code.OK, [["offer", offer_id, tx.signer, body.counterparty]]


def offer_terms_hash(offer: OfferContract) -> bytes:
    return terms_hash(offer.id, offer.proposer, offer.counterparty, offer.give, offer.want, offer.expires_at)


def handle_accept(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Accept)
    offer = state.offers.get(body.offer_id)
    if offer is None:
        return Code.UNKNOWN_CONTRACT, FAIL
    if tx.signer != offer.counterparty:
        return Code.NOT_PARTY, FAIL
    if offer.state == OfferState.EXPIRED or state.now >= offer.expires_at:
        return Code.OFFER_EXPIRED, FAIL
    if offer.state != OfferState.OPEN:
        return Code.CONTRACT_CLOSED, FAIL
    if body.terms_hash != offer_terms_hash(offer):
        return Code.TERMS_MISMATCH, FAIL
    if not state.holds(tx.signer, offer.want):
        return Code.INSUFFICIENT_BALANCE, FAIL
    state.debit(tx.signer, offer.want)
    state.credit(offer.proposer, offer.want)
    state.credit(tx.signer, offer.give)
    close_offer(state, offer, OfferState.ACCEPTED)
    return Code.OK, [["accept", offer.id]]


def close_offer(state: LedgerState, offer: OfferContract, final: OfferState) -> None:
    """Move an OPEN offer to a terminal state (the caller has moved its locked `give`)."""
    offer.state = final
    bump(state.open_offers_by, offer.proposer, -1)


def refund_offer(state: LedgerState, offer: OfferContract, final: OfferState) -> None:
    state.credit(offer.proposer, offer.give)
    close_offer(state, offer, final)


def _offer_party_check(state: LedgerState, tx: Tx, as_proposer: bool) -> tuple[Code, OfferContract | None]:
    body = tx.body
    assert isinstance(body, ContractRef)
    offer = state.offers.get(body.contract_id)
    if offer is None:
        return Code.UNKNOWN_CONTRACT, None
    if tx.signer != (offer.proposer if as_proposer else offer.counterparty):
        return Code.NOT_PARTY, None
    if offer.state != OfferState.OPEN:
        return Code.CONTRACT_CLOSED, None
    return Code.OK, offer


def handle_decline(state: LedgerState, params: Params, tx: Tx) -> Result:
    code, offer = _offer_party_check(state, tx, as_proposer=False)
    if offer is None:
        return code, FAIL
    refund_offer(state, offer, OfferState.DECLINED)
    return Code.OK, [["decline", offer.id]]


def handle_cancel_offer(state: LedgerState, params: Params, tx: Tx) -> Result:
    code, offer = _offer_party_check(state, tx, as_proposer=True)
    if offer is None:
        return code, FAIL
    refund_offer(state, offer, OfferState.CANCELLED)
    return Code.OK, [["cancel_offer", offer.id]]


def handle_swap(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, Swap)
    if body.counterparty == tx.signer:
        return Code.SELF_TRADE, FAIL
    if state.now >= body.expires_at:
        return Code.OFFER_EXPIRED, FAIL
    if not state.holds(tx.signer, body.give) or not state.holds(body.counterparty, body.want):
        return Code.INSUFFICIENT_BALANCE, FAIL
    exchange(state, tx.signer, body.give, body.counterparty, body.want)
    return Code.OK, [["swap", tx.signer, body.counterparty, lots_wire(body.give), lots_wire(body.want)]]


def exchange(state: LedgerState, a: bytes, give: Lots, b: bytes, want: Lots) -> None:
    state.debit(a, give)
    state.debit(b, want)
    state.credit(b, give)
    state.credit(a, want)
