"""The Heard-Of scenarios S1-S7 (spec §9), one function per scenario: `(seed, options) -> [Outcome]`.

Each outcome lists decided and undecided process ids, safety violations (a broken property: the
campaign exits 1) and `expected` notes (what the scenario set out to show, e.g. the checker
biting). Everything is a pure function of the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.heardof import predicates
from hedgerow.protocols.heardof.algorithms import NONE, Midpoint, UniformVoting, make_algorithm
from hedgerow.protocols.heardof.amp import AckedSetAgreement, LatticeAgreement, comparability_violations
from hedgerow.protocols.heardof.amp_over_ho import AmpOverHo
from hedgerow.protocols.heardof.machine import MachineConfig, RoundMachine
from hedgerow.testnet.sim.heardof_executor import LockstepResult, run_lockstep
from hedgerow.testnet.sim.heardof_oracles import Oracle, RandomHOf, Silence, Split
from hedgerow.testnet.sim.heardof_packet import AmpNode, Crash, HoNetwork, LinkParams, PacketSim


@dataclass
class Options:
    n: int | None = None
    max_rounds: int | None = None


@dataclass
class Outcome:
    label: str
    decided: list[int]
    undecided: list[int]
    decisions: dict[int, Any]
    violations: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "decided": self.decided, "undecided": self.undecided,
            "crashed": self.crashed, "decisions": {str(p): _show(v) for p, v in self.decisions.items()},
            "violations": self.violations, "expected": self.expected, "info": self.info,
        }


def _show(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, int | str | float | bool) or value is None:
        return value
    return str(value)


def _expect(out: Outcome, ok: bool, what: str) -> None:
    """A scenario expectation: recorded when it holds, a violation when it does not."""
    if ok:
        out.expected.append(what)
    else:
        out.violations.append(f"expectation failed: {what}")


def _from_lockstep(label: str, res: LockstepResult) -> Outcome:
    decisions = {p: d for p, d in enumerate(res.decisions) if d is not None}
    info = {"rounds": res.rounds, "mean_ho": round(res.mean_ho(), 3)}
    return Outcome(label, res.decided, res.undecided, decisions, list(res.violations), info=info)


def _from_sim(label: str, sim: PacketSim, inputs: Sequence[Any], k: int | None) -> Outcome:
    decisions = sim.decisions()
    crashed = [p for p in range(sim.n) if sim.stats[p].crashed]
    out = Outcome(label, sorted(decisions), [p for p in sim.live() if p not in decisions], decisions,
                  list(sim.violations), crashed=crashed, info={"virtual_s": round(sim.now, 4)})
    distinct = {repr(v) for v in decisions.values()}
    if k is not None and len(distinct) > k:
        out.violations.append(f"agreement: {len(distinct)} distinct decisions {decisions}")
    if k is not None:
        out.violations += [f"validity: p{p} decided {v!r}" for p, v in decisions.items() if v not in inputs]
    return out


# ---------------------------------------------------------------------------------------------
# S1: AMP_f -> HO_f, round machines over the packet simulator with a crash mid-broadcast


def _all_done(sim: PacketSim) -> bool:
    return all((sim.stats[p].crashed and not sim.stats[p].restart_pending)
               or getattr(sim.cores[p], "halted", False) for p in range(sim.n))


def s1_amp_rounds(seed: int, opt: Options) -> list[Outcome]:
    n = opt.n or 4
    f = (n - 1) // 2 if n > 4 else 1
    outcomes = []
    for name in ("otr", "uv", "lv", "floodmin"):
        rng = random.Random(f"{seed}:{name}")
        inputs = [rng.randrange(3) for _ in range(n)]
        alg = make_algorithm(name, n)
        cfg = MachineConfig(n=n, f=f, mode="ho_f", amp_grace_s=0.005)
        cores = [RoundMachine(alg, p, inputs[p], instance=1, config=cfg) for p in range(n)]
        crash = Crash(node=rng.randrange(n), mid_broadcast_round=rng.randrange(4))
        sim = PacketSim(cores, seed=rng.randrange(1 << 30), crashes=[crash],
                        link=LinkParams(delay_min_s=0.0002, delay_max_s=0.003))
        sim.run(until_s=(opt.max_rounds or 200) * 0.01, stop=_all_done)
        out = _from_sim(name, sim, inputs, f + 1 if name == "floodmin" else 1)
        for p in sim.live():
            if any(len(h) < n - f or p not in h for h in cores[p].trace):
                out.violations.append(f"p{p} ended a round below n-f: {[sorted(h) for h in cores[p].trace]}")
        out.info["crash"] = {"node": crash.node, "round": crash.mid_broadcast_round}
        out.info["mean_ho"] = round(_mean([len(h) for p in sim.live() for h in cores[p].trace]), 3)
        _expect(out, not out.undecided, f"{name}: every live process decides in ho_f mode")
        outcomes.append(out)
    return outcomes


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# ---------------------------------------------------------------------------------------------
# S2: the HO oracle on real round machines (timeout mode), and UV's split violation


def _oracle_run(alg_name: str, n: int, inputs: Sequence[Any], oracle: Oracle, seed: int,
                max_rounds: int) -> tuple[PacketSim, list[RoundMachine]]:
    alg = make_algorithm(alg_name, n) if alg_name != "uv" else UniformVoting(n)
    cfg = MachineConfig(n=n, f=max(0, (n - 1) // 2), mode="timeout", timeout_s=0.02, catchup_k=n)
    cores = [RoundMachine(alg, p, inputs[p], instance=2, config=cfg) for p in range(n)]
    sim = HoNetwork(cores, oracle, seed=seed)
    sim.run(until_s=max_rounds * 0.02, stop=_all_done)
    return sim, cores


def s2_ho_oracle(seed: int, opt: Options) -> list[Outcome]:
    n = opt.n or 4
    outcomes = []
    for name in ("otr", "uv", "lv", "floodmin"):
        rng = random.Random(f"{seed}:{name}")
        inputs = [rng.randrange(3) for _ in range(n)]
        sim, cores = _oracle_run(name, n, inputs, RandomHOf(f=1), rng.randrange(1 << 30),
                                 opt.max_rounds or 100)
        realized = _realized(cores)
        k = 2 if name == "floodmin" else 1
        must_agree = name != "uv" or predicates.p_nosplit(realized)
        out = _from_sim(name, sim, inputs, k if must_agree else None)
        out.info["realized_nosplit"] = predicates.p_nosplit(realized)
        out.info["rounds"] = len(realized)
        outcomes.append(out)
    sim, cores = _oracle_run("uv", 3, (1, 1, 0), Split(group=frozenset({0, 1}), until_round=2), seed, 20)
    out = _from_sim("uv-split", sim, (1, 1, 0), None)
    split = {repr(v) for v in out.decisions.values()}
    _expect(out, len(split) > 1, "UV under Split({0,1},{2}) in rounds 0-1 decides two values (checker bites)")
    outcomes.append(out)
    return outcomes


def _realized(cores: Sequence[RoundMachine]) -> list[list[frozenset[int]]]:
    rounds = min(len(c.trace) for c in cores)
    return [[c.trace[r] for c in cores] for r in range(rounds)]


# ---------------------------------------------------------------------------------------------
# S3-S5: AmpOverHo, the completion rules and the separation


def s3_colorless(seed: int, opt: Options) -> list[Outcome]:
    n, f = 5, 2
    rng = random.Random(seed)
    inputs = rng.sample(range(100), n)
    silenced = frozenset({3, 4})
    outcomes = []
    for c1 in (False, True):
        alg = AmpOverHo(AckedSetAgreement(), n, f, c1=c1)
        res = run_lockstep(alg, inputs, Silence(silenced, 0, True, f), seed=seed,
                           max_rounds=opt.max_rounds or 60, k=f + 1)
        out = _from_lockstep("c1-on" if c1 else "c1-off", res)
        if c1:
            _expect(out, not out.undecided, "with C1 all 5 decide")
        else:
            _expect(out, set(out.undecided) == silenced, "without C1 the silenced 3, 4 stay undecided")
        _expect(out, len(set(out.decisions.values())) <= f + 1, "at most f+1 = 3 distinct values")
        outcomes.append(out)
    return outcomes


def _la_outcome(label: str, res: LockstepResult, inputs: Sequence[Any]) -> Outcome:
    out = _from_lockstep(label, res)
    out.violations += comparability_violations(out.decisions, inputs)
    out.info["how"] = [s.how for s in res.states]
    return out


def _la_lockstep(n: int, f: int, oracle: Oracle, seed: int, rounds: int,
                 **rules: bool) -> tuple[Outcome, Any]:
    inputs = [10 + p for p in range(n)]
    alg = AmpOverHo(LatticeAgreement(), n, f, **rules)
    res = run_lockstep(alg, inputs, oracle, seed=seed, max_rounds=rounds, k=None, check_validity=False)
    return _la_outcome("", res, inputs), res


def s4_separation(seed: int, opt: Options, *, unsafe: bool = False) -> list[Outcome]:
    n, f, silenced = 5, 2, frozenset({3, 4})
    oracle = Silence(silenced, 0, True, f)
    out, _ = _la_lockstep(n, f, oracle, seed, opt.max_rounds or 200, unsafe_extend=unsafe)
    out.label = "ho2-silenced-c2unsafe" if unsafe else "ho2-silenced"
    if unsafe:
        return [out]  # the comparability violation C2' produces is the point of s4-unsafe
    _expect(out, out.decided == [0, 1, 2] and set(out.undecided) == silenced,
            "HO_2 with a silenced pair: 0,1,2 decide, 3 and 4 never do")
    outcomes = [out]
    inputs = [10 + p for p in range(n)]
    for label, link, crashes in (
        ("amp2-slow", LinkParams(slow_until_s={3: 10.0, 4: 10.0}), []),
        ("amp2-crashed", LinkParams(), [Crash(3, at_s=0.0), Crash(4, at_s=0.0)]),
    ):
        cores = [AmpNode(LatticeAgreement(), p, n, f, inputs[p]) for p in range(n)]
        sim = PacketSim(cores, seed=seed, link=link, crashes=crashes)
        sim.run(until_s=60.0)
        amp_out = _from_sim(label, sim, inputs, None)
        amp_out.violations += comparability_violations(amp_out.decisions, inputs)
        _expect(amp_out, not amp_out.undecided, "AMP_2: every live process decides")
        outcomes.append(amp_out)
    return outcomes


def s5_equivalence(seed: int, opt: Options) -> list[Outcome]:
    outcomes = []
    for n in (3, 4):
        for until in (None, 8):
            oracle = Silence(frozenset({2}), 0, True, 1, until_round=until)
            out, _ = _la_lockstep(n, 1, oracle, seed, opt.max_rounds or 100, c2=True)
            out.label = f"n{n}-silenced" + ("" if until is None else f"-until{until}")
            _expect(out, not out.undecided, f"f=1, n={n}: with C2 every process decides")
            outcomes.append(out)
    return outcomes


# ---------------------------------------------------------------------------------------------
# S6 (simulated twin): restart from HoRecord mid-LastVoting; S7: approximate agreement


def s6_restart(seed: int, opt: Options) -> list[Outcome]:
    n, f = 4, 1
    rng = random.Random(seed)
    inputs = [rng.randrange(3) for _ in range(n)]
    alg = make_algorithm("lv", n)
    cfg = MachineConfig(n=n, f=f, mode="ho_f", amp_grace_s=0.005)

    def factory(p: int) -> RoundMachine:
        return RoundMachine(alg, p, inputs[p], instance=6, config=cfg)

    victim = rng.randrange(n)
    cores = [factory(p) for p in range(n)]
    sim = PacketSim(cores, seed=seed, factory=factory,
                    crashes=[Crash(victim, mid_broadcast_round=rng.randrange(4), restart_after_s=0.05)])
    sim.run(until_s=10.0, stop=_all_done)
    out = _from_sim("lv-restart", sim, inputs, 1)
    conflicts = sum(c.counters["conflicting_duplicate"] for c in sim.cores)
    out.info.update(victim=victim, restarts=sim.stats[victim].restarts, conflicting_duplicates=conflicts)
    if conflicts:
        out.violations.append(f"{conflicts} conflicting duplicates after the restart")
    _expect(out, sim.stats[victim].restarts == 1 and not out.undecided,
            "the restarted node resumes and all decide")
    return [out]


def s7_approx(seed: int, opt: Options) -> list[Outcome]:
    n = opt.n or 4
    rng = random.Random(seed)
    inputs = [rng.randint(0, 1000) for _ in range(n)]
    alg = Midpoint(n, 0, 1000, 1)
    res = run_lockstep(alg, inputs, RandomHOf(f=1), seed=seed, max_rounds=opt.max_rounds or 50,
                       k=None, check_validity=False)
    out = _from_lockstep("midpoint", res)
    values = list(out.decisions.values())
    out.info.update(rounds_needed=alg.rounds, inputs=inputs)
    out.decisions = {p: float(v) for p, v in out.decisions.items()}
    if values and not all(min(inputs) <= v <= max(inputs) for v in values):
        out.violations.append("validity: an output lies outside [min input, max input]")
    if values and max(values) - min(values) > 1:
        out.violations.append(f"epsilon-agreement: outputs spread {float(max(values) - min(values))} > 1")
    _expect(out, not out.undecided and res.rounds == alg.rounds == 10, "all decide after R = 10 rounds")
    return [out]


SCENARIO_FUNCS: dict[str, Callable[[int, Options], list[Outcome]]] = {
    "s1-amp-rounds": s1_amp_rounds,
    "s2-ho-oracle": s2_ho_oracle,
    "s3-colorless": s3_colorless,
    "s4-separation": s4_separation,
    "s4-unsafe": lambda seed, opt: s4_separation(seed, opt, unsafe=True),
    "s5-equivalence": s5_equivalence,
    "s6-restart": s6_restart,
    "s7-approx": s7_approx,
}

__all__ = ["NONE", "SCENARIO_FUNCS", "Options", "Outcome"]
