"""Property and model-based tests (spec 9): random blocks of every kind, valid and invalid, with
random clock jumps; the invariants of 6.1 after every tx and block, and a reference ledger that keeps
GLP-style unit bonds `(issuer, maturity, serial)` in lists agreeing on codes and per-class counts."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import Code, Kind
from hedgerow.protocols.grassroots.encoding import Tx, terms_hash
from hedgerow.protocols.grassroots.invariants import Monitor
from hedgerow.protocols.grassroots.ledger import Ledger, precheck
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import LedgerState
from hedgerow.protocols.grassroots.workload import Workload

PARAMS = Params(chain_id="model", max_open_per_account=4, max_offer_ttl=40, max_escrow_ttl=40)
Unit = tuple[bytes, int, int]


class Reference:
    """A deliberately naive ledger: every bond is a unit in a list, contracts carry their units."""

    def __init__(self) -> None:
        self.now, self.next_id, self.serial = 0, 1, 0
        self.units: dict[bytes, list[Unit]] = {}
        self.nonces: dict[bytes, int] = {}
        self.minted: Counter[tuple[bytes, int]] = Counter()
        self.contracts: dict[int, dict[str, Any]] = {}

    # --- units ---
    def count(self, holder: bytes, issuer: bytes, maturity: int) -> int:
        return sum(1 for u in self.units.get(holder, []) if u[0] == issuer and u[1] == maturity)

    def has(self, holder: bytes, lots: Any) -> bool:
        return all(self.count(holder, i, m) >= a for i, m, a in lots)

    def take(self, holder: bytes, lots: Any) -> list[Unit]:
        taken: list[Unit] = []
        for issuer, maturity, amount in lots:
            for _ in range(amount):
                unit = next(u for u in self.units[holder] if u[0] == issuer and u[1] == maturity)
                self.units[holder].remove(unit)
                taken.append(unit)
        return taken

    def put(self, holder: bytes, units: list[Unit]) -> None:
        self.units.setdefault(holder, []).extend(units)

    def in_default(self, who: bytes) -> bool:
        return any(c["type"] == "claim" and c["open"] and c["issuer"] == who for c in self.contracts.values())

    # --- blocks ---
    def begin(self, now: int) -> None:
        self.now = now
        due = sorted(
            (c["deadline"], i)
            for i, c in self.contracts.items()
            if c["open"] and c["type"] in ("offer", "escrow") and c["deadline"] <= now
        )
        for _, i in due:
            c = self.contracts[i]
            c["open"] = False
            back = c["owner"] if c["type"] == "offer" or c["release_at"] is None else c["to"]
            self.put(back, c.pop("units"))

    def apply(self, raw: bytes) -> Code:
        code, tx = precheck(raw, PARAMS)
        if code != Code.OK or tx is None:
            return code
        if tx.nonce != self.nonces.get(tx.signer, 0):
            return Code.BAD_NONCE
        self.nonces[tx.signer] = tx.nonce + 1
        return getattr(self, "k_" + tx.kind.name.lower())(tx.signer, tx.body, tx)

    def contract(self, cid: int, kind: str, party: str, a: bytes) -> tuple[Code | None, dict[str, Any]]:
        c = self.contracts.get(cid)
        if c is None or c["type"] != kind:
            return Code.UNKNOWN_CONTRACT, {}
        if c[party] != a:
            return Code.NOT_PARTY, c
        return None, c

    # --- kinds ---
    def k_mint(self, a: bytes, b: Any, tx: Tx) -> Code:
        if b.amount > PARAMS.max_amount or self.minted[(a, b.maturity)] + b.amount >= 2**63:
            return Code.INVALID_AMOUNT
        if self.in_default(a):
            return Code.ISSUER_IN_DEFAULT
        self.minted[(a, b.maturity)] += b.amount
        units = [(a, b.maturity, self.serial + k) for k in range(b.amount)]
        self.serial += b.amount
        self.put(a, units)
        return Code.OK

    def k_burn(self, a: bytes, b: Any, tx: Tx) -> Code:
        if self.count(a, a, b.maturity) < b.amount:
            return Code.INSUFFICIENT_BALANCE
        self.take(a, [(a, b.maturity, b.amount)])
        self.minted[(a, b.maturity)] -= b.amount
        return Code.OK

    def k_transfer(self, a: bytes, b: Any, tx: Tx) -> Code:
        if b.to == a:
            return Code.SELF_TRADE
        if not self.has(a, b.lots):
            return Code.INSUFFICIENT_BALANCE
        self.put(b.to, self.take(a, b.lots))
        return Code.OK

    def k_offer(self, a: bytes, b: Any, tx: Tx) -> Code:
        if b.counterparty == a:
            return Code.SELF_TRADE
        if not self.now < b.expires_at <= self.now + PARAMS.max_offer_ttl:
            return Code.BAD_DEADLINE
        mine = [c for c in self.contracts.values() if c["type"] == "offer" and c["open"] and c["owner"] == a]
        if len(mine) >= PARAMS.max_open_per_account:
            return Code.TOO_MANY_OPEN
        if not self.has(a, b.give):
            return Code.INSUFFICIENT_BALANCE
        self.contracts[self.next_id] = {
            "type": "offer",
            "owner": a,
            "to": b.counterparty,
            "open": True,
            "units": self.take(a, b.give),
            "want": b.want,
            "give": b.give,
            "deadline": b.expires_at,
        }
        self.next_id += 1
        return Code.OK

    def k_accept(self, a: bytes, b: Any, tx: Tx) -> Code:
        bad, c = self.contract(b.offer_id, "offer", "to", a)
        if bad:
            return bad
        if c["deadline"] <= self.now or (not c["open"] and c.get("how") is None):
            return Code.OFFER_EXPIRED  # spec 5.3: EXPIRED, or now >= expires_at, comes before CLOSED
        if not c["open"]:
            return Code.CONTRACT_CLOSED
        if b.terms_hash != terms_hash(b.offer_id, c["owner"], a, c["give"], c["want"], c["deadline"]):
            return Code.TERMS_MISMATCH
        if not self.has(a, c["want"]):
            return Code.INSUFFICIENT_BALANCE
        self.put(c["owner"], self.take(a, c["want"]))
        self.put(a, c.pop("units"))
        c["open"], c["how"] = False, "accepted"
        return Code.OK

    def _close_offer(self, a: bytes, cid: int, party: str) -> Code:
        bad, c = self.contract(cid, "offer", party, a)
        if bad:
            return bad
        if not c["open"]:
            return Code.CONTRACT_CLOSED
        self.put(c["owner"], c.pop("units"))
        c["open"], c["how"] = False, party
        return Code.OK

    def k_decline(self, a: bytes, b: Any, tx: Tx) -> Code:
        return self._close_offer(a, b.contract_id, "to")

    def k_cancel_offer(self, a: bytes, b: Any, tx: Tx) -> Code:
        return self._close_offer(a, b.contract_id, "owner")

    def k_swap(self, a: bytes, b: Any, tx: Tx) -> Code:
        if b.counterparty == a:
            return Code.SELF_TRADE
        if self.now >= b.expires_at:
            return Code.OFFER_EXPIRED
        if not self.has(a, b.give) or not self.has(b.counterparty, b.want):
            return Code.INSUFFICIENT_BALANCE
        given, wanted = self.take(a, b.give), self.take(b.counterparty, b.want)
        self.put(b.counterparty, given)
        self.put(a, wanted)
        return Code.OK

    def k_redeem(self, q: bytes, b: Any, tx: Tx) -> Code:
        p, t, n = b.issuer, b.maturity, b.amount
        if p == q:
            return Code.SELF_REDEEM
        if self.count(q, p, t) < n:
            return Code.INSUFFICIENT_BALANCE
        liq = max(t, self.now)
        if b.want:
            if sum(x[2] for x in b.want) != n:
                return Code.AMOUNT_MISMATCH
            if any(x[0] == p for x in b.want):
                return Code.WANT_OWN_ISSUER
            if any(max(x[1], self.now) < liq for x in b.want):
                return Code.NOT_MATURE
            if not self.has(p, b.want):
                return Code.WANT_NOT_HELD
            self.put(p, self.take(q, [(p, t, n)]))
            self.put(q, self.take(p, b.want))
            return Code.OK
        if t > self.now:
            return Code.WANT_REQUIRED
        mine = self.take(q, [(p, t, n)])
        for unit in sorted(self.units.get(p, []), key=lambda u: (u[0] != q, u[1], u[0], u[2])):
            if not mine:
                break
            if unit[0] == p or (unit[0] != q and unit[1] > self.now):
                continue
            self.units[p].remove(unit)
            self.put(q, [unit])
            self.put(p, [mine.pop()])
        if mine:
            self.contracts[self.next_id] = {
                "type": "claim",
                "owner": q,
                "issuer": p,
                "open": True,
                "units": mine,
            }
            self.next_id += 1
        return Code.OK

    def k_escrow_create(self, a: bytes, b: Any, tx: Tx) -> Code:
        if b.beneficiary == a:
            return Code.SELF_TRADE
        if not self.now < b.deadline <= self.now + PARAMS.max_escrow_ttl:
            return Code.BAD_DEADLINE
        mine = [c for c in self.contracts.values() if c["type"] == "escrow" and c["open"] and c["owner"] == a]
        if len(mine) >= PARAMS.max_open_per_account:
            return Code.TOO_MANY_OPEN
        if not self.has(a, b.lots):
            return Code.INSUFFICIENT_BALANCE
        self.contracts[self.next_id] = {
            "type": "escrow",
            "owner": a,
            "to": b.beneficiary,
            "open": True,
            "units": self.take(a, b.lots),
            "deadline": b.deadline,
            "release_at": b.release_at,
            "strike": b.strike,
            "cancellable": b.cancellable,
        }
        self.next_id += 1
        return Code.OK

    def _escrow_end(self, a: bytes, cid: int, party: str, kind: str) -> Code:
        bad, c = self.contract(cid, "escrow", party, a)
        if bad:
            return bad
        if kind == "cancel" and not c["cancellable"]:
            return Code.ESCROW_NOT_CANCELLABLE
        if not c["open"]:
            return Code.CONTRACT_CLOSED
        if kind == "exercise":
            if not c["strike"]:
                return Code.NO_STRIKE
            if not self.has(a, c["strike"]):
                return Code.INSUFFICIENT_BALANCE
            self.put(c["owner"], self.take(a, c["strike"]))
        self.put(c["owner"] if kind == "cancel" else c["to"], c.pop("units"))
        c["open"] = False
        return Code.OK

    def k_escrow_release(self, a: bytes, b: Any, tx: Tx) -> Code:
        return self._escrow_end(a, b.contract_id, "owner", "release")

    def k_escrow_cancel(self, a: bytes, b: Any, tx: Tx) -> Code:
        return self._escrow_end(a, b.contract_id, "owner", "cancel")

    def k_escrow_exercise(self, a: bytes, b: Any, tx: Tx) -> Code:
        return self._escrow_end(a, b.contract_id, "to", "exercise")

    def k_settle_claim(self, a: bytes, b: Any, tx: Tx) -> Code:
        bad, c = self.contract(b.claim_id, "claim", "issuer", a)
        if bad:
            return bad
        if not c["open"]:
            return Code.CONTRACT_CLOSED
        paid = sum(x[2] for x in b.lots)
        if not 1 <= paid <= len(c["units"]):
            return Code.AMOUNT_MISMATCH
        if any(x[0] == a for x in b.lots):
            return Code.WANT_OWN_ISSUER
        if not self.has(a, b.lots):
            return Code.INSUFFICIENT_BALANCE
        self.put(c["owner"], self.take(a, b.lots))
        self.put(a, [c["units"].pop() for _ in range(paid)])
        c["open"] = bool(c["units"])
        return Code.OK

    def k_withdraw_claim(self, a: bytes, b: Any, tx: Tx) -> Code:
        bad, c = self.contract(b.contract_id, "claim", "owner", a)
        if bad:
            return bad
        if not c["open"]:
            return Code.CONTRACT_CLOSED
        self.put(a, c.pop("units"))
        c["open"] = False
        return Code.OK

    # --- what the real ledger must agree on ---
    def counts(self) -> dict[tuple[bytes, bytes, int], int]:
        found: Counter[tuple[bytes, bytes, int]] = Counter()
        for holder, units in self.units.items():
            for issuer, maturity, _ in units:
                found[(holder, issuer, maturity)] += 1
        return dict(found)


def real_counts(state: LedgerState) -> dict[tuple[bytes, bytes, int], int]:
    return {(h, i, m): a for h, held in state.holdings.items() for (i, m), a in held.items()}


def locked_units(state: LedgerState) -> dict[int, int]:
    found = {o.id: sum(x[2] for x in o.give) for o in state.offers.values() if o.state == 0}
    found |= {e.id: sum(x[2] for x in e.lots) for e in state.escrows.values() if e.state == 0}
    found |= {c.id: c.amount for c in state.claims.values() if c.state == 0}
    return found


class LedgerMachine(RuleBasedStateMachine):
    """5-8 keys; each step is one block of 0-12 random txs built from the committed state."""

    def __init__(self) -> None:
        super().__init__()
        self.monitor: Monitor | None = None
        self.reference = Reference()
        self.workload: Workload | None = None

    @precondition(lambda self: self.monitor is None)
    @rule(agents=st.integers(5, 8), seed=st.integers(0, 2**16))
    def start(self, agents: int, seed: int) -> None:
        clients = [Client(SigningKey.from_label(f"model/{i}"), PARAMS.chain_id) for i in range(agents)]
        self.monitor = Monitor(Ledger(PARAMS, LedgerState()))
        self.workload = Workload(clients, random.Random(seed), invalid_rate=0.15, maturity_span=25)

    @precondition(lambda self: self.monitor is not None)
    @rule(
        seed=st.integers(0, 2**32 - 1), size=st.integers(0, 12), jump=st.sampled_from([0, 1, 1, 2, 3, 7, 20])
    )
    def block(self, seed: int, size: int, jump: int) -> None:
        assert self.monitor is not None and self.workload is not None
        self.workload.rng = random.Random(seed)
        ledger = self.monitor.ledger
        txs = self.workload.block(ledger.state, size)
        now = ledger.state.now + jump
        ledger.begin_block(ledger.state.height + 1, now)
        self.reference.begin(now)
        for raw in txs:
            receipt = ledger.deliver_tx(raw)
            assert self.reference.apply(raw) == receipt.code
            assert self.reference.counts() == real_counts(ledger.state)
        ledger.end_block()
        assert self.reference.nonces == ledger.state.nonces
        ref_locked = {i: len(c.get("units", [])) for i, c in self.reference.contracts.items() if c["open"]}
        assert ref_locked == locked_units(ledger.state)

    @invariant()
    def invariants_hold(self) -> None:
        if self.monitor is not None:
            from hedgerow.protocols.grassroots.invariants import check_state

            assert check_state(self.monitor.ledger.state) == []
            assert self.monitor.violations == []


TestLedgerModel = LedgerMachine.TestCase
TestLedgerModel.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)


def test_monitor_checks_every_invariant_on_long_random_runs() -> None:
    """A bounded campaign over several seeds with the full per-tx monitor (invariants 1-9)."""
    for seed in range(3):
        rng = random.Random(seed)
        clients = [Client(SigningKey.from_label(f"camp/{seed}/{i}"), PARAMS.chain_id) for i in range(6)]
        monitor = Monitor(Ledger(PARAMS, LedgerState()))
        load = Workload(clients, rng, invalid_rate=0.2, maturity_span=25)
        kinds_ok: set[Kind] = set()
        for _ in range(60):
            state = monitor.ledger.state
            txs = load.block(state, rng.randint(0, 15))
            result = monitor.apply_block(state.height + 1, state.now + rng.choice((0, 1, 2, 5)), txs)
            from hedgerow.protocols.grassroots.encoding import decode_tx

            kinds_ok |= {
                decode_tx(raw, PARAMS).kind
                for raw, r in zip(txs, result.receipts, strict=True)
                if r.code == Code.OK
            }
        assert monitor.violations == []
        assert len(kinds_ok) >= 12, sorted(k.name for k in set(Kind) - kinds_ok)
