"""Deadlines fired at block start (spec 5.1), all kinds merged in ascending (deadline, id) order."""

from __future__ import annotations

import heapq
from typing import Any

from hedgerow.protocols.grassroots.codes import EscrowState, OfferState
from hedgerow.protocols.grassroots.handlers_escrow import close_escrow
from hedgerow.protocols.grassroots.handlers_trade import refund_offer
from hedgerow.protocols.grassroots.state import LedgerState


def fire_deadlines(state: LedgerState) -> list[list[Any]]:
    """Expire offers and release/refund escrows whose deadline is <= now; return the block events.

    The heap may hold entries of contracts closed since they were pushed; those are skipped, so a
    deadline never fires for a closed contract and fires at most once."""
    events: list[list[Any]] = []
    heap = state.deadlines
    while heap and heap[0][0] <= state.now:
        deadline, contract_id = heapq.heappop(heap)
        offer = state.offers.get(contract_id)
        if offer is not None:
            if offer.state == OfferState.OPEN:
                refund_offer(state, offer, OfferState.EXPIRED)
                events.append(["offer_expired", contract_id, deadline])
            continue
        escrow = state.escrows[contract_id]
        if escrow.state != EscrowState.LOCKED:
            continue
        if escrow.release_at is not None:
            close_escrow(state, escrow, EscrowState.RELEASED)
            events.append(["escrow_released", contract_id, deadline])
        else:
            close_escrow(state, escrow, EscrowState.REFUNDED)
            events.append(["escrow_refunded", contract_id, deadline])
    return events
