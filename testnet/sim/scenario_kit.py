"""Shared pieces of the MonadBFT scenario catalogue: outcomes, expectations, message rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.monadbft import (
    AdvanceRound,
    BlockResponse,
    NoEndorseMsg,
    Proposal,
    RoundRecovery,
    TimeoutMsg,
    VoteMsg,
)
from hedgerow.testnet.sim.engine import DROP, Node, Simulator
from hedgerow.testnet.sim.monadbft_harness import MonadSim

KINDS: dict[str, type] = {
    "proposal": Proposal,
    "vote": VoteMsg,
    "timeout": TimeoutMsg,
    "advance": AdvanceRound,
    "recovery": RoundRecovery,
    "ne": NoEndorseMsg,
    "response": BlockResponse,
}
A, B, C, D = 0, 1, 2, 3


@dataclass
class Outcome:
    """One seed of one scenario: counts, invariant violations, failed expectations, trace digest."""

    scenario: str
    seed: int
    summary: dict[str, Any] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    trace_hash: str = ""
    steps: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations and not self.failed

    def first_step(self) -> int:
        steps = [v.get("step", self.steps) for v in self.violations]
        return min(steps) if steps else self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "summary": self.summary,
            "violations": self.violations,
            "failed": self.failed,
            "notes": self.notes,
            "trace_hash": self.trace_hash,
            "steps": self.steps,
        }


class Expect:
    """Collects what a scenario must produce; each miss is one readable line."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def true(self, condition: bool, what: str) -> None:
        if not condition:
            self.failed.append(what)

    def eq(self, what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            self.failed.append(f"{what}: got {actual!r}, want {expected!r}")

    def ge(self, what: str, actual: Any, floor: Any) -> None:
        if actual < floor:
            self.failed.append(f"{what}: got {actual!r}, want >= {floor!r}")

    def le(self, what: str, actual: Any, ceiling: Any) -> None:
        if actual > ceiling:
            self.failed.append(f"{what}: got {actual!r}, want <= {ceiling!r}")

    def within(self, what: str, actual: Any, centre: Any, slack: Any) -> None:
        if abs(actual - centre) > slack:
            self.failed.append(f"{what}: got {actual!r}, want {centre!r} +- {slack!r}")


def sender_round(mon: MonadSim, node: Node) -> int:
    return mon.core(node).current_round


def rule(
    mon: MonadSim,
    *,
    src: Iterable[int] | None = None,
    dst: Iterable[int] | None = None,
    kinds: Iterable[str] | None = None,
    rounds: Iterable[int] | None = None,
    when: Callable[[Node, Node, object], bool] | None = None,
    delay_ms: int | None = None,
    active: Callable[[], bool] | None = None,
) -> Callable[[Simulator, Node, Node, object], Any]:
    """Drop (or delay by `delay_ms`) messages from validators `src` to `dst` of `kinds`, sent while
    the sender is in one of `rounds`, optionally only while `active()` holds."""
    srcs = set(src) if src is not None else None
    dsts = set(dst) if dst is not None else None
    types = tuple(KINDS[k] for k in kinds) if kinds is not None else None
    round_set = set(rounds) if rounds is not None else None

    def apply(sim: Simulator, a: Node, b: Node, message: object) -> Any:
        if srcs is not None and a.validator not in srcs:
            return None
        if dsts is not None and b.validator not in dsts:
            return None
        if types is not None and not isinstance(message, types):
            return None
        if round_set is not None and sender_round(mon, a) not in round_set:
            return None
        if when is not None and not when(a, b, message):
            return None
        if active is not None and not active():
            return None
        return DROP if delay_ms is None else delay_ms

    mon.sim.filters.append(apply)
    return apply


def outcome(
    name: str, seed: int, mon: MonadSim, expect: Expect, notes: dict[str, Any] | None = None
) -> Outcome:
    violations = mon.finish()
    steps = mon.violation_steps + [mon.sim.steps] * (len(violations) - len(mon.violation_steps))
    return Outcome(
        scenario=name,
        seed=seed,
        summary=mon.summary(),
        violations=[dict(v.to_dict(), step=step) for v, step in zip(violations, steps, strict=True)],
        failed=list(expect.failed),
        notes=notes or {},
        trace_hash=mon.sim.trace_hash,
        steps=mon.sim.steps,
    )


def reached(expect: Expect, mon: MonadSim, how: str, round_: int) -> None:
    expect.true(
        how in ("stop",), f"did not reach round {round_} (stopped: {how}, at round {mon.min_round()})"
    )


def finalized_at(mon: MonadSim, iid: int) -> list[bytes]:
    return mon.checker.finalized_ids(mon.nodes[iid].name)


def snapshot_on_entry(mon: MonadSim, round_: int, probe: Callable[[Node], Any]) -> dict[int, Any]:
    """`probe(node)` for each node at the moment it enters a round > `round_` ("by round R")."""
    seen: dict[int, Any] = {}

    def hook(node: Node, old: int, new: int) -> None:
        if new > round_ >= old and node.iid not in seen:
            seen[node.iid] = probe(node)

    mon.round_hooks.append(hook)
    return seen


class LatencyProbe:
    """Proposal send time per block, and per-node VOTED / FINALIZED times (for latency in delays)."""

    def __init__(self, mon: MonadSim) -> None:
        from hedgerow.protocols.actions import Broadcast, Deliver
        from hedgerow.protocols.monadbft import Finalized, Voted

        self.mon = mon
        self.proposed: dict[bytes, tuple[int, int]] = {}  # block id -> (round, time)
        self.voted: dict[bytes, dict[int, int]] = {}
        self.final: dict[bytes, dict[int, int]] = {}

        def observe(node: Node, action: Any) -> None:
            if isinstance(action, Broadcast) and isinstance(action.message, Proposal) and node.honest:
                p = action.message
                if p.tip.header.block_round == p.proposal_round:
                    self.proposed.setdefault(p.tip.block_id, (p.proposal_round, mon.sim.now))
            elif isinstance(action, Deliver):
                value = action.value
                table = (
                    self.voted
                    if isinstance(value, Voted)
                    else self.final
                    if isinstance(value, Finalized)
                    else None
                )
                if table is not None:
                    table.setdefault(value.block.block_id, {}).setdefault(node.iid, mon.sim.now)

        mon.sim.action_observers.append(observe)

    def latencies(
        self, table: dict[bytes, dict[int, int]], round_from: int, round_to: int
    ) -> list[list[int]]:
        """Per block (in round order), the sorted latencies in ms at every node."""
        rows = []
        for block_id, (round_, sent) in sorted(self.proposed.items(), key=lambda item: item[1]):
            if round_from <= round_ <= round_to and block_id in table:
                rows.append(sorted(t - sent for t in table[block_id].values()))
        return rows

    def intervals(self, round_from: int, round_to: int) -> list[int]:
        times = sorted((r, t) for r, t in self.proposed.values() if round_from <= r <= round_to)
        return [b[1] - a[1] for a, b in zip(times, times[1:], strict=False) if b[0] == a[0] + 1]
