"""Heard-Of rounds benchmark (spec section 10): simulator throughput and the exhaustive checker.

    .venv/bin/python bench/rounds.py [--quick] [--json FILE]

(1) Round machines on the packet simulator, for n in {4, 7, 10}, f = (n-1)//2, each algorithm
    (OTR, UV, LV, FloodMin, midpoint approx) in `ho_f` mode (AMP_f -> HO_f, one node crashed half
    way through a broadcast) and OTR/LV also in `timeout` mode (HoNetwork(RandomHOf(f))): rounds/s
    and decisions/s per wall second, p50/p99 decision latency in *virtual* seconds, mean realized
    |HO|, uniform-round fraction, late and future-dropped counts.
(2) The lock-step executor's rounds/s for the same n (no network, the oracle picks HO sets), as a
    ratio against (1): what the packet-level machinery costs.
(3) The exhaustive checker's reference cases: configurations explored and wall time.
(4) Real loopback testnets (n = 4; with the full run also 7 and 10 validator processes): every
    algorithm in `ho_f` mode through the nodes' `rounds` actors, started over RPC one instance at
    a time: process-rounds and decisions per wall second end to end (RPC start on every node to
    the last decision seen by polling), p50/p99 decision latency per node (from its own start of
    the instance, so real seconds), mean realized |HO|, late and future-dropped counts.
    `--no-testnet` skips it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from typing import Any

from rich.console import Console

from hedgerow.node.output import table
from hedgerow.protocols.heardof import checker
from hedgerow.protocols.heardof.algorithms import (
    FloodMin,
    LastVoting,
    OneThirdRule,
    UniformVoting,
    make_algorithm,
)
from hedgerow.testnet.sim.heardof_executor import run_lockstep
from hedgerow.testnet.sim.heardof_oracles import RandomHOf
from hedgerow.testnet.sim.heardof_runner import run_once

ALGORITHMS = ("otr", "uv", "lv", "floodmin", "approx")
console = Console(width=170)
SIZES = (4, 7, 10)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sim_row(algorithm: str, n: int, mode: str, seeds: range) -> dict[str, Any]:
    f = (n - 1) // 2
    rounds = decisions = late = future_dropped = 0
    latencies: list[float] = []
    mean_ho: list[float] = []
    uniform: list[float] = []
    violations = 0
    started = time.perf_counter()
    for seed in seeds:
        rng_inputs = [(seed * 7 + p * 3) % (1001 if algorithm == "approx" else 3) for p in range(n)]
        stats = run_once(algorithm, rng_inputs, mode=mode, predicate="hof", seed=seed, f=f,
                         crash=(seed % n) if mode == "ho_f" else None, max_rounds=60)
        rounds += stats.rounds * (n - len(stats.crashed))
        decisions += len(stats.decisions)
        latencies += stats.latencies_s
        mean_ho.append(stats.mean_ho)
        uniform.append(stats.uniform_fraction)
        late += stats.counters.get("late", 0)
        future_dropped += stats.counters.get("future_dropped", 0)
        violations += len(stats.violations)
    wall_s = time.perf_counter() - started
    return {
        "algorithm": algorithm, "n": n, "f": f, "mode": mode, "runs": len(seeds),
        "rounds_per_s": rounds / wall_s, "decisions_per_s": decisions / wall_s,
        "latency_p50_ms": 1000 * _percentile(latencies, 0.5),
        "latency_p99_ms": 1000 * _percentile(latencies, 0.99),
        "mean_ho": statistics.fmean(mean_ho), "uniform_fraction": statistics.fmean(uniform),
        "late": late, "future_dropped": future_dropped, "violations": violations, "wall_s": wall_s,
    }


def lockstep_rate(n: int, rounds: int) -> float:
    f = (n - 1) // 2
    started = time.perf_counter()
    run_lockstep(OneThirdRule(n), [p % 3 for p in range(n)], RandomHOf(f=f), seed=1, max_rounds=rounds,
                 stop_when=lambda r: False)
    return rounds * n / (time.perf_counter() - started)


def checker_rows() -> list[dict[str, Any]]:
    nosplit = {"round_filter": checker.nosplit}
    cases: list[tuple[str, Any, int, Any, dict[str, Any], int]] = [
        ("otr n=3 {0,1}", OneThirdRule(3), 3, checker.binary_inputs(3), {}, 22),
        ("otr n=4 {0,1,2}", OneThirdRule(4), 4, checker.binary_inputs(4, 3), {}, 294),
        ("uv n=3 nosplit", UniformVoting(3), 3, checker.binary_inputs(3), nosplit, 51),
        ("uv n=4 nosplit", UniformVoting(4), 4, checker.binary_inputs(4), nosplit, 107),
        ("lv n=3 4 phases", LastVoting(3), 3, checker.binary_inputs(3), {"horizon": 16}, 9728),
        ("lv n=4 3 phases", LastVoting(4), 4, checker.binary_inputs(4), {"horizon": 12}, 15397),
        ("floodmin n=4 HO_1", FloodMin(4), 4, list(itertools.permutations(range(4))), {"f": 1, "k": 2}, 216),
    ]
    rows = []
    for label, alg, n, inputs, options, reference in cases:
        started = time.perf_counter()
        result = checker.check(alg, n, inputs, **options)
        rows.append({"case": label, "configurations": result.configurations, "spec_reference": reference,
                     "violations": len(result.violations), "wall_s": time.perf_counter() - started})
    started = time.perf_counter()
    bite = checker.check(UniformVoting(3), 3, checker.binary_inputs(3))
    rows.append({"case": "uv n=3 no predicate (must bite)", "configurations": bite.configurations,
                 "spec_reference": None, "violations": len(bite.violations),
                 "wall_s": time.perf_counter() - started})
    return rows


def testnet_rows(sizes: tuple[int, ...], instances: int) -> list[dict[str, Any]]:
    """Section (4): one loopback testnet per size, every algorithm `instances` times."""
    import tempfile
    from pathlib import Path

    from hedgerow.node.job_client import cluster_from_testnet, run_rounds
    from hedgerow.testnet.launcher import up
    from hedgerow.testnet.manifest import default_manifest

    rows = []
    for n in sizes:
        f = (n - 1) // 2
        with tempfile.TemporaryDirectory(prefix="bench-rounds-") as tmp:
            testnet = up(Path(tmp) / "net", default_manifest(n), deadline_s=120).testnet
            try:
                cluster = cluster_from_testnet(testnet.dir)
                for number, algorithm in enumerate(ALGORITHMS):
                    rounds = decisions = late = future_dropped = violations = 0
                    latencies: list[float] = []
                    ho: list[int] = []
                    started = time.perf_counter()
                    for k in range(instances):
                        inputs = [(k * 7 + p * 3) % (1001 if algorithm == "approx" else 3) for p in range(n)]
                        grace = 0.005 if algorithm in ("otr", "lv", "uv") else 0.0
                        params = {"instance": 1_000_000 * n + 1000 * number + k, "algorithm": algorithm,
                                  "inputs": inputs, "f": f, "mode": "ho_f", "amp_grace_s": grace,
                                  "catchup_k": n, "linger_rounds": 2}
                        statuses = run_rounds(cluster, params, timeout_s=30.0)
                        decided = [s for s in statuses if s.get("decided")]
                        values = {repr(s["decision"]) for s in decided}
                        k_set = f + 1 if algorithm == "floodmin" else 1
                        violations += int(algorithm != "approx" and len(values) > k_set)
                        decisions += len(decided)
                        for status in statuses:
                            trace = status.get("trace") or []
                            rounds += len(trace)
                            ho += [len(h) for h in trace]
                            late += status.get("counters", {}).get("late", 0)
                            future_dropped += status.get("counters", {}).get("future_dropped", 0)
                        latencies += [s["latency_ms"] for s in decided if s.get("latency_ms") is not None]
                    wall_s = time.perf_counter() - started
                    rows.append({
                        "algorithm": algorithm, "n": n, "f": f, "mode": "ho_f", "runs": instances,
                        "rounds_per_s": rounds / wall_s, "decisions_per_s": decisions / wall_s,
                        "latency_p50_ms": _percentile(latencies, 0.5),
                        "latency_p99_ms": _percentile(latencies, 0.99),
                        "mean_ho": statistics.fmean(ho) if ho else float("nan"), "late": late,
                        "future_dropped": future_dropped, "violations": violations, "wall_s": wall_s,
                    })
            finally:
                testnet.kill_all()
    return rows


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--quick", action="store_true", help="fewer seeds (well under a minute)")
    parser.add_argument("--json", default=None, help="write the results as JSON to FILE")
    parser.add_argument("--no-testnet", action="store_true", help="skip the real loopback testnet rows")
    args = parser.parse_args(argv)
    seeds = range(5) if args.quick else range(30)
    sim_rows = []
    for n in SIZES:
        for algorithm in ALGORITHMS:
            make_algorithm(algorithm, n)
            sim_rows.append(sim_row(algorithm, n, "ho_f", seeds))
        for algorithm in ("otr", "lv"):
            sim_rows.append(sim_row(algorithm, n, "timeout", seeds))
    lock_rows = []
    for n in SIZES:
        rate = lockstep_rate(n, 100 if args.quick else 400)
        packet = [r["rounds_per_s"] for r in sim_rows
                  if r["n"] == n and r["algorithm"] == "otr" and r["mode"] == "ho_f"]
        lock_rows.append({"n": n, "lockstep_rounds_per_s": rate, "packet_ho_f_otr_rounds_per_s": packet[0],
                          "ratio_lockstep_over_packet": rate / packet[0]})
    check_rows = checker_rows()
    real_rows = [] if args.no_testnet else testnet_rows((4,) if args.quick else SIZES,
                                                        3 if args.quick else 10)
    console.print(table("round machines on the packet simulator (wall rates; latency in virtual time)",
                        ["n", "f", "mode", "algorithm", "rounds/s", "decisions/s", "p50 ms", "p99 ms",
                         "mean |HO|", "uniform", "late", "future dropped", "violations"],
                        [(r["n"], r["f"], r["mode"], r["algorithm"], f"{r['rounds_per_s']:.0f}",
                          f"{r['decisions_per_s']:.0f}", f"{r['latency_p50_ms']:.1f}",
                          f"{r['latency_p99_ms']:.1f}", f"{r['mean_ho']:.2f}", f"{r['uniform_fraction']:.2f}",
                          r["late"], r["future_dropped"], r["violations"]) for r in sim_rows]))
    console.print(table("lock-step executor vs packet simulator (process-rounds per wall second, OTR)",
                        ["n", "lock-step", "packet ho_f", "ratio"],
                        [(r["n"], f"{r['lockstep_rounds_per_s']:.0f}",
                          f"{r['packet_ho_f_otr_rounds_per_s']:.0f}",
                          f"{r['ratio_lockstep_over_packet']:.1f}x") for r in lock_rows]))
    console.print(table("exhaustive checker",
                        ["case", "configurations", "spec reference", "violations", "wall s"],
                        [(r["case"], r["configurations"], r["spec_reference"], r["violations"],
                          f"{r['wall_s']:.3f}") for r in check_rows]))
    if real_rows:
        console.print(table("round machines on a real loopback testnet (nodes' rounds actors, ho_f; "
                            "latency per node in real time)",
                            ["n", "f", "algorithm", "runs", "rounds/s", "decisions/s", "p50 ms", "p99 ms",
                             "mean |HO|", "late", "future dropped", "violations"],
                            [(r["n"], r["f"], r["algorithm"], r["runs"], f"{r['rounds_per_s']:.0f}",
                              f"{r['decisions_per_s']:.1f}", f"{r['latency_p50_ms']:.1f}",
                              f"{r['latency_p99_ms']:.1f}", f"{r['mean_ho']:.2f}", r["late"],
                              r["future_dropped"], r["violations"]) for r in real_rows]))
    result = {"simulator": sim_rows, "lockstep": lock_rows, "checker": check_rows, "testnet": real_rows,
              "quick": args.quick}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
    bad = sum(r["violations"] for r in sim_rows + real_rows)
    mismatched = [r for r in check_rows
                  if r["spec_reference"] is not None and r["configurations"] != r["spec_reference"]]
    return 1 if bad or mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
