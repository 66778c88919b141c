"""Compute jobs on a real loopback testnet (4 validator processes): the coordinator in this process
connects to the nodes' compute workers as an observer peer (`hedgerow.node.job_client`).

- gradient-coded training with one worker SIGKILLed mid-job finishes, and its final weights equal
  the simulator's (`GcSim`) for the same straggler pattern (the realized responders per round);
- a worker paused (SIGSTOP) for a few rounds is a straggler, its late replies are ignored, and the
  weights still equal the simulator's for the realized pattern;
- a worker killed and started again rejoins: it asks for the job (NeedJob), its fresh EF memory is
  counted as a reset;
- `hedgerow job train --dir` and `hedgerow job newton --dir` print their JSON summaries and write
  the progress lines the dashboard's jobs panel parses (`DIR/jobs/*.jsonl`, `read_jobs`);
- a Newton job served by a node equals the local solve (and the sequential loop), re-checked;
- a Newton worker killed while it holds the job: the job is reassigned and still accepted.

One module-scoped testnet; every wait is bounded (trio.fail_after / launcher deadlines).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
import trio
from testnet_helpers import fast_testnet

from hedgerow.compute.gradcoding.driver import TrainSetup, build_problem
from hedgerow.compute.gradcoding.messages import CompressorSpec, GcJobResult
from hedgerow.compute.gradcoding.sim import GcSim, SimConfig
from hedgerow.compute.newton import NewtonConfig, solve
from hedgerow.compute.newton.jobs import from_wire_tensor, make_job
from hedgerow.compute.newton.systems import make
from hedgerow.node.cli import main
from hedgerow.node.job_client import (
    Cluster,
    GcRun,
    NewtonRun,
    PeerLink,
    cluster_from_testnet,
    prepare_newton,
    run_gc,
    run_newton,
)
from hedgerow.testnet.dashboard.sources import read_jobs
from hedgerow.testnet.launcher import Testnet

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    yield from fast_testnet(tmp_path_factory.mktemp("compute-net"))


class PatternSim(GcSim):
    """The seeded simulator with a given straggler pattern: worker i straggles in round t iff it is
    not among `pattern[t]` (its reply then arrives after the deadline, as a late one)."""

    def __init__(self, *args: Any, pattern: list[tuple[int, ...]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pattern = pattern

    def _straggles(self, round_: int, worker: int) -> bool:
        return worker not in self.pattern[round_]


def _setup(rounds: int) -> TrainSetup:
    return TrainSetup(n=4, s=1, scheme="cyclic_ones", mode="stochastic",
                      compressor=CompressorSpec("topk", 0.05), error_feedback=True, rounds=rounds, eta=1.0,
                      p=0.25, deadline_s=0.4, job_seed=11, method="node-test")


def test_gc_job_with_a_killed_worker_equals_the_simulator(testnet: Testnet) -> None:
    setup = _setup(rounds=40)
    problem = build_problem(setup)
    job, cfg = replace(setup.job_spec(), job_id=os.urandom(16)), setup.gc_config(SimConfig())
    cluster = cluster_from_testnet(testnet.dir)
    victim, kill_after = 2, 12

    async def go() -> GcRun:
        with trio.fail_after(50):
            link = PeerLink(cluster)
            async with trio.open_nursery() as nursery:
                await link.start(nursery, connect_timeout_s=20, at_least=4)

                async def on_round(record: Any, w: Any) -> None:
                    if record.round == kill_after:  # the next round's requests are already out
                        await trio.to_thread.run_sync(testnet.kill, cluster.workers[victim].name)

                run = await run_gc(link, job, cfg, problem.initial_weights(), on_round=on_round)
                link.close()
                nursery.cancel_scope.cancel()
            return run

    run = trio.run(go)
    assert isinstance(run.result, GcJobResult) and len(run.history) == setup.rounds
    pattern = [record.responders for record in run.history]
    assert all(victim not in responders for responders in pattern[kill_after + 2:])
    assert sum(4 - len(r) for r in pattern) >= setup.rounds - kill_after - 2  # stragglers seen
    assert run.early_closes >= 1  # rounds closed as soon as only the dead worker was missing

    sim = SimConfig(straggler="bernoulli", p=0.5, tau_s=0.01)
    replay = PatternSim(job, cfg, problem.initial_weights(), sim, problem=problem, pattern=pattern).run()
    assert [r.responders for r in replay.history] == pattern
    assert np.array_equal(replay.w, run.w), float(np.abs(replay.w - run.w).max())
    assert replay.w.tobytes() == np.frombuffer(run.result.weights, dtype="<f8").tobytes()
    testnet.start(cluster.workers[victim].name)  # back for the next tests


def test_train_cli_over_the_testnet(testnet: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "train", "--dir", str(testnet.dir), "--code", "cyclic", "--n-workers", "4",
                 "--stragglers", "1", "--compressor", "topk:0.05", "--rounds", "30", "--deadline", "2",
                 "--connect-timeout", "30", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    assert summary["rounds"] == 30 and summary["where"] == "network" and summary["aborted"] is None
    for key in ("method", "final_gap", "bits_uplink", "stragglers_seen", "late_replies"):
        assert key in summary
    assert summary["bits_uplink"] > 0 and summary["final_gap"] < 0.05
    panel = _dashboard_job(testnet, summary["job_log"])  # one point per round, as the dashboard reads it
    assert (panel["kind"], panel["metric"], panel["iteration"], panel["done"]) == ("train", "loss", 30, True)
    assert [x for x, _ in panel["curve"]] == list(range(1, 31))
    assert panel["curve"][-1][1] == summary["final_loss"]


def test_paused_worker_is_a_straggler_and_its_late_replies_are_ignored(testnet: Testnet) -> None:
    setup = _setup(rounds=24)
    problem = build_problem(setup)
    job, cfg = replace(setup.job_spec(), job_id=os.urandom(16)), setup.gc_config(SimConfig())
    cluster = cluster_from_testnet(testnet.dir)
    sleeper = cluster.workers[1].name

    async def go() -> GcRun:
        with trio.fail_after(50):
            link = PeerLink(cluster)
            async with trio.open_nursery() as nursery:
                await link.start(nursery, connect_timeout_s=30, at_least=4)

                async def on_round(record: Any, w: Any) -> None:
                    if record.round == 4:
                        await trio.to_thread.run_sync(testnet.pause, sleeper)  # SIGSTOP
                    elif record.round == 10:
                        await trio.to_thread.run_sync(testnet.resume, sleeper)  # SIGCONT

                run = await run_gc(link, job, cfg, problem.initial_weights(), on_round=on_round)
                link.close()
                nursery.cancel_scope.cancel()
            return run

    run = trio.run(go)
    assert isinstance(run.result, GcJobResult) and len(run.history) == setup.rounds
    pattern = [record.responders for record in run.history]
    assert all(1 not in responders and len(responders) == 3 for responders in pattern[6:10])
    assert any(1 in responders for responders in pattern[12:])  # back once resumed
    assert run.counters["late"] >= 1  # the requests it queued while stopped, answered too late
    sim = SimConfig(straggler="bernoulli", p=0.5, tau_s=0.01)
    replay = PatternSim(job, cfg, problem.initial_weights(), sim, problem=problem, pattern=pattern).run()
    assert np.array_equal(replay.w, run.w)


def test_restarted_worker_rejoins_with_fresh_error_feedback_memory(testnet: Testnet) -> None:
    setup = _setup(rounds=20)
    problem = build_problem(setup)
    job, cfg = replace(setup.job_spec(), job_id=os.urandom(16)), setup.gc_config(SimConfig())
    cluster = cluster_from_testnet(testnet.dir)
    victim = cluster.workers[3].name

    async def go() -> GcRun:
        with trio.fail_after(55):
            link = PeerLink(cluster)
            async with trio.open_nursery() as nursery:
                await link.start(nursery, connect_timeout_s=30, at_least=4)

                async def on_round(record: Any, w: Any) -> None:
                    if record.round == 3:  # kill -9 and start again; hold the coordinator until it is back
                        await trio.to_thread.run_sync(testnet.kill, victim)
                        await trio.to_thread.run_sync(testnet.start, victim)
                        while not link.is_connected(3):
                            await trio.sleep(0.05)

                run = await run_gc(link, job, cfg, problem.initial_weights(), on_round=on_round)
                link.close()
                nursery.cancel_scope.cancel()
            return run

    run = trio.run(go)
    assert isinstance(run.result, GcJobResult) and len(run.history) == setup.rounds
    assert run.counters["need_job"] >= 1  # the new process did not know the job: the spec was resent
    assert run.counters["ef_resets"] >= 1  # its replies carry memory_epoch + 1 (fresh EF memory)
    assert all(3 in record.responders for record in run.history[-5:])


def _newton_job(T: int) -> tuple[Any, Any, NewtonConfig]:
    problem = make("gru", T=T, B=2, D=4, seed=3, dtype=torch.float64)
    config = NewtonConfig(method="quasi_deer")
    job = make_job(os.urandom(16), problem.system, problem.s0, problem.inputs, config, deadline_ms=120_000)
    return problem, job, config


async def _newton(cluster: Cluster, job: Any, on_assign: Any = None) -> NewtonRun:
    with trio.fail_after(100):
        ready = await prepare_newton(cluster, 90.0)
        assert ready == [w.index for w in cluster.workers]
        link = PeerLink(cluster)
        async with trio.open_nursery() as nursery:
            await link.start(nursery, connect_timeout_s=30, at_least=len(cluster.workers))
            run = await run_newton(link, job, preferred=ready, on_assign=on_assign)
            link.close()
            nursery.cancel_scope.cancel()
        return run


def test_newton_job_on_a_node_equals_the_local_solve(testnet: Testnet) -> None:
    problem, job, config = _newton_job(T=3000)
    cluster = cluster_from_testnet(testnet.dir).first(2)
    run = trio.run(_newton, cluster, job)
    outcome = run.outcome
    assert outcome is not None and outcome.ok and outcome.reply.status == "converged"
    assert outcome.max_residual is not None and outcome.max_residual <= 1e-8  # re-checked here
    states = from_wire_tensor(outcome.reply.states)
    local = solve(problem.system.f, problem.s0, problem.inputs, config=config,
                  f_and_jac=problem.system.f_and_jac, f_and_jac_diag=problem.system.f_and_jac_diag)
    assert float((states - local.states).abs().max()) <= 1e-10
    loop = solve(problem.system.f, problem.s0, problem.inputs, config=NewtonConfig(method="sequential"))
    assert float((states - loop.states).abs().max()) <= 1e-8
    assert run.attempts == [(0, "assigned")] or run.attempts == [(1, "assigned")]


def test_newton_cli_over_the_testnet(testnet: Testnet, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "newton", "--system", "gru", "--T", "2000", "--D", "4", "--method", "quasi_deer",
                 "--dtype", "float64", "--dir", str(testnet.dir), "--check", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["status"] == "converged" and report["verified"] is True and report["mode"] == "network"
    assert report["max_err_vs_seq"] <= 1e-8 and report["max_residual_rechecked"] <= 1e-8
    for key in ("iterations", "max_residual", "wall_s", "seq_wall_s", "worker", "attempts"):
        assert key in report
    panel = _dashboard_job(testnet, report["job_log"])
    assert (panel["kind"], panel["metric"], panel["done"]) == ("newton", "residual", True)
    assert panel["iteration"] == report["iterations"] and panel["stragglers"] == []
    assert panel["curve"] == [[report["iterations"], report["max_residual_rechecked"]]]


def _dashboard_job(testnet: Testnet, log_path: str) -> dict[str, Any]:
    """The dashboard's view (`read_jobs`) of the job whose progress log is `log_path`."""
    job = os.path.basename(log_path).removesuffix(".jsonl")
    assert os.path.dirname(log_path) == str(testnet.dir / "jobs")
    (panel,) = [j for j in read_jobs(testnet.dir) if j["job"] == job]
    return panel


def test_killed_newton_worker_is_reassigned(testnet: Testnet) -> None:
    _, job, _ = _newton_job(T=10_000)
    cluster = cluster_from_testnet(testnet.dir).first(2)
    killed: list[int] = []

    async def on_assign(index: int) -> None:
        if not killed:  # the job is on its way to (or running on) this worker: kill -9 it
            killed.append(index)
            await trio.to_thread.run_sync(testnet.kill, cluster.workers[index].name)

    run = trio.run(_newton, cluster, job, on_assign)
    outcome = run.outcome
    assert outcome is not None and outcome.ok, run
    assert killed and outcome.worker == 1 - killed[0]
    assert run.attempts[0] == (killed[0], "assigned")
    assert (killed[0], "disconnected") in run.attempts or (killed[0], "unreachable") in run.attempts
    assert run.attempts[-1] == (1 - killed[0], "assigned")
