"""Twins scenarios T1-T6 (spec §9), the Byzantine property family at n = 3f+1 and the seeded
random-fault scenario the CI campaign runs."""

from __future__ import annotations

import random
from typing import Any

from hedgerow.protocols.monadbft import Params
from hedgerow.protocols.monadbft.leader import from_table, round_robin
from hedgerow.testnet.sim.byzantine import (
    DoubleVoter,
    EagerTimeoutSilentLeader,
    Equivocator,
    SilentLeader,
    TailForker,
)
from hedgerow.testnet.sim.engine import Network, Node, Simulator, uniform_delay
from hedgerow.testnet.sim.monadbft_harness import MonadSim, Setup
from hedgerow.testnet.sim.monadbft_scenarios import STEPS_DEFAULT, base_setup
from hedgerow.testnet.sim.scenario_kit import Expect, Outcome, finalized_at, outcome, reached

PARAMS = Params(delta_ms=100, local_processing_ms=100)


def twins_setup(twins: dict[int, int], n: int = 4) -> Setup:
    setup = base_setup(n)
    setup.twins = twins
    return setup


def checked_heights(mon: MonadSim) -> dict[str, int]:
    return {node.name: mon.core(node).finalized_height for node in mon.nodes if node.checked}


def isolate(mon: MonadSim, victim: Any) -> None:
    """Drop every message to or from the instance `victim(sender_round)` returns."""

    def apply(sim: Simulator, a: Node, b: Node, message: object) -> Any:
        target = victim(mon.core(a).current_round)
        return "drop" if target in (a.iid, b.iid) else None

    mon.sim.filters.append(apply)


def t1_no_twins(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, base_setup(4))
    mon.start()
    how = mon.run_to_round(20, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 20)
    expect.ge("finalized", mon.summary()["finalized"], 10)
    return outcome("t1-no-twins", seed, mon, expect)


def t2_twin_no_partition(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, twins_setup({0: 1}))
    mon.start()
    how = mon.run_to_round(20, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 20)
    expect.true(
        all(h >= 10 for h in checked_heights(mon).values()),
        f"B, C, D finalized >= 10: {checked_heights(mon)}",
    )
    return outcome("t2-twin-no-partition", seed, mon, expect)


def t3_twin_rotating_isolation(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, twins_setup({0: 1}))
    isolate(mon, lambda round_: round_ % 5)
    mon.start()
    how = mon.run_to_round(200, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 200)
    expect.true(
        all(h >= 100 for h in checked_heights(mon).values()),
        f"B, C, D finalized >= 100: {checked_heights(mon)}",
    )
    return outcome("t3-twin-rotating-isolation", seed, mon, expect)


def t4_partition_heal(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, base_setup(4))
    mon.sim.partition = [{0, 1, 2}, {3}]
    state: dict[str, Any] = {}

    def hook(node: Node, old: int, new: int) -> None:
        if node.iid == 0 and new > 30 and "heal" not in state:
            state["heal"] = checked_heights(mon)
            mon.sim.partition = None

    mon.round_hooks.append(hook)
    mon.start()
    how = mon.run_to_round(60, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 60)
    at_heal = state.get("heal", {})
    expect.true(
        all(at_heal.get(name, 0) >= 10 for name in "ABC") and at_heal.get("D", -1) == 0,
        f"at the heal A, B, C >= 10 finalized and D 0: {at_heal}",
    )
    ids_a, ids_d = finalized_at(mon, 0), finalized_at(mon, 3)
    expect.true(
        len(ids_d) >= len(ids_a) - 1 and ids_d[: len(ids_a)] == ids_a[: len(ids_d)],
        f"D reaches A's prefix (A {len(ids_a)}, D {len(ids_d)})",
    )
    return outcome("t4-partition-heal", seed, mon, expect)


def t5_generated(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    """Twin of A; for rounds 1..8 a generated leader and 2-group split of the 5 instances."""
    rng = random.Random(f"t5:{seed}")
    rounds = 8
    leaders = {r: rng.randrange(4) for r in range(1, rounds + 1)}
    splits: dict[int, set[int]] = {}
    for r in range(1, rounds + 1):
        side = {i for i in range(5) if rng.random() < 0.5}
        if not side or len(side) == 5:
            side = {rng.randrange(5)}
        splits[r] = side
    setup = twins_setup({0: 1})
    setup.leader = from_table(leaders, round_robin(4))
    mon = MonadSim(seed, setup)

    def apply(sim: Simulator, a: Node, b: Node, message: object) -> Any:
        side = splits.get(mon.core(a).current_round)
        if side is None:
            return None
        return "drop" if (a.iid in side) != (b.iid in side) else None

    mon.sim.filters.append(apply)
    mon.start()
    mon.sim.run(
        until_ms=rounds * 1000, max_steps=steps or STEPS_DEFAULT, stop=lambda: mon.min_round() > rounds
    )
    expect = Expect()
    return outcome(
        "t5-generated",
        seed,
        mon,
        expect,
        {"leaders": leaders, "splits": {r: sorted(s) for r, s in splits.items()}},
    )


def t6_negative_control(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    """Twins of A and B with partition {A, B, C} | {D, A', B'}: both halves hold a quorum, so the
    checker MUST report an agreement violation between C and D (else it is broken)."""
    mon = MonadSim(seed, twins_setup({0: 1, 1: 1}))
    names = {node.name: node.iid for node in mon.nodes}
    mon.sim.partition = [{names["A"], names["B"], names["C"]}, {names["D"], names["A'"], names["B'"]}]
    mon.start()
    mon.sim.run(until_ms=60_000, max_steps=steps or STEPS_DEFAULT, stop=lambda: mon.min_round() > 20)
    expect = Expect()
    out = outcome("t6-negative-control", seed, mon, expect)
    agreement = [v for v in out.violations if v["invariant"] == "agreement"]
    if not agreement:
        out.failed.append(
            "negative control: no agreement violation between C and D was reported; the checker is broken"
        )
    return out


# --------------------------------------------------------------------------------------- n = 3f+1 families
def byz_run(
    name: str, seed: int, nodes: int | None, steps: int | None, behaviour: str, rounds: int = 40
) -> tuple[MonadSim, Expect, list[int]]:
    n = nodes or 4
    f = (n - 1) // 3
    faulty = list(range(n - f, n))
    setup = base_setup(n)
    setup.network = Network(delay=uniform_delay(1, 20))
    others = [v for v in range(n) if v not in faulty]
    half = len(others) // 2
    for v in faulty:
        if behaviour == "equivocation":
            setup.wrappers[v] = lambda core, h=half: Equivocator(
                core, tuple(others[: h + 1]), tuple(others[h:])
            )
        elif behaviour == "tail-fork":
            setup.wrappers[v] = TailForker
        elif behaviour == "double-vote":
            setup.wrappers[v] = DoubleVoter
        elif behaviour == "silent":
            setup.wrappers[v] = SilentLeader
    mon = MonadSim(seed, setup)
    if behaviour == "crashed-leader":
        for v in faulty:
            mon.crash_at(mon.nodes[v], 500)
    mon.start()
    how = mon.run_to_round(rounds, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, rounds)
    return mon, expect, faulty


def byz_tail_fork(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, expect, faulty = byz_run("byz-tail-fork", seed, nodes, steps, "tail-fork")
    rejected = sum(mon.core(n).stats.get("malformed_proposal") for n in mon.nodes if n.honest)
    expect.true(rejected > 0, "honest replicas rejected the tail-forking proposals as malformed")
    expect.ge("finalized", mon.summary()["finalized"], 10)
    return outcome("byz-tail-fork", seed, mon, expect, {"n": len(mon.nodes), "faulty": faulty})


def byz_equivocation(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, expect, faulty = byz_run("byz-equivocation", seed, nodes, steps, "equivocation")
    offenders = {key[1] for key in mon.evidence_keys if key[0].startswith("EQUIVOCATION")}
    expect.true(
        bool(offenders) and offenders <= set(faulty), f"evidence against equivocators only: {offenders}"
    )
    expect.true(
        mon.revert_anchor_authors <= set(faulty), "speculative reverts only under equivocators' anchors"
    )
    expect.ge("finalized", mon.summary()["finalized"], 10)
    return outcome("byz-equivocation", seed, mon, expect, {"n": len(mon.nodes), "faulty": faulty})


def byz_double_vote(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, expect, faulty = byz_run("byz-double-vote", seed, nodes, steps, "double-vote")
    offenders = {key[1] for key in mon.evidence_keys if key[0] == "DOUBLE_VOTE"}
    expect.eq("double voters with evidence", sorted(offenders), faulty)
    expect.ge("finalized", mon.summary()["finalized"], 30)
    return outcome("byz-double-vote", seed, mon, expect, {"n": len(mon.nodes), "faulty": faulty})


def byz_silent(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, expect, faulty = byz_run("byz-silent", seed, nodes, steps, "silent")
    want = {r for r in range(1, 41) if mon.leader(r) in faulty}
    expect.eq("TC rounds", sorted(r for r in mon.tc_rounds if r <= 40), sorted(want))
    expect.eq("re-proposals", mon.summary()["reproposals"], 0)
    return outcome("byz-silent", seed, mon, expect, {"n": len(mon.nodes), "faulty": faulty})


def byz_crashed_leader(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, expect, faulty = byz_run("byz-crashed-leader", seed, nodes, steps, "crashed-leader")
    entered = max((r for r, t in mon.round_entered_at[0].items() if t <= 500), default=1)
    start = entered + 2
    want = {r for r in range(start, 41) if mon.leader(r) in faulty}
    got = {r for r in mon.tc_rounds if start <= r <= 40}
    expect.eq(f"TC rounds from round {start}: one per crashed leader's round", sorted(got), sorted(want))
    late = {r for r in mon.reproposal_rounds | mon.nec_rounds if r >= start}
    expect.eq("re-proposals and NECs after the crash", sorted(late), [])
    return outcome("byz-crashed-leader", seed, mon, expect, {"n": len(mon.nodes), "faulty": faulty})


# --------------------------------------------------------------------------------------- random faults
BEHAVIOURS = ("silent", "equivocation", "double-vote", "tail-fork", "eager-silent")


def random_faults(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    """Seeded random run: loss, jitter, duplicates and a partition before GST, up to f Byzantine
    validators with random behaviours, a crash and restart of an honest node before GST; all
    invariants after every step, liveness after GST."""
    rng = random.Random(f"random:{seed}")
    n = nodes or 4
    f = (n - 1) // 3
    gst = rng.randint(800, 2500)
    network = Network(
        delay=uniform_delay(1, 40),
        gst_ms=gst,
        loss=rng.choice((0.0, 0.1, 0.3)),
        duplicate=rng.choice((0.0, 0.05)),
        jitter_ms=rng.choice((0, 100, 300)),
    )
    params = Params(delta_ms=100, local_processing_ms=100, vote_pace_ms=rng.choice((0, 0, 50)))
    setup = Setup(n=n, params=params, network=network)
    byzantine = rng.sample(range(n), rng.randint(0, f))
    kinds = {}
    for v in byzantine:
        kind = rng.choice(BEHAVIOURS)
        kinds[v] = kind
        others = [u for u in range(n) if u != v]
        if kind == "silent":
            setup.wrappers[v] = SilentLeader
        elif kind == "eager-silent":
            setup.wrappers[v] = EagerTimeoutSilentLeader
        elif kind == "equivocation":
            split = rng.randint(1, len(others) - 1)
            setup.wrappers[v] = lambda core, o=others, s=split: Equivocator(
                core, tuple(o[:s]), tuple(o[s - 1 :])
            )
        elif kind == "double-vote":
            setup.wrappers[v] = DoubleVoter
        else:
            setup.wrappers[v] = TailForker
    mon = MonadSim(seed, setup)
    honest = [v for v in range(n) if v not in byzantine]
    notes: dict[str, Any] = {"n": n, "gst_ms": gst, "byzantine": kinds, "loss": network.loss}
    if rng.random() < 0.6:
        victim = mon.nodes[rng.choice(honest)]
        crash = rng.randint(100, gst - 200)
        mon.crash_at(victim, crash)
        mon.restart_at(victim, rng.randint(crash + 10, gst))
        notes["crash"] = (victim.name, crash)
    if rng.random() < 0.4:
        side = set(rng.sample(range(n), rng.randint(1, n - 1)))
        start = rng.randint(0, gst // 2)
        mon.sim.schedule(start, lambda: setattr(mon.sim, "partition", [side, set(range(n)) - side]))
        mon.sim.schedule(rng.randint(start, gst), lambda: setattr(mon.sim, "partition", None))
        notes["partition"] = sorted(side)
    settle = gst + 3 * params.recovery_timer_ms
    mon.strict_liveness_from_ms = settle
    mon.checker.expect_liveness(
        [node.name for node in mon.nodes if node.checked],
        settle,
        6 * params.recovery_timer_ms + params.vote_pace_ms,
    )
    mon.start()
    mon.sim.run(until_ms=settle, max_steps=steps or STEPS_DEFAULT)
    target = mon.max_round() + 15
    how = mon.run_to_round(target, max_ms=settle + 60_000, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, target)
    return outcome("random", seed, mon, expect, notes)
