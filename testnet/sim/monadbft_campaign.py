"""`hedgerow sim --protocol monadbft`: the scenario catalogue and the campaign runner.

Every scenario runs one seed at a time under the seeded simulator with the invariant checker
watching every step, then checks what the spec says the scenario must produce. A failing seed
prints `seed=... step=...` and the one command that replays it; any violation exits 1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from hedgerow.testnet.sim import monadbft_scenarios as s
from hedgerow.testnet.sim import monadbft_scenarios_adv as adv
from hedgerow.testnet.sim import monadbft_twins as tw
from hedgerow.testnet.sim.scenario_kit import Outcome

Runner = Callable[[int, "int | None", "int | None"], Outcome]

CATALOGUE: dict[str, tuple[Runner, str]] = {
    "s1-happy": (
        s.s1_happy,
        "happy path to round 201 (and vote_pace 100): latency 2d/3d VOTED, 4d/5d FINALIZED",
    ),
    "s2-crashed-leader": (s.s2_crashed_leader, "D never starts: one TC per D round, fresh NoTipCert blocks"),
    "s3-silent-leader": (s.s3_silent_leader, "D votes and times out but never proposes: as S2"),
    "s4-equivocating-leader": (
        s.s4_equivocating_leader,
        "D signs two round-3 blocks: evidence, TC picks B1, B1 re-proposed and final",
    ),
    "s5-tail-fork": (s.s5_tail_fork, "D withholds QC(2) and proposes B' on QC(1): rejected, B_2 final"),
    "s6-double-vote": (s.s6_double_vote, "D votes twice in round 2: DOUBLE_VOTE evidence, first vote counts"),
    "s7-hidden-tip": (
        s.s7_hidden_tip,
        "D hides its round-3 tip: RoundRecovery, NEC, fresh block, no timeout",
    ),
    "s8-speculative-revert": (
        s.s8_speculative_revert,
        "D equivocates and lies: A reverts VOTED(B1) with evidence",
    ),
    "s9-crash-restart": (s.s9_crash_restart, "B killed between persist and send, and after a timeout"),
    "s10-partition-heal": (s.s10_partition_heal, "D cut off for 100 rounds, then catches up by batched sync"),
    "s11-larger": (s.s11_larger, "n = 7/10/16 (--nodes): happy, and f nodes never starting"),
    "s12-fast-recovery-ab": (s.s12_fast_recovery_ab, "fast_recovery on/off with a crashed leader"),
    "s13-stale-report": (adv.s13_stale_report, "regression: C must report QC(T,2), not qc_of(high_cert)"),
    "s14-late-sibling": (
        adv.s14_late_sibling,
        "regression: no VOTED on a later-round QC; T1 final, 0 reverts",
    ),
    "s15-restart-view-change": (
        adv.s15_restart_view_change,
        "restarts after a timeout, an NE, a RoundRecovery",
    ),
    "s16-recovery-first": (adv.s16_recovery_first, "RoundRecovery arrives before the TC's timeouts"),
    "s17-recovery-timer": (adv.s17_recovery_timer, "S7 at delay = δ: the recovery timer never fires"),
    "s18-round-jump": (
        adv.s18_round_jump,
        "D cut off for 1000 rounds: one jump, bounded vote state, batched sync",
    ),
    "s19-storm": (adv.s19_storm, "30 s of 50% loss and 5δ delays, then GST: bounded state, quick recovery"),
    "s20-byzantine-pair": (adv.s20_byzantine_pair, "n = 7, an equivocator and a silent leader back to back"),
    "s21-unequal-stake": (
        adv.s21_unequal_stake,
        "stakes 4/3/2/1, stake-weighted leaders, B down, 1000 rounds",
    ),
    "t1-no-twins": (tw.t1_no_twins, "no twins, no partition, 20 rounds"),
    "t2-twin-no-partition": (tw.t2_twin_no_partition, "twin of A, no partition, 20 rounds"),
    "t3-twin-rotating-isolation": (
        tw.t3_twin_rotating_isolation,
        "twin of A, instance r mod 5 isolated, 200 rounds",
    ),
    "t4-partition-heal": (tw.t4_partition_heal, "D cut off in rounds 1-30, then healed"),
    "t5-generated": (tw.t5_generated, "generated twins: per round a leader and a 2-group split (8 rounds)"),
    "t6-negative-control": (
        tw.t6_negative_control,
        "twins of A and B split in two quorums: MUST report an agreement violation (exit 1)",
    ),
    "byz-crashed-leader": (tw.byz_crashed_leader, "f leaders crash (--nodes 4|7): one TC per their round"),
    "byz-silent": (tw.byz_silent, "f silent leaders: TCs exactly in their rounds"),
    "byz-equivocation": (tw.byz_equivocation, "f equivocating leaders: evidence, reverts only under them"),
    "byz-tail-fork": (tw.byz_tail_fork, "f tail-forking leaders: rejected, predecessors' blocks final"),
    "byz-double-vote": (tw.byz_double_vote, "f double-voting replicas: evidence, no effect on progress"),
    "random": (tw.random_faults, "seeded random faults before GST, random Byzantine behaviours, a crash"),
}
SCENARIOS: dict[str, str] = {name: text for name, (_, text) in CATALOGUE.items()}


def run_one(name: str, seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    runner = CATALOGUE[name][0]
    return runner(seed, nodes, steps)


def _work(job: tuple[str, int, int | None, int | None]) -> dict[str, Any]:
    name, seed, nodes, steps = job
    return run_one(name, seed, nodes, steps).to_dict()


def campaign(
    name: str,
    seeds: Iterable[int],
    nodes: int | None = None,
    steps: int | None = None,
    jobs: int = 1,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run `name` for every seed (in `jobs` processes); results come back in seed order."""
    todo = [(name, seed, nodes, steps) for seed in seeds]
    results: list[dict[str, Any]] = []
    if jobs <= 1 or len(todo) < 2:
        for job in todo:
            results.append(_work(job))
            if on_result is not None:
                on_result(results[-1])
        return results
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs) as pool:
        for result in pool.imap(_work, todo, chunksize=max(1, len(todo) // (jobs * 8))):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def replay_command(name: str, seed: int, nodes: int | None, steps: int | None) -> str:
    command = f"hedgerow sim --protocol monadbft --scenario {name} --seeds {seed}"
    if nodes is not None:
        command += f" --nodes {nodes}"
    if steps is not None:
        command += f" --steps {steps}"
    return command


def summarise(
    name: str, results: list[dict[str, Any]], nodes: int | None, steps: int | None, elapsed_s: float
) -> dict[str, Any]:
    violations: list[dict[str, Any]] = []
    failing: list[dict[str, Any]] = []
    for result in results:
        found = [dict(v, seed=result["seed"]) for v in result["violations"]]
        found += [
            {"invariant": "scenario", "detail": line, "seed": result["seed"], "step": result["steps"]}
            for line in result["failed"]
        ]
        violations.extend(found)
        if found:
            step = min(v.get("step", result["steps"]) for v in found)
            failing.append(
                {
                    "seed": result["seed"],
                    "step": step,
                    "replay": replay_command(name, result["seed"], nodes, steps),
                }
            )

    def total(key: str) -> int:
        return sum(int(r["summary"].get(key, 0)) for r in results)

    return {
        "protocol": "monadbft",
        "scenario": name,
        "seeds": len(results),
        "nodes": nodes,
        "finalized": total("finalized"),
        "rounds": total("rounds"),
        "timeouts": total("timeouts"),
        "tcs": total("tcs"),
        "reproposals": total("reproposals"),
        "necs": total("necs"),
        "voted": total("voted"),
        "reverts": total("reverts"),
        "evidence": total("evidence"),
        "messages": total("messages"),
        "steps": total("steps"),
        "violations": violations,
        "failing": failing,
        "trace_hashes": {r["seed"]: r["trace_hash"] for r in results},
        "elapsed_s": round(elapsed_s, 2),
    }


def run(args: argparse.Namespace) -> int:
    """Entry point of `hedgerow sim --protocol monadbft` (the dispatcher parsed the options)."""
    from hedgerow.node.output import console, err_console, print_json, progress, table

    name: str = args.scenario
    seeds = list(args.seed_range)
    nodes: int | None = args.nodes
    steps: int | None = args.steps
    jobs = int(getattr(args, "jobs", 0) or min(len(seeds), os.cpu_count() or 1, 8))
    started = time.monotonic()
    with progress(quiet=args.json) as bar:
        task = bar.add_task(f"monadbft {name}", total=len(seeds))
        results = campaign(name, seeds, nodes, steps, jobs=jobs, on_result=lambda _: bar.advance(task))
    summary = summarise(name, results, nodes, steps, time.monotonic() - started)
    if args.json:
        print_json(summary)
    else:
        rows = [
            ("seeds run", summary["seeds"]),
            ("rounds (sum)", summary["rounds"]),
            ("finalized (sum)", summary["finalized"]),
            ("TCs", summary["tcs"]),
            ("timeouts", summary["timeouts"]),
            ("re-proposals", summary["reproposals"]),
            ("NECs", summary["necs"]),
            ("VOTED", summary["voted"]),
            ("reverts", summary["reverts"]),
            ("evidence", summary["evidence"]),
            ("violations", len(summary["violations"])),
            ("elapsed (s)", summary["elapsed_s"]),
        ]
        console.print(table(f"monadbft {name} seeds {seeds[0]}-{seeds[-1]}", ["metric", "value"], rows))
        for entry in summary["failing"]:
            err_console.print(f"[red]FAIL[/red] seed={entry['seed']} step={entry['step']}")
            for violation in [v for v in summary["violations"] if v["seed"] == entry["seed"]][:5]:
                err_console.print(f"    {violation['invariant']}: {violation['detail']}")
            err_console.print(f"    replay: {entry['replay']}")
    return 1 if summary["violations"] else 0
