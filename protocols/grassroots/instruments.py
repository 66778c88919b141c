"""The instruments of spec 5.4 as named helpers that expand into ledger txs (mostly SWAPs).

There are no loan objects: enforcement is the issuer's duty to redeem. Each helper returns the
signed txs in the order they must be committed. With `mint=True` (the default) a party first MINTs
the bonds of its own that it gives, as the village market does ("each party MINTs just before it gives").
"""

from __future__ import annotations

from collections.abc import Iterable

from hedgerow.protocols.grassroots.client import Client, make_lots
from hedgerow.protocols.grassroots.encoding import Lot, Lots


def _mints(party: Client, lots: Lots, mint: bool) -> list[bytes]:
    if not mint:
        return []
    return [party.mint(maturity, amount) for issuer, maturity, amount in lots if issuer == party.account]


def swap_lots(
    a: Client, give: Iterable[Lot], b: Client, want: Iterable[Lot], expires_at: int, *, mint: bool = True
) -> list[bytes]:
    """A SWAP of `give` (from a) for `want` (from b), preceded by each side's MINTs of its own bonds."""
    give_lots, want_lots = make_lots(give), make_lots(want)
    txs = _mints(a, give_lots, mint) + _mints(b, want_lots, mint)
    txs.append(a.swap_with(b, give_lots, want_lots, expires_at))
    return txs


def credit_line(a: Client, b: Client, amount: int, expires_at: int, *, mint: bool = True) -> list[bytes]:
    """Mutual credit: `amount` a-coins for `amount` b-coins, strictly 1-for-1."""
    return swap_lots(a, [(a.account, 0, amount)], b, [(b.account, 0, amount)], expires_at, mint=mint)


def zero_coupon_loan(
    lender: Client,
    borrower: Client,
    principal: int,
    face: int,
    maturity: int,
    expires_at: int,
    *,
    coins: Iterable[Lot] | None = None,
    mint: bool = True,
) -> list[bytes]:
    """The lender gives `principal` coins (its own unless `coins` names others) for `face >= principal`
    borrower bonds maturing at `maturity` (GLP play 5). Settles by redemption at maturity, or default."""
    if face < principal:
        raise ValueError("a zero-coupon loan repays at least the principal")
    give = list(coins) if coins is not None else [(lender.account, 0, principal)]
    return swap_lots(lender, give, borrower, [(borrower.account, maturity, face)], expires_at, mint=mint)


def balloon_loan(
    lender: Client,
    borrower: Client,
    principal: int,
    schedule: Iterable[tuple[int, int]],
    expires_at: int,
    *,
    mint: bool = True,
) -> list[bytes]:
    """Coupon / balloon loan: `principal` lender coins for borrower bonds at several maturities,
    `schedule` = [(maturity, amount), ...] (GLP play 6: (100,1), (200,1), (300,11) for 10)."""
    want = [(borrower.account, maturity, amount) for maturity, amount in schedule]
    return swap_lots(lender, [(lender.account, 0, principal)], borrower, want, expires_at, mint=mint)


def prepayment(borrower: Client, lender: bytes, coins: int, own_bonds: Iterable[Lot]) -> list[bytes]:
    """The borrower redeems `coins` of the lender's coins against its own bonds the lender holds."""
    return [borrower.redeem(lender, 0, coins, own_bonds)]


def sale_of_debt(
    seller: Client, buyer: Client, bonds: Iterable[Lot], price: Iterable[Lot], expires_at: int
) -> list[bytes]:
    """The holder sells bonds (or coins) of a third party to `buyer`, typically at a discount."""
    return swap_lots(seller, bonds, buyer, price, expires_at, mint=False)


def forward(
    a: Client, b: Client, amount: int, maturity: int, expires_at: int, *, mint: bool = True
) -> list[bytes]:
    """Forward: `amount` a-bonds for `amount` b-bonds, both maturing at `maturity` (GLP play 9)."""
    return swap_lots(
        a, [(a.account, maturity, amount)], b, [(b.account, maturity, amount)], expires_at, mint=mint
    )


def time_release_escrow(
    depositor: Client, beneficiary: bytes, lots: Iterable[Lot], release_at: int, *, cancellable: bool = True
) -> list[bytes]:
    """Lots go to the beneficiary at `release_at` unless the depositor cancels first (plays 10/11)."""
    return [depositor.escrow_create(beneficiary, lots, release_at=release_at, cancellable=cancellable)]


def delivery_escrow(
    depositor: Client, beneficiary: bytes, lots: Iterable[Lot], refund_at: int, *, cancellable: bool = False
) -> list[bytes]:
    """Payment held until the depositor releases it on delivery; refunded at `refund_at` otherwise."""
    return [depositor.escrow_create(beneficiary, lots, refund_at=refund_at, cancellable=cancellable)]


def option(
    writer: Client,
    holder: Client,
    underlying: Iterable[Lot],
    strike: Iterable[Lot],
    expiry: int,
    premium: Iterable[Lot] = (),
    *,
    mint: bool = True,
) -> list[bytes]:
    """Call/put option: the writer escrows the underlying for `holder` with refund at `expiry` and a
    strike, not cancellable; the premium is a separate TRANSFER from holder to writer. The holder
    exercises with `holder.escrow_exercise(id)` before `expiry`."""
    underlying_lots = make_lots(underlying)
    txs = _mints(writer, underlying_lots, mint)
    premium_lots = make_lots(premium)
    if premium_lots:
        txs += _mints(holder, premium_lots, mint)
        txs.append(holder.transfer(writer.account, premium_lots))
    txs.append(
        writer.escrow_create(
            holder.account, underlying_lots, refund_at=expiry, strike=strike, cancellable=False
        )
    )
    return txs
