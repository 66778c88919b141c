"""Ledger state (spec 4): free balances, supply, contracts, and the canonical app_hash.

`holdings[holder][(issuer, maturity)]` holds only *free* units (> 0; zero entries are deleted);
locked units sit inside their contract. The derived indexes at the bottom of `LedgerState` are
rebuilt from the hashed fields and are never hashed.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Any

import msgpack

from hedgerow.protocols.grassroots.codes import ClaimState, EscrowState, OfferState
from hedgerow.protocols.grassroots.encoding import Lot, Lots, lots_wire, packb
from hedgerow.protocols.grassroots.statecache import STATE_TAG, StateCache

ClassKey = tuple[bytes, int]  # (issuer, maturity)


@dataclass(slots=True)
class OfferContract:
    id: int
    proposer: bytes
    counterparty: bytes
    give: Lots
    want: Lots
    expires_at: int
    created_at: int
    state: OfferState = OfferState.OPEN

    def wire(self) -> list[Any]:
        return [
            self.id,
            self.proposer,
            self.counterparty,
            lots_wire(self.give),
            lots_wire(self.want),
            self.expires_at,
            self.created_at,
            int(self.state),
        ]


@dataclass(slots=True)
class EscrowContract:
    id: int
    depositor: bytes
    beneficiary: bytes
    lots: Lots
    release_at: int | None
    refund_at: int | None
    strike: Lots
    cancellable: bool
    created_at: int
    state: EscrowState = EscrowState.LOCKED

    @property
    def deadline(self) -> int:
        deadline = self.release_at if self.release_at is not None else self.refund_at
        assert deadline is not None  # one of the two is always set (schema check)
        return deadline

    def wire(self) -> list[Any]:
        return [
            self.id,
            self.depositor,
            self.beneficiary,
            lots_wire(self.lots),
            self.release_at,
            self.refund_at,
            lots_wire(self.strike),
            self.cancellable,
            self.created_at,
            int(self.state),
        ]


@dataclass(slots=True)
class ClaimContract:
    id: int
    claimant: bytes
    issuer: bytes
    maturity: int
    amount: int
    opened_at: int
    state: ClaimState = ClaimState.OPEN

    def wire(self) -> list[Any]:
        return [
            self.id,
            self.claimant,
            self.issuer,
            self.maturity,
            self.amount,
            self.opened_at,
            int(self.state),
        ]


@dataclass(slots=True)
class LedgerState:
    height: int = 0
    now: int = 0
    next_id: int = 1
    nonces: dict[bytes, int] = field(default_factory=dict)
    holdings: dict[bytes, dict[ClassKey, int]] = field(default_factory=dict)
    minted: dict[ClassKey, int] = field(default_factory=dict)
    burned: dict[ClassKey, int] = field(default_factory=dict)
    default_count: dict[bytes, int] = field(default_factory=dict)
    offers: dict[int, OfferContract] = field(default_factory=dict)
    escrows: dict[int, EscrowContract] = field(default_factory=dict)
    claims: dict[int, ClaimContract] = field(default_factory=dict)
    # Derived (never hashed): counts of open contracts per account, and the deadline heap.
    open_offers_by: dict[bytes, int] = field(default_factory=dict)
    locked_escrows_by: dict[bytes, int] = field(default_factory=dict)
    open_claims_against: dict[bytes, int] = field(default_factory=dict)
    deadlines: list[tuple[int, int]] = field(default_factory=list)
    # Encoding caches (never hashed or compared): every balance change goes through add/sub, which
    # note the row's new amount (0: deleted), and every supply change through add_supply, which
    # marks the class; see `statecache` for the rest.
    dirty_rows: dict[tuple[bytes, ClassKey], int] = field(default_factory=dict, compare=False, repr=False)
    supply_dirty: set[ClassKey] = field(default_factory=set, compare=False, repr=False)
    cache: StateCache = field(default_factory=StateCache, compare=False, repr=False)

    # --- balances ------------------------------------------------------------------------------
    def free(self, holder: bytes, issuer: bytes, maturity: int) -> int:
        held = self.holdings.get(holder)
        return 0 if held is None else held.get((issuer, maturity), 0)

    def holds(self, holder: bytes, lots: Lots) -> bool:
        held = self.holdings.get(holder)
        if held is None:
            return not lots
        for issuer, maturity, amount in lots:  # noqa: SIM110 - a loop: no generator per call (hot path)
            if held.get((issuer, maturity), 0) < amount:
                return False
        return True

    def add(self, holder: bytes, issuer: bytes, maturity: int, amount: int) -> None:
        held = self.holdings.get(holder)
        if held is None:
            held = self.holdings[holder] = {}
        key = (issuer, maturity)
        held[key] = self.dirty_rows[holder, key] = held.get(key, 0) + amount

    def sub(self, holder: bytes, issuer: bytes, maturity: int, amount: int) -> None:
        held = self.holdings[holder]
        key = (issuer, maturity)
        left = held[key] - amount
        if left < 0:
            raise ValueError("balance would go negative")  # callers check first; a bug if reached
        self.dirty_rows[holder, key] = left
        if left:
            held[key] = left
        else:
            del held[key]
            if not held:
                del self.holdings[holder]

    def credit(self, holder: bytes, lots: Lots) -> None:
        for issuer, maturity, amount in lots:
            self.add(holder, issuer, maturity, amount)

    def debit(self, holder: bytes, lots: Lots) -> None:
        for issuer, maturity, amount in lots:
            self.sub(holder, issuer, maturity, amount)

    def add_supply(self, issuer: bytes, maturity: int, minted: int = 0, burned: int = 0) -> None:
        """Record a MINT or BURN of the class (every supply change goes through here)."""
        key = (issuer, maturity)
        if minted:
            self.minted[key] = self.minted.get(key, 0) + minted
        if burned:
            self.burned[key] = self.burned.get(key, 0) + burned
        self.supply_dirty.add(key)

    def reset_caches(self) -> None:
        """Forget every encoding cache (after a restore); the next encoding packs everything."""
        self.cache = StateCache()
        self.dirty_rows, self.supply_dirty = {}, set()

    # --- derived indexes -----------------------------------------------------------------------
    def push_deadline(self, deadline: int, contract_id: int) -> None:
        heapq.heappush(self.deadlines, (deadline, contract_id))

    def rebuild_indexes(self) -> None:
        self.open_offers_by, self.locked_escrows_by, self.open_claims_against = {}, {}, {}
        self.deadlines = []
        for offer in self.offers.values():
            if offer.state == OfferState.OPEN:
                bump(self.open_offers_by, offer.proposer, 1)
                self.deadlines.append((offer.expires_at, offer.id))
        for escrow in self.escrows.values():
            if escrow.state == EscrowState.LOCKED:
                bump(self.locked_escrows_by, escrow.depositor, 1)
                self.deadlines.append((escrow.deadline, escrow.id))
        for claim in self.claims.values():
            if claim.state == ClaimState.OPEN:
                bump(self.open_claims_against, claim.issuer, 1)
        heapq.heapify(self.deadlines)

    def in_default(self, issuer: bytes) -> bool:
        return self.open_claims_against.get(issuer, 0) > 0


def bump(counter: dict[bytes, int], key: bytes, delta: int) -> None:
    value = counter.get(key, 0) + delta
    if value:
        counter[key] = value
    else:
        counter.pop(key, None)


# --- canonical form, app_hash, snapshots ----------------------------------------------------------


def state_wire(state: LedgerState) -> list[Any]:
    """The app_hash preimage (spec 4), every map as an array sorted by its key."""
    balances = [
        [holder, issuer, maturity, amount]
        for holder in sorted(state.holdings)
        for (issuer, maturity), amount in sorted(state.holdings[holder].items())
    ]
    supply = [
        [issuer, maturity, minted, state.burned.get((issuer, maturity), 0)]
        for (issuer, maturity), minted in sorted(state.minted.items())
    ]
    return [
        STATE_TAG,
        state.height,
        state.now,
        state.next_id,
        [[key, value] for key, value in sorted(state.nonces.items())],
        balances,
        supply,
        [[key, value] for key, value in sorted(state.default_count.items())],
        [state.offers[i].wire() for i in sorted(state.offers)],
        [state.escrows[i].wire() for i in sorted(state.escrows)],
        [state.claims[i].wire() for i in sorted(state.claims)],
    ]


def snapshot_bytes(state: LedgerState) -> bytes:
    """The canonical encoding of the state; `app_hash == sha256(snapshot_bytes)`.

    Byte-identical to `packb(state_wire(state))` (checked by `check_state`), but joined from the
    cached fragments of `statecache`: only what changed since the last call is packed again."""
    return b"".join(state.cache.fragments(state))


def app_hash(state: LedgerState) -> bytes:
    """sha256 of `snapshot_bytes(state)`, fed fragment by fragment (no joined copy of the state)."""
    digest = hashlib.sha256()
    for fragment in state.cache.fragments(state):
        digest.update(fragment)
    return digest.digest()


def _lots(items: list[Any]) -> Lots:
    return tuple((bytes(i), int(m), int(a)) for i, m, a in items)


def restore_state(data: bytes) -> LedgerState:
    """Inverse of `snapshot_bytes`; raises ValueError unless it re-encodes to the same bytes."""
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
        (tag, height, now, next_id, nonces, balances, supply, defaults, offers, escrows, claims) = value
    except Exception as error:  # noqa: BLE001 - a corrupt snapshot of any shape
        raise ValueError(f"undecodable ledger snapshot: {type(error).__name__}") from None
    if tag != STATE_TAG:
        raise ValueError(f"snapshot tag {tag!r} is not {STATE_TAG!r}")
    state = LedgerState(
        height=height,
        now=now,
        next_id=next_id,
        nonces={k: v for k, v in nonces},
        default_count={k: v for k, v in defaults},
    )
    for holder, issuer, maturity, amount in balances:
        state.add(holder, issuer, maturity, amount)
    for issuer, maturity, minted, burned in supply:
        state.add_supply(issuer, maturity, minted=minted, burned=burned)
    for i, proposer, party, give, want, expires_at, created_at, st in offers:
        state.offers[i] = OfferContract(
            i, proposer, party, _lots(give), _lots(want), expires_at, created_at, OfferState(st)
        )
    for i, dep, ben, lots, rel, ref, strike, canc, created_at, st in escrows:
        state.escrows[i] = EscrowContract(
            i, dep, ben, _lots(lots), rel, ref, _lots(strike), canc, created_at, EscrowState(st)
        )
    for i, claimant, issuer, maturity, amount, opened_at, st in claims:
        state.claims[i] = ClaimContract(i, claimant, issuer, maturity, amount, opened_at, ClaimState(st))
    if packb(state_wire(state)) != data:
        raise ValueError("ledger snapshot is not canonical")
    state.rebuild_indexes()
    state.reset_caches()
    return state


def class_key(lot: Lot) -> ClassKey:
    return (lot[0], lot[1])
