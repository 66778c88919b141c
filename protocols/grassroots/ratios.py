"""Liquidity ratios and balance-sheet figures (spec 6.2), as exact fractions.

Assets count only *free* holdings of other issuers' bonds; liabilities count p-bonds owned by anyone
but p, free or locked in a contract by a depositor, proposer or claimant other than p.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from hedgerow.protocols.grassroots.codes import ClaimState, EscrowState, OfferState
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import LedgerState


def owned_units(state: LedgerState) -> Iterator[tuple[bytes, bytes, int, int]]:
    """(owner, issuer, maturity, amount) for every free and every locked unit group."""
    for holder, held in state.holdings.items():
        for (issuer, maturity), amount in held.items():
            yield holder, issuer, maturity, amount
    for offer in state.offers.values():
        if offer.state == OfferState.OPEN:
            for issuer, maturity, amount in offer.give:
                yield offer.proposer, issuer, maturity, amount
    for escrow in state.escrows.values():
        if escrow.state == EscrowState.LOCKED:
            for issuer, maturity, amount in escrow.lots:
                yield escrow.depositor, issuer, maturity, amount
    for claim in state.claims.values():
        if claim.state == ClaimState.OPEN:
            yield claim.claimant, claim.issuer, claim.maturity, claim.amount


def liabilities(state: LedgerState, agent: bytes, horizon: int | None = None) -> int:
    """Units of `agent`'s bonds owned by others, maturing by `now + horizon` (all when None)."""
    limit = None if horizon is None else state.now + horizon
    return sum(
        amount
        for owner, issuer, maturity, amount in owned_units(state)
        if issuer == agent and owner != agent and (limit is None or maturity <= limit)
    )


def assets(state: LedgerState, agent: bytes, horizon: int | None = None) -> int:
    """Free units of other issuers' bonds `agent` holds, maturing by `now + horizon` (all when None)."""
    limit = None if horizon is None else state.now + horizon
    return sum(
        amount
        for (issuer, maturity), amount in state.holdings.get(agent, {}).items()
        if issuer != agent and (limit is None or maturity <= limit)
    )


@dataclass(frozen=True, slots=True)
class Ratios:
    cash: int
    quick: int
    current: int
    current_liabilities: int

    def _ratio(self, value: int) -> Fraction | None:
        return None if self.current_liabilities == 0 else Fraction(value, self.current_liabilities)

    @property
    def cash_ratio(self) -> Fraction | None:
        return self._ratio(self.cash)

    @property
    def quick_ratio(self) -> Fraction | None:
        return self._ratio(self.quick)

    @property
    def current_ratio(self) -> Fraction | None:
        return self._ratio(self.current)

    def as_strings(self) -> dict[str, str | None]:
        """{"cash": "10/11", ...}; None stands for infinity (no current liabilities)."""
        return {
            name: None if value is None else fraction_text(value)
            for name, value in (
                ("cash", self.cash_ratio),
                ("quick", self.quick_ratio),
                ("current", self.current_ratio),
            )
        }


def fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def ratios(state: LedgerState, params: Params, agent: bytes) -> Ratios:
    return Ratios(
        cash=assets(state, agent, 0),
        quick=assets(state, agent, params.quick_horizon_ticks),
        current=assets(state, agent, params.current_horizon_ticks),
        current_liabilities=liabilities(state, agent, params.current_horizon_ticks),
    )


def exposure(state: LedgerState, agent: bytes, other: bytes) -> tuple[int, int]:
    """(units of `other`'s bonds `agent` holds free, units of `agent`'s bonds `other` holds free)."""
    mine = sum(amount for (issuer, _), amount in state.holdings.get(agent, {}).items() if issuer == other)
    theirs = sum(amount for (issuer, _), amount in state.holdings.get(other, {}).items() if issuer == agent)
    return mine, theirs


def net_position(state: LedgerState, agent: bytes) -> int:
    """All free assets minus all liabilities, every maturity, unit for unit."""
    return assets(state, agent) - liabilities(state, agent)
