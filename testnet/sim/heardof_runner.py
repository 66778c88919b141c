"""One seeded run of a library HO algorithm on the packet simulator, with its statistics.

Used by `hedgerow rounds --sim` and `bench/rounds.py`. Mode `ho_f`: round machines over an
asynchronous network (AMP_f -> HO_f), the predicate is checked on the realized trace. Mode
`timeout`: `HoNetwork(oracle)`, the predicate picks the oracle that drives the HO sets.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.heardof import predicates
from hedgerow.protocols.heardof.algorithms import make_algorithm
from hedgerow.protocols.heardof.machine import MachineConfig, RoundMachine
from hedgerow.testnet.sim.heardof_oracles import (
    Complete,
    GoodPhase,
    Oracle,
    RandomAny,
    RandomHOf,
    Uniform,
)
from hedgerow.testnet.sim.heardof_packet import Crash, LinkParams, PacketSim


@dataclass
class RunStats:
    seed: int
    algorithm: str
    mode: str
    n: int
    f: int
    decisions: dict[int, Any]
    undecided: list[int]
    crashed: list[int]
    rounds: int                       # highest round any live process reached
    virtual_s: float
    latencies_s: list[float]          # virtual decision latency per decided process
    mean_ho: float
    uniform_fraction: float
    counters: dict[str, int]
    predicate_held: bool
    violations: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "algorithm": self.algorithm, "mode": self.mode, "n": self.n, "f": self.f,
            "decisions": {str(p): v for p, v in self.decisions.items()}, "undecided": self.undecided,
            "crashed": self.crashed, "rounds": self.rounds, "virtual_s": round(self.virtual_s, 6),
            "latencies_s": [round(x, 6) for x in self.latencies_s], "mean_ho": round(self.mean_ho, 3),
            "uniform_fraction": round(self.uniform_fraction, 3), "counters": self.counters,
            "predicate_held": self.predicate_held, "violations": self.violations,
        }


def oracle_for(predicate: str, n: int, f: int) -> Oracle:
    """The HO oracle that drives a `timeout`-mode run meeting `predicate`."""
    if predicate in ("hof", "nosplit", "maj", "kernel"):
        return RandomHOf(f=f)
    if predicate == "any":
        return RandomAny(p_keep=0.5)
    if predicate in ("otr", "unif", "sp_unif"):
        return Uniform(rounds=frozenset(range(0, 10_000, 3)), base=RandomHOf(f=f))
    if predicate == "lv":
        return GoodPhase(phase=1, base=RandomHOf(f=f))
    if predicate == "complete":
        return Complete()
    raise ValueError(f"no oracle for predicate {predicate!r}")


def run_once(algorithm: str, inputs: Sequence[Any], *, mode: str, predicate: str, seed: int, f: int = 1,
             crash: int | None = None, max_rounds: int = 200, amp_grace_s: float | None = None,
             linger_rounds: int = 2) -> RunStats:
    n = len(inputs)
    rng = random.Random(seed)
    alg = make_algorithm(algorithm, n)
    if mode == "ho_f":
        grace = 0.005 if amp_grace_s is None and algorithm in ("otr", "lv", "uv") else (amp_grace_s or 0.0)
        cfg = MachineConfig(n=n, f=f, mode="ho_f", amp_grace_s=grace, linger_rounds=linger_rounds)
        oracle = None
    else:
        cfg = MachineConfig(n=n, f=f, mode="timeout", timeout_s=0.02, catchup_k=n,
                            linger_rounds=linger_rounds)
        oracle = oracle_for(predicate, n, f)
    cores = [RoundMachine(alg, p, inputs[p], instance=seed, config=cfg) for p in range(n)]
    crashes = [] if crash is None else [Crash(crash, mid_broadcast_round=rng.randrange(3))]
    sim = PacketSim(cores, seed=rng.randrange(1 << 30), crashes=crashes, oracle=oracle,
                    link=LinkParams(delay_min_s=0.0002, delay_max_s=0.003))

    def done(s: PacketSim) -> bool:
        return all(s.stats[p].crashed or cores[p].halted or cores[p].round >= max_rounds for p in range(n))

    sim.run(until_s=max_rounds * 0.05, stop=done)
    return _stats(sim, cores, alg.name, mode, predicate, seed, f, inputs)


def _stats(sim: PacketSim, cores: Sequence[RoundMachine], name: str, mode: str, predicate: str, seed: int,
           f: int, inputs: Sequence[Any]) -> RunStats:
    n = len(cores)
    live = sim.live()
    decisions = sim.decisions()
    counters: dict[str, int] = {}
    for core in cores:
        for key, value in core.counters.items():
            counters[key] = counters.get(key, 0) + value
    rounds = min((len(cores[p].trace) for p in live), default=0)
    everyone = frozenset(range(n))
    realized = [[cores[p].trace[r] if p in live else everyone for p in range(n)] for r in range(rounds)]
    sizes = [len(h) for p in live for h in cores[p].trace]
    uniform = sum(1 for a in realized if predicates.uniform([a[p] for p in live])) / max(1, len(realized))
    k = f + 1 if name == "floodmin" else 1
    violations = list(sim.violations)
    values = list(decisions.values())
    if name == "approx":   # epsilon-agreement (epsilon = 1) and outputs within the input range
        if values and (max(values) - min(values) > 1 or not min(inputs) <= min(values) <= max(values)
                       <= max(inputs)):
            violations.append(f"approximate agreement: {decisions}")
    else:
        if len({repr(v) for v in values}) > k and (name != "uv" or predicates.p_nosplit(realized)):
            violations.append(f"agreement: {decisions}")
        violations += [f"validity: p{p} decided {v!r}" for p, v in decisions.items() if v not in inputs]
    if counters.get("decision_conflict"):
        violations.append("decision_conflict")
    held = predicates.predicate_by_name(predicate, f)(realized) if predicate != "complete" else True
    return RunStats(
        seed, name, mode, n, f, decisions, [p for p in live if p not in decisions],
        [p for p in range(n) if p not in live], max((c.round for c in cores), default=0), sim.now,
        sorted(sim.stats[p].decided_at_s or 0.0 for p in decisions), sum(sizes) / max(1, len(sizes)),
        uniform, counters, held, violations,
    )
