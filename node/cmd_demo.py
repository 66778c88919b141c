"""`hedgerow demo [--quick] [--json]` (= `make demo`): the whole system in a few minutes.

1. Bring up 4 validators (real processes on loopback) running the grassroots ledger.
2. The GLP "village market month" on that fresh chain: the scenario runner's script mode
   (`hedgerow testnet scenario village`: `script_scenario` + `run_scenario`), the script's days mapped
   onto heights and each act's txs submitted in waves; its end state (the spec's table) is compared
   with the direct in-process run, and any difference fails the demo. It runs first: the script needs
   agents (`grassroots/A`...) that have signed nothing yet, and the direct run's supply holds only the
   script's classes, so the trading load's mints (step 3) must not be on the chain before it.
3. Agents trade on the live chain (mints and transfers over the client API + RPC) while the current
   leader is SIGKILLed in the middle and started again: the scenario runner of testnet/scenario.py,
   so the scenario invariant checks run at the end (prefixes, acknowledged txs, ledger, signers).
4. A parallel-Newton job on the validators' own compute-worker actors (`node/actor_compute.py`),
   coordinated from this process through `node/job_client.py` (the code behind `hedgerow job newton
   --dir`): the validator the job is first sent to is SIGKILLed while it holds it, the job is
   reassigned, the answer is re-checked here against the sequential loop; the killed validator is
   started again.
5. A gradient-coded (COCO-EF) training job on the validators' GcWorker actors (`hedgerow job train
   --dir`): one validator is SIGSTOPped for some rounds (a straggler) and resumed; every round is
   decoded from the replies of n - s workers. Both jobs write the dashboard's progress log
   (`DIR/jobs/*.jsonl`).
6. Tear down; exit 1 if any check failed.
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


def register(verbs: Any) -> None:
    parser = verbs.add_parser(
        "demo",
        help="run the demo: 4 validators, a market under a crash, compute jobs, invariant checks",
        description="Bring up 4 validators, trade grassroots txs against them while the leader is killed and "
        "restarted, run a parallel-Newton and a gradient-coded job on them, then the village-market month "
        "on the same chain (its end state compared with the direct run), check the invariants and tear "
        "down. Exit 1 if a check fails.",
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


PARTS = ("village", "chain", "newton", "gradcoding")


def _on_the_testnet(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
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
    try:
        _say(args, f"   up in {time.monotonic() - t0:.1f} s; heights {testnet.heights()}")
        out["village"] = _guarded(_village, args, testnet, where=VILLAGE_NOTE)
        _say(
            args,
            f"[bold]3. agents trade for {duration:.0f} s; the leader is killed at t={duration * 0.3:.1f} s "
            f"and restarted at t={duration * 0.55:.1f} s[/bold]",
        )

        def show(step: Any) -> None:
            _say(args, f"   t={step.at_s:5.1f}s {step.action}: {step.detail}")

        result = run_scenario(testnet, scenario, on_step=show, restore=False)
        if not args.json:
            print_result(result)
        out["chain"] = {"where": "4 validator processes on loopback", "ok": result.passed, **result.to_json()}
        out["newton"] = _guarded(_newton, args, testnet)
        out["gradcoding"] = _guarded(_gradcoding, args, testnet)
    finally:
        codes = testnet.down()
        _say(args, f"   testnet down: {len(codes)} nodes stopped")
    return out


VILLAGE_NOTE = "the demo's 4 validators (live month, end state compared with the direct run)"


def _village(args: argparse.Namespace, testnet: Any) -> dict[str, Any]:
    from hedgerow.testnet.report import print_result
    from hedgerow.testnet.scenario import run_scenario
    from hedgerow.testnet.scenario_cli import print_script
    from hedgerow.testnet.scenario_file import script_scenario

    scenario = script_scenario("village", stretch=VILLAGE_STRETCH)
    _say(
        args,
        "[bold]2. the GLP village-market month on the fresh testnet[/bold] (`hedgerow testnet scenario "
        f"village`): script tick t is height base + {scenario.stretch}t, each act's txs go out in waves; the "
        "end state must equal the direct in-process run's",
    )
    result = run_scenario(testnet, scenario, restore=False)
    if not args.json:
        print_result(result)
        print_script(result.script)
    script = result.script or {}
    ok = result.passed and script.get("matches_direct") is True
    return {"where": VILLAGE_NOTE, "ok": ok, **result.to_json()}


VILLAGE_STRETCH = 4  # heights per script tick: the scenario's default (a day is 20 heights)


NET_NOTE = "the validators' compute-worker actors, coordinated here through node/job_client.py"


def _guarded(part: Any, args: argparse.Namespace, testnet: Any, *, where: str = "") -> dict[str, Any]:
    """A part's report, or a failed one that says why (the demo goes on and tears down)."""
    try:
        result: dict[str, Any] = part(args, testnet)
    except Exception as failure:  # noqa: BLE001 - reported as the part's verdict
        _say(args, f"   [red]failed: {failure}[/red]")
        return {"where": where or NET_NOTE, "ok": False, "error": f"{type(failure).__name__}: {failure}"}
    return result


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _job_args(argv: list[str], args: argparse.Namespace) -> argparse.Namespace:
    """The `hedgerow job ...` arguments of a demo job, parsed by the CLI's own parser."""
    from hedgerow.node.cli import build_parser

    return build_parser().parse_args(["job", *argv, *(["--json"] if args.json else [])])


def _newton(args: argparse.Namespace, testnet: Any) -> dict[str, Any]:
    import trio

    from hedgerow.node.cmd_newton import _validate
    from hedgerow.node.job_client import newton_job

    T = 1000 if args.quick else 3000
    _say(
        args,
        f"[bold]4. parallel-Newton job[/bold] (quasi-DEER on a GRU, T={T}, D=4, float64) on the validators' "
        "compute workers; the validator it is first sent to is SIGKILLed while it holds the job",
    )
    job_args = _job_args(["newton", "--system", "gru", "--T", str(T), "--D", "4", "--method", "quasi_deer",
                          "--dtype", "float64", "--dir", str(testnet.dir), "--deadline", "60",
                          "--connect-timeout", "30", "--check"], args)
    killed: list[str] = []

    async def kill_first(index: int, cluster: Any) -> None:
        if not killed:
            killed.append(cluster.workers[index].name)
            await trio.to_thread.run_sync(testnet.kill, killed[0])

    _, dtype_name = _validate(job_args)
    try:
        report = newton_job(job_args, dtype_name, on_assign=kill_first)
    finally:
        for name in killed:
            testnet.start(name)
            _say(args, f"   {name} started again")
    error = report.get("max_err_vs_seq")
    ok = (report["status"] == "converged" and report["verified"] and error is not None and error <= 1e-8
          and bool(killed) and report["worker"] not in killed)
    if not args.json:
        console.print(
            table(
                "newton job on the validators",
                ["status", "iters", "max |r|", "err vs loop", "killed", "served by", "wall s"],
                [(report["status"], report["iterations"], _sci(report["max_residual_rechecked"]), _sci(error),
                  ", ".join(killed) or "-", report["worker"],
                  f"{report['wall_s']:.1f}")],
            )
        )
    return {**report, "where": NET_NOTE, "ok": ok, "killed": killed, "served_by": report["worker"],
            "delivered": 1 if report["verified"] else 0}


def _gradcoding(args: argparse.Namespace, testnet: Any) -> dict[str, Any]:
    import trio

    from hedgerow.node.job_client import train_job

    rounds = 30 if args.quick else 60
    pause_at, resume_at = 5, 5 + (6 if args.quick else 12)
    _say(
        args,
        f"[bold]5. gradient-coded training[/bold] (COCO-EF, logistic regression, n=4 validators, s=1, "
        f"{rounds} rounds) on the validators' GcWorker actors; one validator is SIGSTOPped after round "
        f"{pause_at} and resumed after round {resume_at}",
    )
    job_args = _job_args(["train", "--method", "cocoef", "--n-workers", "4", "--stragglers", "1",
                          "--rounds", str(rounds), "--deadline", "0.5", "--connect-timeout", "30",
                          "--dir", str(testnet.dir)], args)
    paused: list[str] = []

    async def straggle(record: Any, cluster: Any) -> None:
        if record.round + 1 == pause_at:
            paused.append(cluster.workers[-1].name)
            await trio.to_thread.run_sync(testnet.pause, paused[0])
        elif record.round + 1 == resume_at and paused:
            await trio.to_thread.run_sync(testnet.resume, paused[0])

    try:
        summary = train_job(job_args, on_round=straggle)
    finally:
        if paused and testnet.record(paused[0]).paused:
            testnet.resume(paused[0])
    gap = summary["final_gap"]
    ok = (summary["aborted"] is None and summary["rounds"] == rounds
          and summary["final_loss"] < summary["first_loss"] and summary["stragglers_seen"] > 0)
    if not args.json:
        console.print(
            table(
                "gradient-coded training on the validators",
                ["rounds", "loss w0", "loss", "gap f-f*", "stragglers", "late", "bits up", "paused",
                 "wall s"],
                [(summary["rounds"], f"{summary['first_loss']:.4f}", f"{summary['final_loss']:.4f}",
                  _sci(gap), summary["stragglers_seen"],
                  summary["late_replies"], summary["bits_uplink"], ", ".join(paused) or "-",
                  f"{summary['wall_s']:.1f}")],
            )
        )
    return {**summary, "where": NET_NOTE, "ok": ok, "paused": paused}
