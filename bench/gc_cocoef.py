"""Benchmark of gradient coding with COCO-EF (spec section 10).

    .venv/bin/python bench/gc_cocoef.py [--quick] [--no-testnet] [--json FILE] [--png FILE]  # bench/out/

(1) per method and straggler probability p: final gap, uplink bits and virtual time to reach gap 1e-3,
    compute load d; (2) per compressor: nominal bits, wire bytes, ratio to dense f32; (3) rounds/s of
    the simulator and of the exact decoder (cached / uncached) for n in {4, 8, 16}; (4) virtual time
    per round for wait-for-all, first n-s and deadline closing, as ratios from one run each. Those
    training runs go through the sans-IO cores in the seeded simulator (spec section 9 settings).
(5) unless --no-testnet: rounds/s of a real COCO-EF job (cyclic code, n=4, s=1, top-k 0.05) on a
    4-validator loopback testnet (`hedgerow job train --dir`, node/job_client.py), once with no
    stragglers and once with one validator SIGSTOPped for the middle third of the rounds, against
    the simulator's rounds/s for the same setup measured in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hedgerow.compute.gradcoding import CompressorSpec, GradReply, SimConfig, compress, nominal_bits
from hedgerow.compute.gradcoding.codes import clear_decode_cache, decode_weights, encoding_matrix
from hedgerow.compute.gradcoding.driver import (
    METHOD_TITLES,
    TrainResult,
    TrainSetup,
    method_setup,
    reproduction_base,
    train,
)
from hedgerow.node.output import console, table
from hedgerow.protocols import wire

GAP_TARGET = 1e-3
METHODS = ("cocoef", "ef_nogc", "gc_randk", "gc_biased", "gc", "uncoded", "uncoded_wait")


def run(method: str, p: float, seed: int, base: TrainSetup) -> TrainResult:
    setup = replace(method_setup(method, base), p=p, job_seed=seed)
    return train(setup, SimConfig(straggler="bernoulli", p=p, straggler_seed=seed))


def to_target(result: TrainResult) -> tuple[float, float]:
    """(uplink bits, virtual seconds) when the gap first reaches GAP_TARGET; inf if never."""
    f_star = result.f_star or 0.0
    for t, loss in enumerate(result.losses):
        if loss - f_star <= GAP_TARGET:
            return float(result.bits_cumulative[t]), result.sim.close_times_s[t]
    return math.inf, math.inf


def bench_methods(ps: list[float], seeds: range) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    base = reproduction_base()
    rows: list[dict[str, Any]] = []
    curves: dict[str, Any] = {}
    for p, method in itertools.product(ps, METHODS):
        results = [run(method, p, seed, base) for seed in seeds]
        targets = [to_target(r) for r in results]
        gaps = [r.final_gap or math.nan for r in results]
        rows.append({"method": method, "p": p, "final_gap_mean": float(np.mean(gaps)), "final_gaps": gaps,
                     "bits_to_gap": float(np.median([b for b, _ in targets])),
                     "time_to_gap_s": float(np.median([s for _, s in targets])),
                     "bits_per_round": float(np.mean([r.sim.counters["bits_used"] / len(r.sim.history)
                                                      for r in results])),
                     "load_d": results[0].setup.s + 1})
        if p == 0.2:
            first = results[0]
            curves[method] = {"bits": first.bits_cumulative,
                              "gap": [loss - (first.f_star or 0.0) for loss in first.losses]}
    return rows, curves


def bench_compressors() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for dim in (100, 2410):
        u = np.random.default_rng(0).standard_normal(dim)
        dense_bits = 32 * dim
        dense_bytes = 0
        specs = (("identity", 1.0), ("topk", 0.05), ("topk", 0.02), ("randk", 0.06), ("sign", 1.0))
        for name, ratio in specs:
            cv = compress(CompressorSpec(name, ratio), u, np.random.default_rng(1), "f32")
            frame = len(wire.encode(GradReply(bytes(16), 0, 0, cv, nominal_bits(cv), 0.0, 0)))
            dense_bytes = frame if name == "identity" else dense_bytes
            rows.append({"dim": dim, "compressor": f"{name}:{ratio:g}", "nominal_bits": nominal_bits(cv),
                         "bytes_wire": frame, "bits_ratio_vs_dense": dense_bits / nominal_bits(cv),
                         "bytes_ratio_vs_dense": dense_bytes / frame})
    return rows


def bench_speed(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n, s in ((4, 1), (8, 3), (16, 3)):
        b = encoding_matrix("cyclic_mds", n, s)
        rng = np.random.default_rng(n)
        sets = [sorted(rng.choice(n, n - s, replace=False).tolist()) for _ in range(200)]
        clear_decode_cache()
        start = time.perf_counter()
        for live in sets:
            decode_weights(b, live, cache=False)
        uncached = len(sets) / (time.perf_counter() - start)
        for live in sets:
            decode_weights(b, live)
        start = time.perf_counter()
        for _ in range(5):
            for live in sets[:50]:  # at most C(n, s) distinct sets: the cache holds them all
                decode_weights(b, live)
        cached = 250 / (time.perf_counter() - start)
        rounds = 60 if quick else 200
        setup = replace(reproduction_base(rounds), n=n, s=min(s, 2), p=0.2, method="cocoef")
        start = time.perf_counter()
        train(setup, SimConfig(straggler="bernoulli", p=0.2), track_loss=False, with_gap=False)
        sim_rate = rounds / (time.perf_counter() - start)
        rows.append({"n": n, "decoder_uncached_per_s": uncached, "decoder_cached_per_s": cached,
                     "cache_speedup": cached / uncached, "sim_rounds_per_s": sim_rate})
    return rows


def bench_closing(rounds: int) -> list[dict[str, Any]]:
    """Wait-for-all vs first n-s vs deadline closing, latency model, n=4, s=1, identity, one run each."""
    base = replace(reproduction_base(rounds), n=4, s=1, compressor=CompressorSpec("identity", 1.0),
                   error_feedback=False, wire_dtype="f32", p=0.25)
    sim = SimConfig(straggler="latency", p=0.25, straggler_seed=0)
    variants = {
        "wait for all (exact, close=all)": replace(base, scheme="cyclic_mds", mode="exact", close="all",
                                                   deadline_s=math.inf),
        "first n-s (exact cyclic_mds)": replace(base, scheme="cyclic_mds", mode="exact", close="first_k",
                                                deadline_s=math.inf),
        "deadline 1.5x median (stochastic)": replace(base, scheme="cyclic_ones", mode="stochastic"),
        "uncoded, wait for all": replace(base, s=0, scheme="cyclic_ones", mode="exact", close="all",
                                         deadline_s=math.inf),
    }
    rows: list[dict[str, Any]] = []
    for label, setup in variants.items():
        result = train(setup, sim)
        per_round = result.sim.virtual_time_s / len(result.sim.history)
        rows.append({"closing": label, "time_per_round_ms": 1e3 * per_round, "load_d": setup.s + 1,
                     "final_gap": result.final_gap})
    reference = rows[0]["time_per_round_ms"]
    for row in rows:
        row["ratio_vs_wait_all"] = row["time_per_round_ms"] / reference
    return rows


TESTNET_JOB = ["--method", "cocoef", "--code", "cyclic", "--n-workers", "4", "--stragglers", "1",
               "--compressor", "topk:0.05", "--deadline", "0.5", "--connect-timeout", "30", "--json"]


def bench_testnet(rounds: int) -> list[dict[str, Any]]:
    """Section (5): the same COCO-EF job on a fresh 4-validator loopback testnet, without and with a
    SIGSTOPped validator, and in the simulator (same setup, no stragglers) for the ratio."""
    import tempfile

    import trio

    from hedgerow.node.cli import build_parser
    from hedgerow.node.cmd_train import build
    from hedgerow.node.job_client import train_job
    from hedgerow.testnet.launcher import up
    from hedgerow.testnet.manifest import default_manifest

    pause_at, resume_at = rounds // 3, 2 * rounds // 3
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp:
        job_args = build_parser().parse_args(["job", "train", *TESTNET_JOB, "--rounds", str(rounds),
                                              "--dir", str(Path(tmp) / "net")])
        setup, _ = build(job_args)
        setup = replace(setup, deadline_s=job_args.deadline)  # as train_job does
        start = time.perf_counter()
        train(setup, SimConfig(straggler="none"))  # loss tracked every round, as train_job does
        sim_rate = rounds / (time.perf_counter() - start)
        testnet = up(job_args.dir, default_manifest(4), deadline_s=120).testnet
        try:
            paused: list[str] = []

            async def straggle(record: Any, cluster: Any) -> None:
                if record.round + 1 == pause_at:
                    paused.append(cluster.workers[-1].name)
                    await trio.to_thread.run_sync(testnet.pause, paused[0])
                elif record.round + 1 == resume_at and paused:
                    await trio.to_thread.run_sync(testnet.resume, paused[0])

            for label, hook in (("none", None), (f"v3 SIGSTOP r{pause_at + 1}-{resume_at}", straggle)):
                try:
                    summary = train_job(job_args, on_round=hook)
                finally:
                    if paused and testnet.record(paused[0]).paused:
                        testnet.resume(paused[0])
                rows.append({"straggler": label, "rounds": summary["rounds"],
                             "rounds_per_s": summary["rounds_per_s"],
                             "final_gap": summary["final_gap"], "stragglers_seen": summary["stragglers_seen"],
                             "late_replies": summary["late_replies"], "bits_uplink": summary["bits_uplink"],
                             "wall_s": summary["wall_s"], "aborted": summary["aborted"],
                             "sim_rounds_per_s": sim_rate,
                             "ratio_real_vs_sim": summary["rounds_per_s"] / sim_rate})
        finally:
            testnet.down()
    return rows


def plot(path: str, curves: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4.5))
    for method, curve in curves.items():
        bits = np.maximum(np.asarray(curve["bits"], dtype=float), 1.0)
        axis.plot(bits, np.maximum(curve["gap"], 1e-8), label=METHOD_TITLES[method])
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("uplink bits (aggregated replies)")
    axis.set_ylabel("F(w) - F*")
    axis.set_title("n=8, s=2, p=0.2, top-k k=5, seed 0")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.3g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, p in {0, 0.2, 0.4}, 30 testnet rounds: about a minute")
    parser.add_argument("--json", default="bench/out/gc_cocoef.json", help="JSON output file")
    parser.add_argument("--png", default="bench/out/gc_cocoef.png", help="PNG of gap vs uplink bits")
    parser.add_argument("--no-testnet", action="store_true",
                        help="skip section (5), the real job on a 4-validator loopback testnet")
    args = parser.parse_args(argv)
    for path in (args.json, args.png):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    ps = [0.0, 0.2, 0.4] if args.quick else [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    seeds = range(1) if args.quick else range(3)
    started = time.perf_counter()
    methods, curves = bench_methods(ps, seeds)
    compressors = bench_compressors()
    speed = bench_speed(args.quick)
    closing = bench_closing(100 if args.quick else 300)
    testnet = [] if args.no_testnet else bench_testnet(30 if args.quick else 150)
    console.print(table(f"(1) methods, {len(seeds)} seed(s), T=300 (gap target {GAP_TARGET:g})",
                        ["method", "p", "final gap", "bits to gap", "virtual s to gap", "bits/round",
                         "load d"],
                        [(METHOD_TITLES[r["method"]], r["p"], fmt(r["final_gap_mean"]), fmt(r["bits_to_gap"]),
                          fmt(r["time_to_gap_s"]), fmt(r["bits_per_round"]), r["load_d"]) for r in methods]))
    console.print(table("(2) compressors", ["D", "compressor", "nominal bits", "bytes on wire",
                                            "bits ratio vs dense f32", "bytes ratio"],
                        [(r["dim"], r["compressor"], r["nominal_bits"], r["bytes_wire"],
                          fmt(r["bits_ratio_vs_dense"]), fmt(r["bytes_ratio_vs_dense"]))
                         for r in compressors]))
    console.print(table("(3) speed", ["n", "decoder uncached /s", "decoder cached /s", "cache speedup",
                                      "simulator rounds/s (COCO-EF)"],
                        [(r["n"], fmt(r["decoder_uncached_per_s"]), fmt(r["decoder_cached_per_s"]),
                          fmt(r["cache_speedup"]), fmt(r["sim_rounds_per_s"])) for r in speed]))
    console.print(table("(4) closing rules (latency model, n=4, s=1, p=0.25)",
                        ["closing", "virtual ms/round", "ratio vs wait-all", "load d", "final gap"],
                        [(r["closing"], fmt(r["time_per_round_ms"]), fmt(r["ratio_vs_wait_all"]), r["load_d"],
                          fmt(r["final_gap"])) for r in closing]))
    if testnet:
        console.print(table(f"(5) real job: COCO-EF (cyclic, n=4, s=1, top-k 0.05), {testnet[0]['rounds']} "
                            "rounds on 4 loopback validators",
                            ["straggler", "rounds/s", "gap", "stragglers", "late", "bits up",
                             "sim rounds/s", "real/sim"],
                            [(r["straggler"], fmt(r["rounds_per_s"]), fmt(r["final_gap"]),
                              r["stragglers_seen"], r["late_replies"], r["bits_uplink"],
                              fmt(r["sim_rounds_per_s"]), fmt(r["ratio_real_vs_sim"])) for r in testnet]))
    plot(args.png, curves)
    report = {"quick": args.quick, "seeds": len(seeds), "ps": ps, "methods": methods,
              "compressors": compressors, "speed": speed, "closing": closing, "testnet": testnet,
              "wall_s": time.perf_counter() - started, "png": args.png}
    with open(args.json, "w") as out:
        json.dump(report, out, indent=1, default=str)
    console.print(f"wrote {args.json} and {args.png} in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
