"""`hedgerow demo [--quick] [--json]` (= `make demo`): the whole system in a few minutes.

1. Bring up 4 validators (real processes on loopback) running the grassroots ledger.
2. Village agents A-F trade on the live chain (mints and transfers over the client API + RPC)
   while the current leader is SIGKILLed in the middle and started again (the scenario runner of
   testnet/scenario.py, so the same invariant checks run at the end).
3. The GLP "village market month" script on an in-process ledger with its invariant monitor.
4. A parallel-Newton job (4 workers, one crashes mid-job) and a gradient-coded training job
   (4 workers, stragglers) through the sans-IO coordinator/worker cores, in this process.
5. Tear down; exit 1 if any check failed.

Steps 3 and 4 run in this process, not across the nodes: the node has no compute-worker actor yet,
and the village script's day-by-day ticks do not map onto a live chain's heights. The output says so.
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
        report["chain"] = _chain(args, directory)
        report["village"] = _village(args)
        report["newton"] = _newton(args)
        report["gradcoding"] = _gradcoding(args)
    finally:
        if cleanup:
            shutil.rmtree(directory, ignore_errors=True)
    for part in ("chain", "village", "newton", "gradcoding"):
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
                [
                    (p, report[p]["where"], "yes" if report[p]["ok"] else "NO")
                    for p in ("chain", "village", "newton", "gradcoding")
                ],
            )
        )
        console.print(f"demo finished in {report['wall_s']:.1f} s")
    if report["failures"]:
        raise VerdictFailure(f"demo checks failed: {', '.join(report['failures'])}")
    return 0


def _chain(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    from hedgerow.testnet.report import print_result
    from hedgerow.testnet.scenario import create_for, run_scenario
    from hedgerow.testnet.scenario_file import Scenario, Step

    duration = 9.0 if args.quick else 16.0
    scenario = Scenario(
        name="village-trading-under-a-crash",
        seed=1,
        description="village agents A-F trade on the live chain; the leader is SIGKILLed and restarted",
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
    try:
        _say(args, f"   up in {time.monotonic() - t0:.1f} s; heights {testnet.heights()}")
        _say(
            args,
            f"[bold]2. village agents trade for {duration:.0f} s; the leader is killed at "
            f"t={duration * 0.3:.1f} s and restarted at t={duration * 0.55:.1f} s[/bold]",
        )

        def show(step: Any) -> None:
            _say(args, f"   t={step.at_s:5.1f}s {step.action}: {step.detail}")

        result = run_scenario(testnet, scenario, on_step=show, restore=False)
        if not args.json:
            print_result(result)
    finally:
        codes = testnet.down()
        _say(args, f"   testnet down: {len(codes)} nodes stopped")
    return {"where": "4 validator processes on loopback", "ok": result.passed, **result.to_json()}


def _village(args: argparse.Namespace) -> dict[str, Any]:
    from hedgerow.testnet.sim.grassroots_campaign import VILLAGE_LETTERS, Market, run_village, village_params

    _say(
        args,
        "[bold]3. the GLP village-market month[/bold] (scripted acts on an in-process ledger with the "
        "invariant monitor; its day ticks do not map onto live heights yet)",
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
        "where": "in this process (local ledger)",
        "ok": ok,
        "error": error,
        "violations": end["violations"],
        "height": end["height"],
    }


def _newton(args: argparse.Namespace) -> dict[str, Any]:
    from hedgerow.compute.newton.sim import run

    _say(args, "[bold]4a. parallel-Newton job[/bold] (DEER on a GRU, 4 workers, worker 0 crashes mid-job)")
    t0 = time.monotonic()
    report = run("crash", seed=1, n_workers=4)
    delivered = [o for o in report.delivered if o.ok]
    if not args.json:
        console.print(table("newton job", ["event"], [(line,) for line in report.log[-6:]]))
        console.print(f"   {LOCAL_NOTE}")
    return {
        "where": "in this process: " + LOCAL_NOTE,
        "ok": len(delivered) == 1,
        "delivered": len(delivered),
        "evidence": len(report.evidence),
        "wall_s": round(time.monotonic() - t0, 2),
    }


def _gradcoding(args: argparse.Namespace) -> dict[str, Any]:
    from hedgerow.compute.gradcoding.driver import TrainSetup, train
    from hedgerow.compute.gradcoding.sim import SimConfig

    rounds = 40 if args.quick else 100
    _say(
        args,
        f"[bold]4b. gradient-coded training[/bold] (COCO-EF, logistic regression, n=4 workers, s=1, "
        f"{rounds} rounds, one straggler per round on average)",
    )
    setup = TrainSetup(n=4, s=1, rounds=rounds, p=0.25, m=200, data_dim=20, method="cocoef")
    t0 = time.monotonic()
    result = train(setup, SimConfig(straggler="bernoulli", p=0.25, straggler_seed=1), with_gap=False)
    summary = result.summary()
    first, last = result.losses[0], result.final_loss
    if not args.json:
        console.print(
            table(
                "gradient-coded training",
                ["rounds", "first loss", "final loss", "stragglers seen", "fallbacks"],
                [
                    (
                        summary["rounds"],
                        f"{first:.4f}",
                        f"{last:.4f}",
                        summary["stragglers_seen"],
                        summary["fallbacks"],
                    )
                ],
            )
        )
        console.print(f"   {LOCAL_NOTE}")
    return {
        "where": "in this process: " + LOCAL_NOTE,
        "ok": last < first and summary["aborted"] is None,
        "first_loss": first,
        "final_loss": last,
        "stragglers_seen": summary["stragglers_seen"],
        "wall_s": round(time.monotonic() - t0, 2),
    }
