"""Library algorithms: safety under arbitrary HO assignments where the spec says it holds,
termination under their predicates (§6), the relay lemma of AmpOverHo, lattice agreement in AMP_f."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgerow.protocols.heardof import predicates as P
from hedgerow.protocols.heardof.algorithms import (
    FloodMin,
    LastVoting,
    Midpoint,
    OneThirdRule,
    UniformVoting,
    rounds_needed,
)
from hedgerow.protocols.heardof.amp import LatticeAgreement, comparability_violations
from hedgerow.protocols.heardof.amp_over_ho import AmpOverHo, known_counts
from hedgerow.protocols.heardof.machine import MachineConfig, RoundMachine
from hedgerow.protocols.heardof.messages import pack_value, unpack_value
from hedgerow.testnet.sim.heardof_executor import run_lockstep
from hedgerow.testnet.sim.heardof_oracles import (
    GoodPhase,
    RandomAny,
    RandomHOf,
    Silence,
    Uniform,
)
from hedgerow.testnet.sim.heardof_packet import AmpNode, Crash, LinkParams, PacketSim

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(3, 7)


def _inputs(n: int, seed: int, values: int = 3) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(values) for _ in range(n)]


@given(sizes, seeds, st.floats(0.0, 1.0))
def test_otr_and_lv_safe_under_any_ho(n: int, seed: int, keep: float) -> None:
    for alg in (OneThirdRule(n), LastVoting(n)):
        res = run_lockstep(alg, _inputs(n, seed), RandomAny(p_keep=keep), seed=seed, max_rounds=24,
                           stop_when=lambda r: False)
        assert res.violations == []          # agreement, integrity, irrevocability


@given(sizes, seeds, st.floats(0.0, 1.0))
def test_uv_integrity_under_any_ho_and_agreement_under_nosplit(n: int, seed: int, keep: float) -> None:
    inputs = _inputs(n, seed)
    res = run_lockstep(UniformVoting(n), inputs, RandomAny(p_keep=keep), seed=seed, max_rounds=16,
                       stop_when=lambda r: False, k=None)
    assert all(d in inputs for d in res.decisions if d is not None)
    safe = run_lockstep(UniformVoting(n), inputs, RandomHOf(f=(n - 1) // 2), seed=seed, max_rounds=16,
                        stop_when=lambda r: False)
    assert P.p_nosplit(safe.trace) and safe.violations == []


@given(sizes, seeds)
def test_floodmin_decides_in_round_0_with_at_most_f_plus_1_values(n: int, seed: int) -> None:
    f = (n - 1) // 2
    inputs = random.Random(seed).sample(range(100), n)
    res = run_lockstep(FloodMin(n), inputs, RandomHOf(f=f), seed=seed, max_rounds=1, k=f + 1)
    assert res.violations == [] and res.decided_round == [0] * n
    wild = run_lockstep(FloodMin(n), inputs, RandomAny(p_keep=0.3), seed=seed, max_rounds=1, k=None)
    assert all(d in inputs for d in wild.decisions)   # validity under any HO


@given(sizes, seeds, st.integers(0, 5))
def test_otr_terminates_after_uniform_round(n: int, seed: int, r0: int) -> None:
    rng = random.Random(seed)
    big = frozenset(rng.sample(range(n), 2 * n // 3 + 1))
    oracle = Uniform(rounds=frozenset({r0}), members=big, base=RandomAny(p_keep=rng.random()))
    res = run_lockstep(OneThirdRule(n), _inputs(n, seed), oracle, seed=seed, max_rounds=20,
                       stop_when=lambda r: False)
    assert res.violations == []
    good = r0
    assert P.uniform(res.trace[r0]) and 3 * len(res.trace[r0][0]) > 2 * n
    if P.p_otr(res.trace):
        assert all(d is not None for d in res.decisions)
    for p in range(n):
        later = [r for r in range(good + 1, res.rounds) if 3 * len(res.trace[r][p]) > 2 * n]
        if later:
            assert res.decided_round[p] is not None and res.decided_round[p] <= later[0]


@given(sizes, seeds, st.integers(0, 3))
def test_lv_decides_by_end_of_good_phase(n: int, seed: int, phase: int) -> None:
    oracle = GoodPhase(phase=phase, base=RandomAny(p_keep=random.Random(seed).random()))
    res = run_lockstep(LastVoting(n), _inputs(n, seed), oracle, seed=seed, max_rounds=4 * phase + 4,
                       stop_when=lambda r: False)
    assert res.violations == [] and P.lv_good_phase(res.trace, phase)
    assert all(r is not None and r <= 4 * phase + 3 for r in res.decided_round)


@given(sizes, seeds, st.integers(0, 5))
def test_uv_decides_after_uniform_round_under_nosplit(n: int, seed: int, r0: int) -> None:
    oracle = Uniform(rounds=frozenset({r0}), base=RandomHOf(f=(n - 1) // 2))
    res = run_lockstep(UniformVoting(n), _inputs(n, seed), oracle, seed=seed, max_rounds=2 * (r0 // 2) + 4,
                       stop_when=lambda r: False)
    assert res.violations == [] and P.p_nosplit(res.trace)
    assert all(r is not None and r <= 2 * (r0 // 2) + 3 for r in res.decided_round)


@given(st.integers(3, 6), seeds)
def test_midpoint_halves_the_diameter_under_nosplit(n: int, seed: int) -> None:
    rng = random.Random(seed)
    inputs = [rng.randint(0, 1000) for _ in range(n)]
    alg = Midpoint(n, 0, 1000, 1)
    spans: list[Fraction] = [Fraction(max(inputs) - min(inputs))]

    def watch(r: int, states: list[Any]) -> None:
        values = [s.v for s in states]
        spans.append(max(values) - min(values))

    res = run_lockstep(alg, inputs, RandomHOf(f=(n - 1) // 2), seed=seed, max_rounds=30, on_round=watch,
                       k=None, check_validity=False)
    assert alg.rounds == rounds_needed(0, 1000, 1) == 10
    assert all(b <= a / 2 for a, b in zip(spans, spans[1:], strict=False))
    outs = [d for d in res.decisions if d is not None]
    assert len(outs) == n and max(outs) - min(outs) <= 1
    assert all(min(inputs) <= v <= max(inputs) for v in outs)


@settings(max_examples=15)
@given(st.integers(3, 9), seeds, st.booleans())
def test_relay_lemma_on_random_hof_traces(n: int, seed: int, silence: bool) -> None:
    """A record known by >= f+1 processes at the end of round r is known by all at the end of r+1."""
    f = (n - 1) // 2
    rng = random.Random(seed)
    alg = AmpOverHo(LatticeAgreement(), n, f, max_env_per_msg=100_000)
    oracle = Silence(frozenset(rng.sample(range(n), f)), 0, True, f) if silence else RandomHOf(f=f)
    history: list[list[tuple[int, ...]]] = []
    run_lockstep(alg, list(range(n)), oracle, seed=seed, max_rounds=12, k=None, check_validity=False,
                 on_round=lambda r, states: history.append([known_counts(s) for s in states]),
                 stop_when=lambda r: False)
    for before, after in zip(history, history[1:], strict=False):
        for src in range(n):
            widely_known = sorted((counts[src] for counts in before), reverse=True)[f]  # f+1-th largest
            assert all(counts[src] >= widely_known for counts in after)


@settings(max_examples=20)
@given(st.integers(3, 7), seeds, st.integers(0, 3))
def test_lattice_agreement_safe_under_async_schedules(n: int, seed: int, crashes: int) -> None:
    f = (n - 1) // 2
    rng = random.Random(seed)
    inputs = [rng.randrange(2 * n) for _ in range(n)]
    crashed = rng.sample(range(n), min(crashes, f))
    cores = [AmpNode(LatticeAgreement(), p, n, f, inputs[p]) for p in range(n)]
    sim = PacketSim(cores, seed=seed, link=LinkParams(delay_min_s=0.0, delay_max_s=rng.choice([0.001, 1.0])),
                    crashes=[Crash(p, at_s=rng.uniform(0.0, 0.002)) for p in crashed])
    sim.run(until_s=1000.0)
    decisions = sim.decisions()
    assert comparability_violations(decisions, inputs) == []
    assert all(p in decisions for p in sim.live())


def test_amp_over_ho_state_survives_persistence() -> None:
    alg = AmpOverHo(LatticeAgreement(), 3, 1, c2=True)
    cfg = MachineConfig(n=3, f=1)
    m = RoundMachine(alg, 0, 10, instance=1, config=cfg)
    actions = m.start(0.0)
    record = next(a.record for a in actions if type(a).__name__ == "Persist")
    restored = alg.decode_state(unpack_value(record.state))
    assert restored == m.state and pack_value(alg.encode_state(restored)) == record.state


def test_lockstep_runs_replay_exactly_by_seed_and_by_script() -> None:
    from hedgerow.testnet.sim.heardof_oracles import Scripted

    inputs = [2, 0, 1, 1, 0]
    first = run_lockstep(LastVoting(5), inputs, RandomAny(p_keep=0.6), seed=42, max_rounds=20,
                         record_digests=True, stop_when=lambda r: False)
    again = run_lockstep(LastVoting(5), inputs, RandomAny(p_keep=0.6), seed=42, max_rounds=20,
                         record_digests=True, stop_when=lambda r: False)
    assert first.trace == again.trace and first.digests == again.digests and first.states == again.states
    scripted = run_lockstep(LastVoting(5), inputs, Scripted(table=first.trace), seed=0, max_rounds=20,
                            record_digests=True, stop_when=lambda r: False)
    assert scripted.digests == first.digests and scripted.decisions == first.decisions


@settings(max_examples=25)
@given(st.integers(3, 7), seeds, st.booleans())
def test_lattice_agreement_over_ho_f_non_silenced_decide(n: int, seed: int, silence: bool) -> None:
    f = (n - 1) // 2
    rng = random.Random(seed)
    silenced = frozenset(rng.sample(range(n), rng.randint(1, f))) if silence else frozenset()
    oracle = Silence(silenced, 0, True, f) if silence else RandomHOf(f=f)
    inputs = [rng.randrange(3 * n) for _ in range(n)]
    alg = AmpOverHo(LatticeAgreement(), n, f)
    live = [p for p in range(n) if p not in silenced]
    res = run_lockstep(alg, inputs, oracle, seed=seed, max_rounds=40, k=None, check_validity=False,
                       stop_when=lambda r: all(r.decisions[p] is not None for p in live))
    decisions = {p: d for p, d in enumerate(res.decisions) if d is not None}
    assert comparability_violations(decisions, inputs) == []
    assert all(p in decisions for p in range(n) if p not in silenced)


@given(st.integers(3, 6), seeds, st.floats(0.0, 1.0))
def test_midpoint_outputs_stay_in_the_input_range_under_any_ho(n: int, seed: int, keep: float) -> None:
    rng = random.Random(seed)
    inputs = [rng.randint(0, 1000) for _ in range(n)]
    res = run_lockstep(Midpoint(n, 0, 1000, 1), inputs, RandomAny(p_keep=keep), seed=seed, max_rounds=12,
                       k=None, check_validity=False)
    assert all(min(inputs) <= d <= max(inputs) for d in res.decisions if d is not None)
