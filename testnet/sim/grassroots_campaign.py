"""Grassroots scenarios run against the ledger directly: the GLP plays, the village market, and a
seeded random load, each with the invariant monitor after every block (spec 6.1, 9).

`hedgerow sim --protocol grassroots --scenario village --json` prints the end state: per agent (by
the scenario's letters) its free holdings of others' bonds and its treasury in the spec's notation
(`{"B0": 5, "F28": 13}`, `X25` = X-bonds maturing on day 25), its ratios as exact fractions (null
for infinite), the supply per class, and the invariant violations.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import Code
from hedgerow.protocols.grassroots.encoding import decode_tx, tx_hash_of
from hedgerow.protocols.grassroots.instruments import (
    balloon_loan,
    credit_line,
    forward,
    swap_lots,
    time_release_escrow,
    zero_coupon_loan,
)
from hedgerow.protocols.grassroots.invariants import Monitor
from hedgerow.protocols.grassroots.ledger import Ledger, Receipt
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.ratios import ratios
from hedgerow.protocols.grassroots.state import LedgerState, app_hash
from hedgerow.protocols.grassroots.workload import Workload

CHAIN_ID = "hedgerow-sim"
VILLAGE_LETTERS = "ABCDEF"


class ScenarioError(Exception):
    """A scripted act did not get the receipt code the script expects."""


@dataclass
class Market:
    """Agents named by letters, one ledger with clock = height, and the invariant monitor."""

    params: Params
    letters: str
    clients: dict[str, Client] = field(init=False)
    monitor: Monitor = field(init=False)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    base: int = 0  # the tick the script's tick 0 maps to (live chains are already running)
    stretch: int = 1  # ledger ticks per script tick (live blocks need time to fill)

    def __post_init__(self) -> None:
        self.clients = {
            letter: Client(SigningKey.from_label(f"grassroots/{letter}"), self.params.chain_id)
            for letter in self.letters
        }
        self.names = {client.account: letter for letter, client in self.clients.items()}
        self.monitor = Monitor(Ledger(self.params, LedgerState()))

    @property
    def state(self) -> LedgerState:
        return self.monitor.ledger.state

    def __getitem__(self, letter: str) -> Client:
        return self.clients[letter]

    def key(self, letter: str) -> bytes:
        return self.clients[letter].account

    def lot(self, text: str) -> tuple[bytes, int, int]:
        """'B25x24' -> (B, 25 days in ticks, 24); 'A0x5' -> 5 A-coins."""
        name, _, amount = text.partition("x")
        days = int(name[1:])
        return (self.key(name[0]), self.day(days) if days else 0, int(amount))

    def block(
        self, txs: Sequence[bytes], *, at: int | None = None, expect: Sequence[Code] | None = None
    ) -> list[Receipt]:
        """Run empty blocks up to tick `at - 1` (clock = height), then one block with `txs`."""
        target = self.state.height + 1 if at is None else at
        if target <= self.state.height:
            raise ScenarioError(f"tick {target} is in the past (height {self.state.height})")
        while self.state.height + 1 < target:
            self.monitor.apply_block(self.state.height + 1, self.state.height + 1, [])
        result = self.monitor.apply_block(target, target, txs)
        codes = [receipt.code for receipt in result.receipts]
        wanted = list(expect) if expect is not None else [Code.OK] * len(txs)
        if codes != wanted:
            raise ScenarioError(
                f"tick {target}: receipts {[c.name for c in codes]}, "
                f"script expects {[c.name for c in wanted]}"
            )
        return list(result.receipts)

    def tick(self, script_tick: int) -> int:
        """The ledger tick of a script tick."""
        return self.base + script_tick * self.stretch

    def day(self, number: int) -> int:
        return self.tick(number * self.params.ticks_per_day)

    def label(self, issuer: bytes, maturity: int) -> str:
        """X0 for coins, X25 for bonds maturing on script day 25, X@T for other ledger ticks."""
        span = self.params.ticks_per_day * self.stretch
        offset = maturity - self.base
        when = "0" if maturity == 0 else str(offset // span) if offset % span == 0 else f"@{maturity}"
        return f"{self.names.get(issuer, issuer.hex()[:8])}{when}"

    def agent_view(self, letter: str) -> dict[str, Any]:
        account = self.key(letter)
        holds: dict[str, int] = {}
        treasury: dict[str, int] = {}
        for (issuer, maturity), amount in sorted(
            self.state.holdings.get(account, {}).items(), key=lambda item: self.label(*item[0])
        ):
            (treasury if issuer == account else holds)[self.label(issuer, maturity)] = amount
        report = ratios(self.state, self.params, account)
        return {
            "holds": holds,
            "treasury": treasury,
            "ratios": report.as_strings(),
            "current_liabilities": report.current_liabilities,
        }

    def violations(self) -> list[str]:
        return list(self.monitor.violations)

    def end_state(self) -> dict[str, Any]:
        supply = {
            self.label(issuer, maturity): minted - self.state.burned.get((issuer, maturity), 0)
            for (issuer, maturity), minted in sorted(self.state.minted.items())
        }
        return {
            "agents": {letter: self.agent_view(letter) for letter in self.letters},
            "supply": dict(sorted(supply.items())),
            "violations": self.violations(),
            "height": self.state.height,
            "now": self.state.now,
            "checkpoints": self.checkpoints,
        }


class LiveMarket(Market):
    """The same scripts against a running node (its home), through its RPC.

    The ledger's only clock is the block (`now = height` under genesis `clock = "height"`), so script
    tick `t` is height `base + t * stretch`, `base` a little past the height at the start. Each act
    (one `block` call, one block in the direct run) waits for its tick, then goes out in *waves*:
    a wave is every not-yet-sent tx of the act whose receipt does not depend on another sender's tx
    of the act that has not committed yet. `plan_wave` finds it on a copy of the node's ledger: each
    candidate applied with only its own sender's earlier txs of the wave must give the receipt (code
    and events) the whole act gives in script order, and the wave in any per-sender grouping must
    too (the mempool reaps per sender in nonce order, senders in arrival order). All of a wave's txs
    are submitted at once; the next wave waits for their receipts. An act that commits outside the
    script day it belongs to is reported as a violation (raise `stretch`). The end state comes from a
    snapshot of the node's ledger."""

    def __init__(
        self, params: Params, letters: str, home: Path, *, stretch: int, deadline_s: float, days: bool
    ) -> None:
        from hedgerow.node.rpc_client import client_for_home

        self.home, self.deadline_s, self.days = home, deadline_s, days
        self.slips: list[str] = []
        self.waves: list[int] = []  # waves per act, for the report
        self.committed: dict[str, int] = {}  # tx hash (hex) -> the height its receipt names
        self.slack: int | None = None  # fewest heights left in a day after one of its acts
        self.rpc = client_for_home(home)
        super().__init__(params, letters, stretch=stretch)
        for client in self.clients.values():
            client.nonce = int(self._query("nonce", {"account": client.account.hex()}))
        self.base = self.height() + 2 * stretch

    def close(self) -> None:
        self.rpc.close()

    def _query(self, path: str, args: dict[str, Any]) -> Any:
        return self.rpc.call("query", path=path, args=args)

    def height(self) -> int:
        return int(self._query("status", {})["height"])

    def _snapshot(self) -> bytes:
        return bytes.fromhex(self._query("snapshot", {}))

    @property
    def state(self) -> LedgerState:
        from hedgerow.protocols.grassroots.state import restore_state

        return restore_state(self._snapshot())

    def _wait(self, condition: Callable[[], Any], what: str) -> Any:
        """Poll `condition` (an RPC read) until truthy; a block is ~0.1 s, so poll finely."""
        import time

        from hedgerow.testnet.launcher import WaitTimeout

        end = time.monotonic() + self.deadline_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= end:
                raise WaitTimeout(f"timed out after {self.deadline_s:.0f} s waiting for {what}")
            time.sleep(0.02)  # the poll interval of a condition with a deadline

    def _trial(self, snapshot: bytes, at: int, txs: Sequence[bytes]) -> list[tuple[int, Any]]:
        """(code, events) of `txs` applied in one block on a copy of the node's ledger."""
        from hedgerow.protocols.grassroots.state import restore_state

        state = restore_state(snapshot)
        height = state.height + 1
        result = Ledger(self.params, state).apply_block(height, max(height, at, state.now), txs)
        return [(int(r.code), r.events) for r in result.receipts]

    def plan_wave(self, snapshot: bytes, at: int, txs: Sequence[bytes]) -> list[int]:
        """Indices (into `txs`, the act's unsent txs in script order) safe to submit together."""
        wanted = self._trial(snapshot, at, txs)
        signers = [decode_tx(raw, self.params).signer for raw in txs]
        chosen: list[int] = []
        blocked: set[bytes] = set()  # a sender whose earlier tx waits: its later ones wait too
        for i in range(len(txs)):
            if signers[i] in blocked:
                continue
            mine = [j for j in chosen if signers[j] == signers[i]] + [i]
            if i == 0 or self._trial(snapshot, at, [txs[j] for j in mine])[-1] == wanted[i]:
                chosen.append(i)
            else:
                blocked.add(signers[i])
        while len(chosen) > 1 and not self._orders_agree(snapshot, at, txs, chosen, signers, wanted):
            chosen.pop()
        return chosen

    def _orders_agree(
        self,
        snapshot: bytes,
        at: int,
        txs: Sequence[bytes],
        chosen: list[int],
        signers: list[bytes],
        wanted: list[tuple[int, Any]],
    ) -> bool:
        senders = list(dict.fromkeys(signers[i] for i in chosen))
        orders = [chosen] + [
            [i for s in group for i in chosen if signers[i] == s] for group in (senders, senders[::-1])
        ]
        for order in orders:
            got = self._trial(snapshot, at, [txs[i] for i in order])
            if any(got[k] != wanted[i] for k, i in enumerate(order)):
                return False
        return True

    def block(
        self, txs: Sequence[bytes], *, at: int | None = None, expect: Sequence[Code] | None = None
    ) -> list[Receipt]:
        if at is not None:
            self._wait(lambda: self.height() >= at - 1, f"height {at - 1}")
        found: dict[int, dict[str, Any]] = {}
        left = list(range(len(txs)))
        waves = 0
        while left:
            target = at if at is not None else self.height() + 1
            wave = [left[k] for k in self.plan_wave(self._snapshot(), target, [txs[i] for i in left])]
            for i in wave:
                answer = self.rpc.call("submit", tx=txs[i], wait="none", wait_timeout_s=self.deadline_s)
                if answer.get("status") == "rejected":
                    raise ScenarioError(f"tick {at}: the node rejected a tx: {answer.get('result')}")
            for i in wave:
                found[i] = self._receipt(tx_hash_of(txs[i]).hex())
                self.committed[found[i]["tx_hash"]] = int(found[i]["height"])
            left = [i for i in left if i not in found]
            waves += 1
        self.waves.append(waves)
        if not txs and at is not None:
            self._wait(lambda: self.height() >= at, f"height {at}")
        rows = [found[i] for i in range(len(txs))]
        receipts = [Receipt(bytes.fromhex(r["tx_hash"]), Code[r["code"]], r["events"]) for r in rows]
        wanted = list(expect) if expect is not None else [Code.OK] * len(txs)
        if [r.code for r in receipts] != wanted:
            raise ScenarioError(
                f"tick {at}: receipts {[r.code.name for r in receipts]}, "
                f"script expects {[c.name for c in wanted]}"
            )
        if at is not None and self.days:
            span = self.params.ticks_per_day * self.stretch
            day_end = self.base + ((at - self.base) // span + 1) * span
            last = max((int(r["height"]) for r in rows), default=None)
            if last is not None:
                self.slack = min(day_end - last, self.slack if self.slack is not None else day_end)
            late = [r["height"] for r in rows if r["height"] >= day_end]
            if late:
                self.slips.append(
                    f"act of tick {at} committed at height {max(late)}, past its day (< {day_end})"
                )
        return receipts

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        def ready() -> Any:
            return self._query("receipt", {"tx_hash": tx_hash})

        found: dict[str, Any] = self._wait(ready, f"the receipt of {tx_hash[:16]}")
        return found

    def violations(self) -> list[str]:
        from hedgerow.protocols.grassroots.invariants import check_state

        return self.slips + check_state(self.state)


def run_live(name: str, home: Path, *, stretch: int = 10, deadline_s: float = 60.0) -> dict[str, Any]:
    """Run scenario `name` against the node at `home` (a fresh chain's ledger, or any: the script
    starts two of its days after the current height); the end state as `run_scenario` reports it,
    plus `waves` (per act) and `base`/`stretch` (script tick t is height base + t * stretch)."""
    from hedgerow.node.home import load_genesis

    genesis = load_genesis(home / "config" / "genesis.json")
    section = genesis.extra.get("grassroots")
    params = Params.from_genesis(genesis.chain_id, section if isinstance(section, dict) else None)
    if name != "village":
        params = replace(params, ticks_per_day=1)  # the plays count in ticks (labels only)
    village = name == "village"
    letters = VILLAGE_LETTERS if village else "AB"
    # the village's acts belong to days; the plays' acts only have to come after their ticks
    market = LiveMarket(params, letters, home, stretch=stretch, deadline_s=deadline_s, days=village)
    used = [x for x, client in market.clients.items() if client.nonce]
    if village and used:
        market.close()
        raise ScenarioError(
            f"agents {', '.join(used)} already signed txs on this chain (an earlier run?): "
            "the village month needs a fresh testnet"
        )
    try:
        SCRIPTS[name](market)
        report = market.end_state()
    finally:
        market.close()
    return {
        **report,
        "waves": market.waves,
        "base": market.base,
        "stretch": stretch,
        "slack": market.slack,
        "committed": market.committed,
    }


COMPARED = ("holds", "treasury", "ratios", "current_liabilities")


def compare_end_states(live: dict[str, Any], direct: dict[str, Any]) -> list[str]:
    """Where a live run's end state differs from the direct run's: per agent its holdings, treasury,
    ratios and current liabilities, the supply, and the checkpoints (heights and `now` differ by
    design: live ticks are stretched and start past the chain's height)."""
    out = []
    for letter, want in direct["agents"].items():
        got = live["agents"].get(letter, {})
        out += [
            f"{letter} {key}: live {got.get(key)}, direct {want[key]}"
            for key in COMPARED
            if got.get(key) != want[key]
        ]
    if live["supply"] != direct["supply"]:
        out.append(f"supply: live {live['supply']}, direct {direct['supply']}")
    for name, want in direct["checkpoints"].items():
        if live["checkpoints"].get(name) != want:
            out.append(f"checkpoint {name}: live {live['checkpoints'].get(name)}, direct {want}")
    return out


def village_params() -> Params:
    return Params(chain_id=CHAIN_ID)


def play_params() -> Params:
    """The GLP plays count maturities in ticks, so one tick is one 'day' in their notation."""
    return Params(chain_id=CHAIN_ID, ticks_per_day=1)


def run_village(market: Market) -> None:
    """GLP play 12, "Village Market Month", with the escrow fix; acts 8-9 are Hedgerow's extension."""
    a, b, c, d, e, f = (market[x] for x in VILLAGE_LETTERS)
    lot, day = market.lot, market.day
    offer_until = day(2)
    txs = (
        credit_line(a, b, 15, day(2))
        + credit_line(a, c, 15, day(2))
        + credit_line(c, e, 10, day(2))
        + credit_line(e, f, 10, day(2))
    )
    txs += [
        b.mint(day(25), 24),
        b.offer(d.account, [lot("B25x24")], [lot("D0x20")], offer_until),
        d.mint(0, 15),
        d.offer(f.account, [lot("D0x15")], [lot("F28x18")], offer_until),
    ]
    receipts = market.block(txs, at=day(1))
    bob_offer, diana_offer = (event[1] for r in receipts for event in r.events if event[0] == "offer")
    loans = [
        d.mint(0, 20),
        d.accept_terms(bob_offer, b.account, [lot("B25x24")], [lot("D0x20")], offer_until),
        f.mint(day(28), 18),
        f.accept_terms(diana_offer, d.account, [lot("D0x15")], [lot("F28x18")], offer_until),
    ]
    market.block(loans, at=day(1) + market.stretch)
    market.block(
        [
            b.transfer(a.account, [lot("A0x5")]),
            f.transfer(d.account, [lot("D0x3")]),
            e.transfer(c.account, [lot("C0x6")]),
        ],
        at=day(2),
    )
    market.block([], at=day(3) - market.stretch)
    market.checkpoints["day2"] = {x: market.agent_view(x)["ratios"] for x in ("B", "D")}
    market.block(
        swap_lots(e, [lot("F0x5")], c, [lot("A0x5")], day(4))
        + time_release_escrow(c, f.account, [lot("F0x5")], day(15), cancellable=True)
        + [e.transfer(a.account, [lot("A0x3")])],
        at=day(3),
    )
    market.block([f.redeem(d.account, 0, 5, [lot("F28x5")])], at=day(15))
    market.block(swap_lots(a, [lot("B0x10")], e, [lot("F0x4")], day(17)), at=day(16))
    market.checkpoints["day16"] = {
        x: {k: v for k, v in market.agent_view(x).items() if k in ("holds", "treasury")}
        for x in VILLAGE_LETTERS
    }
    receipts = market.block(
        [d.redeem(b.account, day(25), 24), e.redeem(b.account, 0, 10), b.mint(0, 1)],
        at=day(25),
        expect=[Code.OK, Code.OK, Code.ISSUER_IN_DEFAULT],
    )
    claim_id = next(event[5] for event in receipts[1].events if event[0] == "default")
    market.block([a.transfer(b.account, [lot("C0x4")]), b.settle_claim(claim_id, [lot("C0x4")])], at=day(26))
    market.block([d.redeem(f.account, day(28), 13)], at=day(28))


def _play(letters: str, script: Callable[[Market], None]) -> Callable[[], Market]:
    def build() -> Market:
        market = Market(play_params(), letters)
        script(market)
        return market

    return build


def play_2(m: Market) -> None:
    m.block(credit_line(m["A"], m["B"], 3, m.tick(100)))


def play_3(m: Market) -> None:
    play_2(m)
    m.block([m["A"].transfer(m.key("B"), [m.lot("B0x2")])])


def play_4(m: Market) -> None:
    play_2(m)
    m.block([m["A"].redeem(m.key("B"), 0, 2, [m.lot("A0x2")])])


def play_4b(m: Market) -> None:
    a, b, t = m["A"], m["B"], m.tick(20)
    m.block(credit_line(a, b, 5, m.tick(100)) + forward(a, b, 5, t, m.tick(100)))
    m.block(
        [
            a.redeem(b.account, 0, 2, [(a.account, t, 2)]),
            a.redeem(b.account, t, 1, [m.lot("A0x1")]),
            a.redeem(b.account, t, 1),
        ],
        expect=[Code.OK, Code.NOT_MATURE, Code.WANT_REQUIRED],
    )
    m.block([a.redeem(b.account, 0, 2, [m.lot("A0x2")])], at=t)


def play_5(m: Market) -> None:
    m.block(zero_coupon_loan(m["A"], m["B"], 9, 10, m.tick(5), m.tick(100)))


def play_6(m: Market) -> None:
    schedule = [(m.tick(100), 1), (m.tick(200), 1), (m.tick(300), 11)]
    m.block(balloon_loan(m["A"], m["B"], 10, schedule, m.tick(100)))


def play_8(m: Market) -> None:
    a, b = m["A"], m["B"]
    m.block(credit_line(a, b, 5, m.tick(100)))
    m.block(swap_lots(a, [m.lot("A10x3")], b, [m.lot("A0x2")], m.tick(100)))


def play_9(m: Market) -> None:
    m.block(forward(m["A"], m["B"], 3, m.tick(50), m.tick(100)))


def play_10(m: Market) -> None:
    a, b, t = m["A"], m["B"], m.tick(10)
    m.block(credit_line(a, b, 5, m.tick(100)))
    m.block(time_release_escrow(a, b.account, [m.lot("B0x3")], t))
    m.block([], at=t)


def play_11(m: Market) -> None:
    a, b, t = m["A"], m["B"], m.tick(10)
    m.block(credit_line(a, b, 5, m.tick(100)))
    receipts = m.block(time_release_escrow(a, b.account, [m.lot("B0x3")], t))
    m.block([a.escrow_cancel(receipts[0].events[0][1])])
    m.block([], at=t)


SCRIPTS: dict[str, Callable[[Market], None]] = {}


def build_village() -> Market:
    market = Market(village_params(), VILLAGE_LETTERS)
    run_village(market)
    return market


BUILDERS: dict[str, Callable[[], Market]] = {
    "village": build_village,
    "play-2": _play("AB", play_2),
    "play-3": _play("AB", play_3),
    "play-4": _play("AB", play_4),
    "play-4b": _play("AB", play_4b),
    "play-5": _play("AB", play_5),
    "play-6": _play("AB", play_6),
    "play-8": _play("AB", play_8),
    "play-9": _play("AB", play_9),
    "play-10": _play("AB", play_10),
    "play-11": _play("AB", play_11),
}

SCRIPTS.update(
    {
        "village": run_village,
        "play-2": play_2,
        "play-3": play_3,
        "play-4": play_4,
        "play-4b": play_4b,
        "play-5": play_5,
        "play-6": play_6,
        "play-8": play_8,
        "play-9": play_9,
        "play-10": play_10,
        "play-11": play_11,
    }
)

SCENARIOS: dict[str, str] = {
    "village": "GLP play 12, Village Market Month: credit lines, loans, escrow, prepayment, sale of debt, "
    "default and settlement (spec 9)",
    "play-2": "3 A0 <-> 3 B0 credit line",
    "play-3": "play 2, then A pays B 2 B0",
    "play-4": "play 2, then A redeems 2 B0 for A0",
    "play-4b": "coins and bonds (T=20), redemption before/after T",
    "play-5": "zero-coupon loan: 9 A0 for 10 B(5)",
    "play-6": "balloon loan: 10 A0 for B(100)1 B(200)1 B(300)11",
    "play-8": "A sells 3 A(10) for 2 A0",
    "play-9": "forward 3 A(50) <-> 3 B(50)",
    "play-10": "time-release escrow of 3 B0 (T=10)",
    "play-11": "the same escrow, cancelled before T",
    "random": "seeded random load of every tx kind (valid and invalid), invariants after every block",
}


def run_scenario(name: str) -> dict[str, Any]:
    """Run a scripted scenario; its end state (see module doc). Raises ScenarioError if an act fails."""
    market = BUILDERS[name]()
    return market.end_state()


def run(args: argparse.Namespace) -> int:
    """`hedgerow sim --protocol grassroots --scenario NAME [--seeds A-B] [--steps N] [--json]`."""
    from hedgerow.node.errors import VerdictFailure

    if args.scenario == "random":
        return run_random_seeds(args)
    try:
        report = run_scenario(args.scenario)
    except ScenarioError as error:
        raise VerdictFailure(f"scenario {args.scenario}: {error}") from None
    print_report(args.scenario, report, as_json=args.json)
    return 1 if report["violations"] else 0


def print_report(name: str, report: dict[str, Any], *, as_json: bool) -> None:
    from hedgerow.node.output import console, print_json, table

    if as_json:
        print_json(report)
        return

    def notation(values: dict[str, int]) -> str:
        return ", ".join(f"{label} {amount}" for label, amount in values.items()) or "-"

    rows = [
        (
            letter,
            notation(view["holds"]),
            notation(view["treasury"]),
            view["current_liabilities"],
            *(value if value is not None else "inf" for value in view["ratios"].values()),
        )
        for letter, view in report["agents"].items()
    ]
    console.print(
        table(
            f"grassroots {name}: end state at tick {report['now']}",
            ["agent", "holds", "treasury", "CL", "cash", "quick", "current"],
            rows,
        )
    )
    console.print(table("supply (minted - burned)", ["class", "units"], report["supply"].items()))
    violations = report["violations"]
    console.print(f"invariant violations: {len(violations)}" + "".join(f"\n  {v}" for v in violations[:20]))


def run_random(
    seed: int, blocks: int, *, agents: int = 6, block_size: int = 20, invalid_rate: float = 0.15
) -> dict[str, Any]:
    """Seeded random load with random clock jumps; every invariant checked after every block."""
    rng = random.Random(seed)
    params = Params(chain_id=CHAIN_ID)
    monitor = Monitor(Ledger(params, LedgerState()), per_tx_state=False)
    load = Workload(random_agents(agents, seed), rng, invalid_rate=invalid_rate)
    codes: dict[str, int] = {}
    for _ in range(blocks):
        state = monitor.ledger.state
        txs = load.block(state, rng.randint(0, block_size))
        result = monitor.apply_block(state.height + 1, state.now + rng.choice((0, 1, 1, 2, 5, 13)), txs)
        for receipt in result.receipts:
            codes[receipt.code.name] = codes.get(receipt.code.name, 0) + 1
    final = monitor.ledger.state
    return {
        "seed": seed,
        "blocks": blocks,
        "height": final.height,
        "now": final.now,
        "app_hash": app_hash(final).hex(),
        "codes": dict(sorted(codes.items())),
        "violations": monitor.violations,
    }


def run_random_seeds(args: argparse.Namespace) -> int:
    from hedgerow.node.output import console, print_json, table

    blocks = args.steps or 200
    results = [run_random(seed, blocks) for seed in args.seed_range]
    failed = [r for r in results if r["violations"]]
    if args.json:
        print_json({"scenario": "random", "runs": results, "failed_seeds": [r["seed"] for r in failed]})
    else:
        console.print(
            table(
                "grassroots random load",
                ["seed", "height", "txs", "ok", "violations", "app_hash"],
                [
                    (
                        r["seed"],
                        r["height"],
                        sum(r["codes"].values()),
                        r["codes"].get("OK", 0),
                        len(r["violations"]),
                        r["app_hash"][:16],
                    )
                    for r in results
                ],
            )
        )
        for r in failed:
            console.print(
                f"seed={r['seed']}: {r['violations'][0]}\n  replay: hedgerow sim --protocol grassroots "
                f"--scenario random --seeds {r['seed']} --steps {blocks}"
            )
    return 1 if failed else 0


def random_agents(count: int, seed: int) -> list[Client]:
    return [Client(SigningKey.from_label(f"grassroots/random/{seed}/{i}"), CHAIN_ID) for i in range(count)]
