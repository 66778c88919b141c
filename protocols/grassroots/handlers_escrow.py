"""ESCROW_CREATE / RELEASE / CANCEL / EXERCISE (spec 5.3): time-release, delivery escrow, options."""

from __future__ import annotations

from hedgerow.protocols.grassroots.codes import Code, EscrowState
from hedgerow.protocols.grassroots.encoding import ContractRef, EscrowCreate, Tx, lots_wire
from hedgerow.protocols.grassroots.handlers_trade import FAIL, Result
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import EscrowContract, LedgerState, bump


def handle_escrow_create(state: LedgerState, params: Params, tx: Tx) -> Result:
    body = tx.body
    assert isinstance(body, EscrowCreate)
    if body.beneficiary == tx.signer:
        return Code.SELF_TRADE, FAIL
    if not state.now < body.deadline <= state.now + params.max_escrow_ttl:
        return Code.BAD_DEADLINE, FAIL
    if state.locked_escrows_by.get(tx.signer, 0) >= params.max_open_per_account:
        return Code.TOO_MANY_OPEN, FAIL
    if not state.holds(tx.signer, body.lots):
        return Code.INSUFFICIENT_BALANCE, FAIL
    escrow_id = state.next_id
    state.next_id += 1
    state.debit(tx.signer, body.lots)
    state.escrows[escrow_id] = EscrowContract(
        escrow_id,
        tx.signer,
        body.beneficiary,
        body.lots,
        body.release_at,
        body.refund_at,
        body.strike,
        body.cancellable,
        state.now,
    )
    bump(state.locked_escrows_by, tx.signer, 1)
    state.push_deadline(body.deadline, escrow_id)
    return Code.OK, [["escrow", escrow_id, tx.signer, body.beneficiary, lots_wire(body.lots)]]


def close_escrow(state: LedgerState, escrow: EscrowContract, final: EscrowState) -> None:
    """Pay out a LOCKED escrow's lots (to the beneficiary unless REFUNDED) and close it."""
    receiver = escrow.depositor if final == EscrowState.REFUNDED else escrow.beneficiary
    state.credit(receiver, escrow.lots)
    escrow.state = final
    bump(state.locked_escrows_by, escrow.depositor, -1)


def _escrow(state: LedgerState, tx: Tx) -> EscrowContract | None:
    body = tx.body
    assert isinstance(body, ContractRef)
    return state.escrows.get(body.contract_id)


def handle_escrow_release(state: LedgerState, params: Params, tx: Tx) -> Result:
    escrow = _escrow(state, tx)
    if escrow is None:
        return Code.UNKNOWN_CONTRACT, FAIL
    if tx.signer != escrow.depositor:
        return Code.NOT_PARTY, FAIL
    if escrow.state != EscrowState.LOCKED:
        return Code.CONTRACT_CLOSED, FAIL
    close_escrow(state, escrow, EscrowState.RELEASED)
    return Code.OK, [["escrow_release", escrow.id]]


def handle_escrow_cancel(state: LedgerState, params: Params, tx: Tx) -> Result:
    escrow = _escrow(state, tx)
    if escrow is None:
        return Code.UNKNOWN_CONTRACT, FAIL
    if tx.signer != escrow.depositor:
        return Code.NOT_PARTY, FAIL
    if not escrow.cancellable:  # spec 5.3 lists `cancellable` before LOCKED for this kind
        return Code.ESCROW_NOT_CANCELLABLE, FAIL
    if escrow.state != EscrowState.LOCKED:
        return Code.CONTRACT_CLOSED, FAIL
    close_escrow(state, escrow, EscrowState.REFUNDED)
    return Code.OK, [["escrow_refund", escrow.id]]


def handle_escrow_exercise(state: LedgerState, params: Params, tx: Tx) -> Result:
    escrow = _escrow(state, tx)
    if escrow is None:
        return Code.UNKNOWN_CONTRACT, FAIL
    if tx.signer != escrow.beneficiary:
        return Code.NOT_PARTY, FAIL
    if escrow.state != EscrowState.LOCKED:
        return Code.CONTRACT_CLOSED, FAIL
    if not escrow.strike:
        return Code.NO_STRIKE, FAIL
    if not state.holds(tx.signer, escrow.strike):
        return Code.INSUFFICIENT_BALANCE, FAIL
    state.debit(tx.signer, escrow.strike)
    state.credit(escrow.depositor, escrow.strike)
    close_escrow(state, escrow, EscrowState.EXERCISED)
    return Code.OK, [["escrow_exercise", escrow.id]]
