"""`hedgerow demo [--quick] [--json]` (= `make demo`): the whole system in a few minutes.

1. Bring up 4 validators (real processes on loopback) running the grassroots ledger.
2. Agents trade on the live chain (mints and transfers over the client API + RPC) while the current
   leader is SIGKILLed in the middle and started again: the scenario runner of testnet/scenario.py,
   so the scenario invariant checks run at the end (prefixes, acknowledged txs, ledger, signers).
3. A worker process beside each validator (with that validator's key) serves compute jobs over the
   authenticated transport; the first validator's worker is a straggler.
4. A parallel-Newton job and a gradient-coded training job coordinated from this process
   (testnet/compute_net.py): the Newton job is reassigned away from the straggler, the training
   decodes each round's gradient from the replies of n - s workers.
5. The GLP "village market month" script on an in-process ledger with its invariant monitor (its
   day-by-day ticks do not map onto a live chain's heights yet; the output says so).
6. Tear down; exit 1 if any check failed.

The node itself has no compute-worker actor yet: the workers are separate processes beside the
nodes, not actors inside them.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from hedgerow.node.errors import VerdictFailure
from hedgerow.node.output import console, print_json, table

LOCAL_NOTE = (
    "ran in this process through the sans-IO cores, NOT across the nodes (no compute-worker actor yet)"
)


def register(verbs: Any) -> None:
    parser = verbs.add_parser(
        "demo",
        help="run the demo: 4 validators, a market under a crash, compute jobs, invariant checks",
        description="Bring up 4 validators, trade grassroots txs against them while the leader is killed and "
        "restarted, run the village-market script, a parallel-Newton and a gradient-coded job, check the "
        "invariants and tear down. Exit 1 if a check fails.",
        epilog="example: hedgerow demo --quick",
    )
    parser.add_argument("--quick", action="store_true", help="shorter timeline and jobs (CI)")
    parser.add_argument("--dir", type=Path, default=None, help="testnet directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.set_defaults(handler=run_demo)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        console.print(text)


def run_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    report: dict[str, Any] = {"failures": []}
    directory = args.dir or Path(tempfile.mkdtemp(prefix="hedgerow-demo-"))
    cleanup = args.dir is None
    try:
        report.update(_on_the_testnet(args, directory))
        report["village"] = _village(args)
    finally:
        if cleanup:
            shutil.rmtree(directory, ignore_errors=True)
    for part in PARTS:
        if not report[part]["ok"]:
            report["failures"].append(part)
    report["wall_s"] = round(time.monotonic() - started, 2)
    if args.json:
        print_json(report)
    else:
        console.print(
            table(
                "demo verdict",
                ["part", "where it ran", "ok"],
                [(p, report[p]["where"], "yes" if report[p]["ok"] else "NO") for p in PARTS],
            )
        )
        console.print(f"demo finished in {report['wall_s']:.1f} s")
    if report["failures"]:
        raise VerdictFailure(f"demo checks failed: {', '.join(report['failures'])}")
    return 0


PARTS = ("chain", "newton", "gradcoding", "village")
STRAGGLER = "v0"
STRAGGLER_DELAY_S = 2.0


def _on_the_testnet(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    from hedgerow.testnet.compute_net import start_workers
    from hedgerow.testnet.report import print_result
    from hedgerow.testnet.scenario import create_for, run_scenario
    from hedgerow.testnet.scenario_file import Scenario, Step

    duration = 9.0 if args.quick else 16.0
    scenario = Scenario(
        name="village-trading-under-a-crash",
        seed=1,
        description="agents trade grassroots txs on the live chain; the leader is SIGKILLed and restarted",
        duration_s=duration,
        rate_tps=15,
        accounts=6,
        steps=(
            Step(duration * 0.3, "kill", {"node": "leader"}, "crashed"),
            Step(duration * 0.55, "restart", {"node": "crashed"}),
        ),
        liveness_bound_s=10,
    )
    _say(args, f"[bold]1. bringing up 4 validators[/bold] in {directory} ...")
    t0 = time.monotonic()
    testnet = create_for(directory / "net", scenario)
    out: dict[str, Any] = {}
    cluster = None
    try:
        _say(args, f"   up in {time.monotonic() - t0:.1f} s; heights {testnet.heights()}")
        _say(
            args,
            f"[bold]2. agents trade for {duration:.0f} s; the leader is killed at t={duration * 0.3:.1f} s "
            f"and restarted at t={duration * 0.55:.1f} s[/bold]",
        )

        def show(step: Any) -> None:
            _say(args, f"   t={step.at_s:5.1f}s {step.action}: {step.detail}")

        result = run_scenario(testnet, scenario, on_step=show, restore=False)
        if not args.json:
            print_result(result)
        out["chain"] = {"where": "4 validator processes on loopback", "ok": result.passed, **result.to_json()}
        _say(
            args,
            f"[bold]3. compute workers beside each validator[/bold] (a process per node, with the "
            f"node's key, over the authenticated transport); {STRAGGLER}'s worker is a straggler "
            f"(+{STRAGGLER_DELAY_S:.0f} s per reply)",
        )
        cluster = start_workers(testnet, stragglers={STRAGGLER: STRAGGLER_DELAY_S})
        out["newton"] = _newton(args, cluster)
        out["gradcoding"] = _gradcoding(args, cluster)
    finally:
        if cluster is not None:
            cluster.stop()
        codes = testnet.down()
        _say(args, f"   testnet down: {len(codes)} nodes stopped")
    return out


def _village(args: argparse.Namespace) -> dict[str, Any]:
    from hedgerow.testnet.sim.grassroots_campaign import VILLAGE_LETTERS, Market, run_village, village_params

    _say(
        args,
        "[bold]5. the GLP village-market month[/bold] (scripted acts on an in-process ledger with the "
        "invariant monitor: NOT on the testnet, its day ticks do not map onto live heights yet)",
    )
    market = Market(village_params(), VILLAGE_LETTERS)
    error = None
    try:
        run_village(market)
    except Exception as failure:  # noqa: BLE001 - reported as the part's verdict
        error = str(failure)
    end = market.end_state()
    if not args.json:
        rows = [(x, end["agents"][x]["holds"], end["agents"][x]["treasury"]) for x in VILLAGE_LETTERS]
        console.print(table(f"village market at tick {end['now']}", ["agent", "holds", "treasury"], rows))
    ok = error is None and not end["violations"]
    return {
        "where": "in this process (local ledger), not on the testnet",
        "ok": ok,
        "error": error,
        "violations": end["violations"],
        "height": end["height"],
    }


NET_NOTE = "coordinator here, a worker process beside each validator, over net.Transport"


def _newton(args: argparse.Namespace, cluster: Any) -> dict[str, Any]:
    import trio

    from hedgerow.compute.newton import NewtonConfig, NewtonCoordinator
    from hedgerow.compute.newton.jobs import make_job
    from hedgerow.compute.newton.systems import make
    from hedgerow.testnet.compute_net import coordinate

    T = 256 if args.quick else 2048
    _say(
        args,
        f"[bold]4a. parallel-Newton job[/bold] (DEER on a GRU, T={T}, B=2; sent to {cluster.names[0]}'s "
        "worker first, reassigned when its deadline passes)",
    )
    problem = make("gru", T=T, B=2, seed=1)
    job = make_job(
        bytes(range(16)),
        problem.system,
        problem.s0,
        problem.inputs,
        NewtonConfig(method="deer"),
        deadline_ms=1500,
    )
    core = NewtonCoordinator(list(range(len(cluster.worker_ids))))
    t0 = time.monotonic()
    delivered = trio.run(
        lambda: coordinate(
            cluster, core, lambda d: bool(d), first=lambda now: core.start(now) + core.submit(job, now)
        )
    )
    outcome = delivered[0]
    worker = getattr(outcome, "worker", None)
    by = cluster.names[worker] if isinstance(worker, int) and 0 <= worker < len(cluster.names) else worker
    wall = time.monotonic() - t0
    if not args.json:
        console.print(
            table(
                "newton job",
                ["verified", "served by", "reason", "wall s"],
                [("yes" if outcome.ok else "NO", by, getattr(outcome, "reason", "") or "", f"{wall:.1f}")],
            )
        )
    return {
        "where": NET_NOTE,
        "ok": bool(outcome.ok),
        "delivered": sum(1 for o in delivered if o.ok),
        "served_by": by,
        "wall_s": round(wall, 2),
    }


def _gradcoding(args: argparse.Namespace, cluster: Any) -> dict[str, Any]:
    import trio

    from hedgerow.compute.gradcoding.coordinator import GcCoordinator
    from hedgerow.compute.gradcoding.driver import TrainSetup, build_problem, straggler_count
    from hedgerow.compute.gradcoding.sim import SimConfig
    from hedgerow.testnet.compute_net import coordinate

    rounds = 20 if args.quick else 60
    n = len(cluster.worker_ids)
    _say(
        args,
        f"[bold]4b. gradient-coded training[/bold] (COCO-EF, logistic regression, n={n} workers, s=1, "
        f"{rounds} rounds; the full gradient is decoded from any n-s replies)",
    )
    setup = TrainSetup(n=n, s=1, rounds=rounds, p=0.25, m=200, data_dim=20, method="cocoef", deadline_s=0.3)
    problem = build_problem(setup)
    w0 = problem.initial_weights()
    core = GcCoordinator(setup.job_spec(), setup.gc_config(SimConfig()), w0)
    t0 = time.monotonic()
    trio.run(
        lambda: coordinate(cluster, core, lambda d: core.result is not None, first=core.start, timeout_s=150)
    )
    wall = time.monotonic() - t0
    first, last = float(problem.loss(w0)), float(problem.loss(core.w))
    history = list(core.history)
    stragglers = straggler_count(history, n)
    aborted = getattr(core.result, "reason", None)
    if not args.json:
        console.print(
            table(
                "gradient-coded training",
                ["rounds", "loss at w0", "final loss", "worker-rounds not waited for", "wall s"],
                [(len(history), f"{first:.4f}", f"{last:.4f}", stragglers, f"{wall:.1f}")],
            )
        )
    return {
        "where": NET_NOTE,
        "ok": last < first and aborted is None and len(history) == rounds,
        "rounds": len(history),
        "first_loss": first,
        "final_loss": last,
        "stragglers_seen": stragglers,
        "aborted": aborted,
        "wall_s": round(wall, 2),
    }
