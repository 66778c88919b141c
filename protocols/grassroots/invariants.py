"""The ledger invariants of spec 6.1, for the simulator, the property tests and real testnets.

`check_state(state)` covers what one state shows (1, 3, 4, 7, 8 after begin_block). `Monitor`
wraps a `Ledger` and also checks what only a transition shows (2, 3 for failed txs, 4 terminal
states never change, 6, 7 MINT in default, 8 the clock and deadlines, 9 nonces). Each returns a
list of human-readable violations, empty when everything holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.grassroots.codes import (
    PRE_NONCE_CODES,
    ClaimState,
    Code,
    EscrowState,
    Kind,
    OfferState,
)
from hedgerow.protocols.grassroots.encoding import Malformed, decode_tx, packb
from hedgerow.protocols.grassroots.handlers_settle import liquidity_date
from hedgerow.protocols.grassroots.ledger import BlockResult, Ledger, Receipt
from hedgerow.protocols.grassroots.ratios import owned_units
from hedgerow.protocols.grassroots.state import LedgerState, bump, snapshot_bytes, state_wire

ClassTotals = dict[tuple[bytes, int], int]


def class_totals(state: LedgerState) -> ClassTotals:
    """Units per class, free and locked together."""
    totals: ClassTotals = {}
    for _, issuer, maturity, amount in owned_units(state):
        totals[(issuer, maturity)] = totals.get((issuer, maturity), 0) + amount
    return totals


def _positive(value: Any) -> bool:
    return type(value) is int and value > 0


def check_state(state: LedgerState) -> list[str]:
    """Invariants visible in one state: conservation, positive amounts, contracts, default, deadlines."""
    problems: list[str] = []
    totals = class_totals(state)
    for key in sorted(set(totals) | set(state.minted)):
        expected = state.minted.get(key, 0) - state.burned.get(key, 0)
        if totals.get(key, 0) != expected:
            problems.append(
                f"conservation: class {key[0].hex()[:8]}@{key[1]} has {totals.get(key, 0)} units, "
                f"minted-burned={expected}"
            )
    if snapshot_bytes(state) != packb(state_wire(state)):
        problems.append("app_hash: the cached state encoding differs from the canonical one")
    problems += _check_amounts(state)
    problems += _check_contracts(state)
    problems += _check_indexes(state)
    return problems


def _check_amounts(state: LedgerState) -> list[str]:
    problems = []
    for holder, held in state.holdings.items():
        if not held:
            problems.append(f"amounts: empty holdings entry for {holder.hex()[:8]}")
        problems += [
            f"amounts: balance {amount!r} of {holder.hex()[:8]}"
            for amount in held.values()
            if not _positive(amount)
        ]
    for name, mapping in (
        ("minted", state.minted),
        ("burned", state.burned),
        ("nonces", state.nonces),
        ("default_count", state.default_count),
    ):
        problems += [f"amounts: {name} entry {value!r}" for value in mapping.values() if not _positive(value)]
    for key, burned in state.burned.items():
        if burned > state.minted.get(key, 0):
            problems.append(f"amounts: class {key[0].hex()[:8]}@{key[1]} burned more than minted")
    return problems


def _check_contracts(state: LedgerState) -> list[str]:
    problems = []
    ids = [*state.offers, *state.escrows, *state.claims]
    if len(ids) != len(set(ids)):
        problems.append("contracts: an id belongs to more than one map")
    if any(not 1 <= i < state.next_id for i in ids):
        problems.append("contracts: an id outside [1, next_id)")
    for offer in state.offers.values():
        if offer.state == OfferState.OPEN and offer.expires_at <= state.now:
            problems.append(f"deadline: offer {offer.id} is OPEN past expires_at {offer.expires_at}")
        if any(not _positive(lot[2]) for lot in (*offer.give, *offer.want)):
            problems.append(f"amounts: offer {offer.id} lot amount")
    for escrow in state.escrows.values():
        if escrow.state == EscrowState.LOCKED and escrow.deadline <= state.now:
            problems.append(f"deadline: escrow {escrow.id} is LOCKED past its deadline {escrow.deadline}")
        if any(not _positive(lot[2]) for lot in (*escrow.lots, *escrow.strike)):
            problems.append(f"amounts: escrow {escrow.id} lot amount")
    for claim in state.claims.values():
        if (claim.state == ClaimState.OPEN) != (claim.amount > 0) or claim.amount < 0:
            problems.append(f"contracts: claim {claim.id} in state {claim.state.name} locks {claim.amount}")
    return problems


def _check_indexes(state: LedgerState) -> list[str]:
    rebuilt = LedgerState(offers=state.offers, escrows=state.escrows, claims=state.claims, now=state.now)
    rebuilt.rebuild_indexes()
    problems = []
    if rebuilt.open_claims_against != state.open_claims_against:
        problems.append("default: the in-default index disagrees with the OPEN claims")
    if rebuilt.open_offers_by != state.open_offers_by or rebuilt.locked_escrows_by != state.locked_escrows_by:
        problems.append("contracts: open-contract counts disagree with the contracts")
    pending = {contract_id for _, contract_id in state.deadlines}
    if any(contract_id not in pending for _, contract_id in rebuilt.deadlines):
        problems.append("deadline: an open contract has no deadline entry")
    return problems


def _terminal(state: LedgerState) -> dict[int, list[Any]]:
    found = {o.id: o.wire() for o in state.offers.values() if o.state != OfferState.OPEN}
    found |= {e.id: e.wire() for e in state.escrows.values() if e.state != EscrowState.LOCKED}
    found |= {c.id: c.wire() for c in state.claims.values() if c.state != ClaimState.OPEN}
    return found


@dataclass
class Monitor:
    """Runs blocks through a `Ledger` tx by tx and checks every invariant of spec 6.1.

    `per_tx_state=True` also compares whole states around each failed tx (O(state) per tx)."""

    ledger: Ledger
    per_tx_state: bool = True
    passed: dict[bytes, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.passed = dict(self.ledger.state.nonces)
        self._terminal = _terminal(self.ledger.state)

    def apply_block(self, height: int, now: int, txs: Iterable[bytes]) -> BlockResult:
        ledger, state = self.ledger, self.ledger.state
        found: list[str] = []
        before_now = state.now
        ledger.begin_block(height, now)
        if state.now < before_now:
            found.append(f"clock: now went back from {before_now} to {state.now}")
        for raw in txs:
            found += self._tx(raw)
        result = ledger.end_block()
        found += [f"h{height}: {problem}" for problem in check_state(state)]
        terminal = _terminal(state)
        for contract_id, wire in self._terminal.items():
            if terminal.get(contract_id) != wire:
                found.append(f"h{height}: terminal contract {contract_id} changed")
        self._terminal = terminal
        if self.passed != state.nonces:
            found.append(f"h{height}: nonces differ from the count of txs that passed step 4")
        self.violations += found
        return result

    def _tx(self, raw: bytes) -> list[str]:
        state = self.ledger.state
        totals = class_totals(state)
        before = state_wire(state) if self.per_tx_state else None
        signer = _signer(raw, self.ledger)
        was_in_default = signer is not None and state.in_default(signer)
        receipt = self.ledger.deliver_tx(raw)
        found: list[str] = []
        if signer is not None and receipt.code not in PRE_NONCE_CODES:
            bump(self.passed, signer, 1)
        kind = _kind(raw, self.ledger)
        if receipt.code == Code.OK and kind == Kind.MINT and was_in_default:
            found.append("default: MINT succeeded for an issuer in default")
        if not (receipt.code == Code.OK and kind in (Kind.MINT, Kind.BURN)) and class_totals(state) != totals:
            found.append(f"supply: {Code(receipt.code).name} {kind!r} changed a class total")
        if receipt.code != Code.OK and before is not None:
            found += self._unchanged_but_nonce(before, signer, receipt)
        found += _check_redemptions(receipt, state.now)
        return [f"h{state.height} tx {receipt.tx_hash.hex()[:8]}: {problem}" for problem in found]

    def _unchanged_but_nonce(self, before: list[Any], signer: bytes | None, receipt: Receipt) -> list[str]:
        state = self.ledger.state
        after = state_wire(state)
        if receipt.code not in PRE_NONCE_CODES and signer is not None:
            after[4] = [[k, v - 1 if k == signer else v] for k, v in after[4] if not (k == signer and v == 1)]
        if after != before or receipt.events:
            return [f"failed tx ({receipt.code.name}) changed more than the signer's nonce"]
        return []


def _decoded_field(raw: bytes, ledger: Ledger, index: int) -> Any:
    try:
        tx = decode_tx(raw, ledger.params)
    except Malformed:
        return None
    return (tx.signer, tx.kind)[index]


def _signer(raw: bytes, ledger: Ledger) -> bytes | None:
    value: bytes | None = _decoded_field(raw, ledger, 0)
    return value


def _kind(raw: bytes, ledger: Ledger) -> Kind | None:
    value: Kind | None = _decoded_field(raw, ledger, 1)
    return value


def _check_redemptions(receipt: Receipt, now: int) -> list[str]:
    problems = []
    for event in receipt.events:
        if event[0] == "redeem":
            _, issuer, _, maturity, paid, lots = event
            if sum(lot[2] for lot in lots) != paid or any(lot[0] == issuer for lot in lots):
                problems.append("redemption: not 1-for-1 or paid in the issuer's own bonds")
            if any(liquidity_date(lot[1], now) < liquidity_date(maturity, now) for lot in lots):
                problems.append("redemption: paid in a less liquid bond")
        if event[0] == "default" and event[3] > now:
            problems.append("default: opened for an immature class")
    return problems


def replay_hashes(
    params_ledger: Ledger, blocks: Iterable[tuple[int, int, list[bytes]]]
) -> list[tuple[bytes, bytes]]:
    """(app_hash, results_hash) per block, replaying `blocks` on `params_ledger` (invariant 10)."""
    return [
        (r.app_hash, r.results_hash) for r in (params_ledger.apply_block(h, n, txs) for h, n, txs in blocks)
    ]


def snapshot_roundtrip_ok(state: LedgerState) -> bool:
    from hedgerow.protocols.grassroots.state import restore_state

    data = snapshot_bytes(state)
    return snapshot_bytes(restore_state(data)) == data
