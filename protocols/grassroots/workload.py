"""Seeded random transaction load over a set of clients, valid and invalid, every kind.

Used by the `random` sim scenario, the property tests and the benchmark. Pure: the randomness is a
`random.Random` passed in; txs are built from the committed state seen at the start of each block.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from hedgerow.protocols.grassroots.client import Client, make_lots
from hedgerow.protocols.grassroots.codes import ClaimState, EscrowState, Kind, OfferState
from hedgerow.protocols.grassroots.encoding import Lot, Lots, terms_hash
from hedgerow.protocols.grassroots.state import LedgerState

DEFAULT_MIX: dict[Kind, int] = {
    Kind.MINT: 12,
    Kind.BURN: 2,
    Kind.TRANSFER: 20,
    Kind.OFFER: 8,
    Kind.ACCEPT: 8,
    Kind.DECLINE: 2,
    Kind.CANCEL_OFFER: 2,
    Kind.REDEEM: 14,
    Kind.ESCROW_CREATE: 6,
    Kind.ESCROW_RELEASE: 2,
    Kind.ESCROW_CANCEL: 2,
    Kind.ESCROW_EXERCISE: 3,
    Kind.SETTLE_CLAIM: 4,
    Kind.WITHDRAW_CLAIM: 1,
    Kind.SWAP: 14,
}
CORRUPTIONS = ("flip", "stale_nonce", "future_nonce", "wrong_chain", "truncate")


@dataclass
class Workload:
    clients: Sequence[Client]
    rng: random.Random
    invalid_rate: float = 0.1
    mix: dict[Kind, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    maturity_span: int = 60

    def __post_init__(self) -> None:
        self._kinds = list(self.mix)
        self._weights = [self.mix[kind] for kind in self._kinds]
        self._pending: dict[bytes, int] = {}

    def block(self, state: LedgerState, size: int) -> list[bytes]:
        """`size` txs for the next block, built from `state` as committed before it."""
        self._pending = {}
        return [self.tx(state) for _ in range(size)]

    def tx(self, state: LedgerState) -> bytes:
        rng = self.rng
        kind = rng.choices(self._kinds, self._weights)[0]
        signer = self._party(kind, state) or rng.choice(self.clients)
        other = rng.choice([c for c in self.clients if c is not signer] or list(self.clients))
        if rng.random() < self.invalid_rate / 3:
            other = signer  # SELF_TRADE / SELF_REDEEM paths
        committed = state.nonces.get(signer.account, 0)
        signer.nonce = committed + self._pending.get(signer.account, 0)
        raw = self._build(kind, state, signer, other)
        if rng.random() < self.invalid_rate:
            return self._corrupt(raw, signer, kind, state, other)
        self._pending[signer.account] = self._pending.get(signer.account, 0) + 1
        return raw

    def _party(self, kind: Kind, state: LedgerState) -> Client | None:
        """Usually the account entitled to act on some open contract of the kind's type."""
        if self.rng.random() < 0.15:
            return None
        by_account = {client.account: client for client in self.clients}
        parties: list[bytes] = []
        if kind in (Kind.ACCEPT, Kind.DECLINE, Kind.CANCEL_OFFER):
            parties = [
                o.proposer if kind == Kind.CANCEL_OFFER else o.counterparty
                for o in state.offers.values()
                if o.state == OfferState.OPEN
            ]
        elif kind in (Kind.ESCROW_RELEASE, Kind.ESCROW_CANCEL, Kind.ESCROW_EXERCISE):
            parties = [
                e.beneficiary if kind == Kind.ESCROW_EXERCISE else e.depositor
                for e in state.escrows.values()
                if e.state == EscrowState.LOCKED and (kind != Kind.ESCROW_EXERCISE or e.strike)
            ]
        elif kind in (Kind.SETTLE_CLAIM, Kind.WITHDRAW_CLAIM):
            parties = [
                c.issuer if kind == Kind.SETTLE_CLAIM else c.claimant
                for c in state.claims.values()
                if c.state == ClaimState.OPEN
            ]
        known = [by_account[p] for p in sorted(set(parties)) if p in by_account]
        return self.rng.choice(known) if known else None

    def _corrupt(self, raw: bytes, signer: Client, kind: Kind, state: LedgerState, other: Client) -> bytes:
        how = self.rng.choice(CORRUPTIONS)
        if how == "flip":
            index = self.rng.randrange(len(raw))
            return raw[:index] + bytes([raw[index] ^ (1 << self.rng.randrange(8))]) + raw[index + 1 :]
        if how == "truncate":
            return raw[: self.rng.randrange(len(raw))]
        saved_chain, saved_nonce = signer.chain_id, signer.nonce
        if how == "wrong_chain":
            signer.chain_id = saved_chain + "-other"
        signer.nonce = saved_nonce + 5 if how == "future_nonce" else max(0, saved_nonce - 1)
        if how == "stale_nonce" and saved_nonce == 0:
            signer.nonce = 1  # a gap instead
        corrupted = self._build(kind, state, signer, other)
        signer.chain_id, signer.nonce = saved_chain, saved_nonce
        return corrupted

    # --- lot picking ---------------------------------------------------------------------------
    def _held(self, state: LedgerState, account: bytes, own: bool | None = None) -> list[Lot]:
        held = state.holdings.get(account, {})
        return [(i, m, a) for (i, m), a in sorted(held.items()) if own is None or (i == account) == own]

    def _some(self, lots: list[Lot], most: int = 3) -> Lots:
        if not lots:
            return ()
        chosen = self.rng.sample(lots, min(len(lots), self.rng.randint(1, most)))
        return make_lots(
            (i, m, self.rng.randint(1, a) if self.rng.random() < 0.9 else a + 1) for i, m, a in chosen
        )

    def _maturity(self, state: LedgerState) -> int:
        return 0 if self.rng.random() < 0.5 else max(0, state.now + self.rng.randint(-5, self.maturity_span))

    def _contract(self, ids: list[int], state: LedgerState) -> int:
        if ids and self.rng.random() < 0.9:
            return self.rng.choice(ids)
        return self.rng.randint(0, state.next_id + 1)

    # --- builders ------------------------------------------------------------------------------
    def _build(self, kind: Kind, state: LedgerState, s: Client, o: Client) -> bytes:
        rng, me = self.rng, s.account
        if kind == Kind.MINT:
            return s.mint(self._maturity(state), rng.randint(1, 60))
        if kind == Kind.BURN:
            own = self._held(state, me, own=True)
            lot = rng.choice(own) if own else (me, 0, 1)
            return s.burn(lot[1], rng.randint(1, lot[2]))
        if kind == Kind.TRANSFER:
            return s.transfer(o.account, self._some(self._held(state, me)) or ((me, 0, 1),))
        if kind in (Kind.OFFER, Kind.SWAP):
            give, want = self._some(self._held(state, me)), self._some(self._held(state, o.account))
            if not give and not want:
                want = ((o.account, 0, 1),)
            expires = state.now + rng.randint(1, 12) if rng.random() < 0.95 else state.now
            if kind == Kind.OFFER:
                return s.offer(o.account, give, want, expires)
            return s.swap_with(o, give, want, expires)
        if kind in (Kind.ACCEPT, Kind.DECLINE, Kind.CANCEL_OFFER):
            return self._offer_tx(kind, state, s)
        if kind == Kind.REDEEM:
            return self._redeem(state, s)
        if kind == Kind.ESCROW_CREATE:
            lots = self._some(self._held(state, me)) or ((me, 0, 1),)
            deadline = state.now + rng.randint(1, 15)
            if rng.random() < 0.5:
                return s.escrow_create(o.account, lots, release_at=deadline, cancellable=rng.random() < 0.7)
            strike = self._some([(o.account, 0, 5)]) if rng.random() < 0.6 else ()
            return s.escrow_create(
                o.account, lots, refund_at=deadline, strike=strike, cancellable=rng.random() < 0.5
            )
        if kind in (Kind.ESCROW_RELEASE, Kind.ESCROW_CANCEL, Kind.ESCROW_EXERCISE):
            as_beneficiary = kind == Kind.ESCROW_EXERCISE
            ids = [
                e.id
                for e in state.escrows.values()
                if e.state == EscrowState.LOCKED and (e.beneficiary if as_beneficiary else e.depositor) == me
            ]
            escrow_id = self._contract(ids, state)
            builder = {
                Kind.ESCROW_RELEASE: s.escrow_release,
                Kind.ESCROW_CANCEL: s.escrow_cancel,
                Kind.ESCROW_EXERCISE: s.escrow_exercise,
            }[kind]
            return builder(escrow_id)
        return self._claim_tx(kind, state, s)

    def _offer_tx(self, kind: Kind, state: LedgerState, s: Client) -> bytes:
        me = s.account
        mine = [
            o
            for o in state.offers.values()
            if o.state == OfferState.OPEN
            and (o.proposer if kind == Kind.CANCEL_OFFER else o.counterparty) == me
        ]
        offer_id = self._contract([o.id for o in mine], state)
        if kind == Kind.DECLINE:
            return s.decline(offer_id)
        if kind == Kind.CANCEL_OFFER:
            return s.cancel_offer(offer_id)
        offer = state.offers.get(offer_id)
        if offer is None or self.rng.random() < 0.05:
            return s.accept(offer_id, bytes(32))
        return s.accept(
            offer_id,
            terms_hash(
                offer.id, offer.proposer, offer.counterparty, offer.give, offer.want, offer.expires_at
            ),
        )

    def _redeem(self, state: LedgerState, s: Client) -> bytes:
        rng, me = self.rng, s.account
        others = self._held(state, me, own=False)
        if not others:
            return s.redeem(rng.choice(self.clients).account, 0, 1)
        issuer, maturity, held = rng.choice(others)
        amount = rng.randint(1, held)
        if rng.random() < 0.5 and maturity <= state.now:
            return s.redeem(issuer, maturity, amount)
        floor = max(maturity, state.now)
        options = [
            (i, m, a) for i, m, a in self._held(state, issuer, own=False) if max(m, state.now) >= floor
        ]
        want: list[Lot] = []
        left = amount
        for i, m, a in options:
            if left:
                take = min(a, left)
                want.append((i, m, take))
                left -= take
        if left or rng.random() < 0.1:
            want = [(rng.choice(self.clients).account, rng.choice((0, maturity)), amount)]
        return s.redeem(issuer, maturity, amount, want)

    def _claim_tx(self, kind: Kind, state: LedgerState, s: Client) -> bytes:
        me = s.account
        if kind == Kind.WITHDRAW_CLAIM:
            ids = [c.id for c in state.claims.values() if c.state == ClaimState.OPEN and c.claimant == me]
            return s.withdraw_claim(self._contract(ids, state))
        claims = [c for c in state.claims.values() if c.state == ClaimState.OPEN and c.issuer == me]
        claim_id = self._contract([c.id for c in claims], state)
        claim = state.claims.get(claim_id)
        budget = claim.amount if claim is not None else 1
        lots: list[Lot] = []
        for i, m, a in self._held(state, me, own=False):
            if budget:
                take = min(a, budget)
                lots.append((i, m, take))
                budget -= take
        return s.settle_claim(claim_id, lots)
