"""Seeded simulation of coordinator + workers (spec section 9 scenarios, properties 5, 7, 8)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hedgerow.compute.gradcoding import (
    CompressorSpec,
    GcJobResult,
    GcSim,
    GradReply,
    GradRequest,
    SimConfig,
    decompress,
    encode,
)
from hedgerow.compute.gradcoding.compress import from_wire_values
from hedgerow.compute.gradcoding.driver import TrainSetup, build_problem, method_setup, train
from hedgerow.compute.gradcoding.models import LogReg
from hedgerow.compute.gradcoding.worker import compress_rng

SMALL = TrainSetup(n=5, s=2, m=60, data_dim=12, rounds=50, eta=1.0, p=0.25)


def gd_trajectory(problem: LogReg, w0: np.ndarray, eta: float, rounds: int) -> list[np.ndarray]:
    out, w = [], w0.copy()
    for _ in range(rounds):
        w = w - eta * problem.full_grad(w)
        out.append(w)
    return out


def run_with_trace(setup: TrainSetup, sim: SimConfig) -> tuple[Any, list[np.ndarray]]:
    problem = build_problem(setup)
    ws: list[np.ndarray] = []
    result = GcSim(setup.job_spec(), setup.gc_config(sim), problem.initial_weights(), sim, problem,
                   on_round=lambda record, w, now: ws.append(w.copy())).run()
    return result, ws


def test_same_seed_gives_bitwise_identical_runs() -> None:
    """Property 7, under the latency straggler model."""
    setup = replace(SMALL, rounds=40)
    sim = SimConfig(straggler="latency", p=0.3, straggler_seed=11)
    first, second = train(setup, sim), train(setup, sim)
    assert first.sim.w.tobytes() == second.sim.w.tobytes()
    assert first.sim.history == second.sim.history and first.sim.close_times_s == second.sim.close_times_s
    other = train(setup, replace(sim, straggler_seed=12))
    assert other.sim.w.tobytes() != first.sim.w.tobytes()


@pytest.mark.parametrize("scheme,killed", [("cyclic_mds", {1, 3}), ("cyclic_random", {0, 4}),
                                           ("cyclic_mds", set())])
def test_exact_mode_with_up_to_s_killed_follows_centralized_gd(scheme: str, killed: set[int]) -> None:
    """Scenario (i): f64 wire, identity, 50 rounds, w equals the GD trajectory to 1e-9. Rounds close
    at the first n-s replies (no deadline), so slow workers never force a fallback."""
    setup = replace(SMALL, scheme=scheme, mode="exact", compressor=CompressorSpec("identity", 1.0),
                    error_feedback=False, wire_dtype="f64", deadline_s=math.inf)
    sim = SimConfig(straggler="latency", p=0.3, straggler_seed=2, killed=frozenset(killed))
    result, ws = run_with_trace(setup, sim)
    assert isinstance(result.result, GcJobResult) and len(ws) == 50
    problem = build_problem(setup)
    assert isinstance(problem, LogReg)
    for got, want in zip(ws, gd_trajectory(problem, np.zeros(12), 1.0, 50), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert result.counters["fallbacks"] == 0
    assert all(not killed & set(r.responders) for r in result.history)


def test_frac_exact_with_s_killed_follows_gd() -> None:
    setup = replace(SMALL, n=6, s=2, scheme="frac", mode="exact", compressor=CompressorSpec("identity", 1.0),
                    error_feedback=False, wire_dtype="f64")
    result, ws = run_with_trace(setup, SimConfig(straggler="none", killed=frozenset({0, 1})))
    problem = build_problem(setup)
    assert isinstance(problem, LogReg)
    np.testing.assert_allclose(ws[-1], gd_trajectory(problem, np.zeros(12), 1.0, 50)[-1], atol=1e-9)


@pytest.mark.parametrize("fallback", ["approx", "skip", "stochastic"])
def test_s_plus_one_killed_uses_the_fallback_without_hanging(fallback: str) -> None:
    """Scenario (ii)."""
    setup = replace(SMALL, scheme="cyclic_mds", mode="exact", compressor=CompressorSpec("identity", 1.0),
                    error_feedback=False, fallback=fallback, rounds=20)
    result, _ = run_with_trace(setup, SimConfig(straggler="none", killed=frozenset({0, 1, 2})))
    assert isinstance(result.result, GcJobResult) and result.result.rounds == 20
    assert result.counters["fallbacks"] == 20
    assert {r.fallback for r in result.history} == {fallback}
    if fallback == "skip":
        assert result.counters["rounds_undecodable"] == 20 and np.all(result.w == 0.0)
    else:
        assert result.history[0].responders == (3, 4)


def test_coordinator_crash_and_restart_from_checkpoint_completes() -> None:
    """Scenario (iii)."""
    setup = replace(SMALL, rounds=60, checkpoint_every=10)
    sim = SimConfig(straggler="bernoulli", p=0.25, straggler_seed=3, coordinator_crash_round=27)
    result = train(setup, sim)
    assert result.sim.crashes == 1 and isinstance(result.sim.result, GcJobResult)
    assert result.sim.result.rounds == 60
    rounds = [r.round for r in result.sim.history]
    assert rounds[:27] == list(range(27)) and rounds[27:] == list(range(20, 60))  # resumed at 20
    assert result.final_gap is not None and result.final_gap < 1e-2


def test_worker_restart_resets_memory_once_and_still_converges() -> None:
    """Scenario (iv)."""
    setup = replace(SMALL, rounds=150)
    sim = SimConfig(straggler="bernoulli", p=0.2, straggler_seed=4, worker_restarts=((2, 40),))
    result = train(setup, sim)
    assert result.sim.counters["ef_resets"] == 1 and result.sim.counters["need_job"] == 1
    assert 2 not in result.sim.history[40].responders  # it learns the job again through NeedJob
    assert any(2 in r.responders for r in result.sim.history[41:50])  # and is aggregated again
    baseline = train(setup, replace(sim, worker_restarts=()))
    assert result.final_gap is not None and baseline.final_gap is not None
    assert result.final_gap < 3 * baseline.final_gap + 1e-5


@pytest.mark.parametrize("name,wire_dtype", [("topk", "f32"), ("sign", "f32"), ("topk", "f64"),
                                             ("randk", "f32")])
def test_ef_balance_over_accepted_rounds_with_late_replies_ignored(name: str, wire_dtype: str) -> None:
    """Properties 5 and 8 end to end: per worker, the vectors the coordinator aggregated plus the
    final memory equal the coded gradients of the accepted rounds; late replies change nothing."""
    setup = replace(SMALL, compressor=CompressorSpec(name, 0.2), wire_dtype=wire_dtype, rounds=40)
    problem = build_problem(setup)
    job = setup.job_spec()
    sent_w: dict[tuple[int, int], np.ndarray] = {}
    replies: dict[tuple[int, int], np.ndarray] = {}

    def on_deliver(target: int, sender: int, message: Any, now: float) -> None:
        if isinstance(message, GradRequest):
            sent_w[(target, message.round)] = from_wire_values(message.weights, wire_dtype)
        elif isinstance(message, GradReply):
            replies[(sender, message.round)] = decompress(
                message.payload, compress_rng(job.job_seed, message.round, sender))

    sim = SimConfig(straggler="bernoulli", p=0.3, straggler_seed=5)
    gcsim = GcSim(job, setup.gc_config(sim), problem.initial_weights(), sim, problem, on_deliver=on_deliver)
    result = gcsim.run()
    assert result.counters["late"] > 0
    for i, worker in enumerate(gcsim.workers):
        accepted = [r.round for r in result.history if i in r.responders]
        row = np.zeros(job.n)
        row[list(job.support[i])] = job.coeffs[i]
        total_v, total_c, norm = np.zeros(problem.dim), np.zeros(problem.dim), 0.0
        for t in accepted:
            grads = [problem.partition_grad(j, sent_w[(i, t)]) for j in job.support[i]]
            v = encode(row, job.support[i], grads)
            total_v, total_c, norm = total_v + v, total_c + replies[(i, t)], norm + float(np.abs(v).sum())
        pending = worker.pending
        memory = pending.memory if pending is not None and pending.round in accepted else worker.memory
        np.testing.assert_allclose(total_c + memory, total_v, rtol=0, atol=1e-12 * norm)


@pytest.mark.parametrize("wire_dtype,tol", [("f64", 1e-10), ("f32", 1e-7)])
def test_uncompressed_stochastic_at_p0_follows_gd(wire_dtype: str, tol: float) -> None:
    """Acceptance: at p=0, GC uncompressed and uncoded uncompressed follow centralized GD."""
    base = replace(TrainSetup(rounds=300, p=0.0), wire_dtype=wire_dtype)
    problem = build_problem(base)
    assert isinstance(problem, LogReg)
    want = gd_trajectory(problem, np.zeros(100), 1.0, 300)
    for method in ("gc", "uncoded"):
        setup = replace(method_setup(method, base), p=0.0, rounds=300)
        _, ws = run_with_trace(setup, SimConfig(straggler="bernoulli", p=0.0))
        scale = max(float(np.max(np.abs(w))) for w in want)
        worst = max(float(np.max(np.abs(g - w))) for g, w in zip(ws, want, strict=True))
        assert worst <= tol * scale, (method, worst)


def test_mlp_through_the_cores_follows_centralized_gd_at_p0() -> None:
    """The torch MLP path: GC uncompressed, f64 wire, no stragglers, equals full-batch GD."""
    setup = TrainSetup(n=4, s=1, problem="mlp", data_dim=8, m=15, mlp_sizes=(8, 6, 3), l2=0.0, eta=0.1,
                       rounds=15, p=0.0, wire_dtype="f64")
    setup = replace(method_setup("gc", setup), p=0.0)
    problem = build_problem(setup)
    _, ws = run_with_trace(setup, SimConfig(straggler="none"))
    w = problem.initial_weights()
    for got in ws:
        w = w - 0.1 * sum(problem.partition_grad(j, w) for j in range(4)) / 4
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)
