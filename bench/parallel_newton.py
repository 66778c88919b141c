"""Parallel-Newton benchmark: the spec's reproductions R1-R4 (parallel-newton.md, sections 9-10).

  .venv/bin/python bench/parallel_newton.py [--quick] [--json F] [--device cpu|cuda] [--out DIR]
                                            [--threads N] [--only R1,R3]

R1 (anchor A1): GRU, B = 16, float32, D in {1, 2, 8}: sequential loop (batched over B) vs DEER and
   quasi-DEER; speed-up beside the DEER paper's V100 speed-up, as a ratio; plus where the time of
   one iteration goes (f, Jacobian, scan, the rest) per method.
R2 (A2): D in {8, 16, 32}: time per iteration, iterations, peak and workspace bytes; DEER/quasi
   memory ratio ~ D.
R3 (A4): MF-RNN D = 32, gain g sweep, float64: LLE and DEER iterations (jump from ~4 to ~T at LLE 0).
R4: stabilisation on the logistic map and MF-RNN g = 3: DEER vs ELK vs quasi-ELK, resets/iterations.

Every ratio is measured in the same run (shared machines drift). PNGs: R1 speed-up vs T, R3
iterations vs LLE. Self-contained: needs only torch, numpy, rich, matplotlib and hedgerow.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from hedgerow.compute.newton import NewtonConfig, estimate_lle, solve
from hedgerow.compute.newton.scan import solve_recurrence
from hedgerow.compute.newton.systems import Problem, make, solver_kwargs

COLUMNS = ["system", "method", "D", "T", "B", "dtype", "device", "iters", "wall_s", "seq_wall_s", "speedup",
           "max_resid", "max_err_vs_seq", "peak_bytes", "workspace_bytes", "resets", "LLE", "anchor_speedup",
           "ratio_to_anchor"]
# A1: DEER repo report, V100, batch 16, float32, GRU: DEER speed-up over the sequential scan (midpoints)
ANCHOR_A1: dict[tuple[int, int], float] = {
    (1, 10_000): 115.0, (1, 100_000): 315.0, (1, 1_000_000): 525.0,
    (2, 10_000): 75.0, (2, 100_000): 74.0,
    (8, 100_000): 25.0, (8, 300_000): 25.0,
    (16, 10_000): 9.0, (16, 100_000): 9.0,
    (32, 10_000): 4.2, (32, 30_000): 4.2,
    (64, 1_000): 1.25, (64, 10_000): 1.25,
}
LLE_STEPS_MAX = 20_000
console = Console()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    _sync(device)
    started = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - started, out


def _lle(problem: Problem, states: torch.Tensor) -> float:
    """LLE along the first sequence's loop trajectory (first LLE_STEPS_MAX steps)."""
    s = states[0] if states.dim() == 3 else states
    u = problem.inputs[0] if problem.inputs.dim() == 3 else problem.inputs
    n = min(int(s.shape[0]), LLE_STEPS_MAX)
    if n < 3:
        return float("nan")
    prev = torch.cat([problem.s0[None], s[: n - 1]])
    _, J = problem.system.f_and_jac(prev, u[:n])
    return estimate_lle(J[1:].double().cpu(), seed=0)[0]


def _peak(device: str) -> int | None:
    return int(torch.cuda.max_memory_allocated()) if device == "cuda" else None


def run_row(problem: Problem, method: str, *, device: str, seq: tuple[float, Any] | None,
            lle: float | None, config: dict[str, Any] | None = None, system: str = "gru") -> dict[str, Any]:
    """One (system, method, D, T, B, dtype, device) row; `seq` = (seconds, loop result)."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cfg = NewtonConfig(method=method, **(config or {}))  # type: ignore[arg-type]
    wall, result = _timed(lambda: solve(problem.system.f, problem.s0, problem.inputs, config=cfg,
                                        init=problem.init, **solver_kwargs(problem.system)), device)
    iters = int(torch.as_tensor(result.iterations).max())
    B = problem.inputs.shape[0] if problem.inputs.dim() == 3 else 1
    T = problem.inputs.shape[-2]
    row: dict[str, Any] = {
        "system": system, "method": method, "D": problem.system.D, "T": T, "B": B,
        "dtype": str(problem.s0.dtype).removeprefix("torch."), "device": device, "iters": iters,
        "wall_s": wall, "seq_wall_s": None, "speedup": None,
        "max_resid": float(torch.as_tensor(result.max_residual).max()), "max_err_vs_seq": None,
        "peak_bytes": _peak(device) or result.workspace_bytes, "workspace_bytes": result.workspace_bytes,
        "resets": result.resets, "LLE": lle, "anchor_speedup": None, "ratio_to_anchor": None,
        "status": result.status,
    }
    if config:
        row["config"] = config
    if seq is not None:
        seq_wall, loop = seq
        row["seq_wall_s"] = seq_wall
        row["speedup"] = seq_wall / wall
        row["max_err_vs_seq"] = float((result.states - loop.states).abs().max())
    if system == "gru" and method == "deer" and B == 16 and row["speedup"] is not None:
        anchor = ANCHOR_A1.get((problem.system.D, T))
        if anchor is not None:
            row["anchor_speedup"] = anchor
            row["ratio_to_anchor"] = row["speedup"] / anchor
    return row


def loop_of(problem: Problem, device: str) -> tuple[float, Any]:
    return _timed(lambda: solve(problem.system.f, problem.s0, problem.inputs,
                                config=NewtonConfig(method="sequential")), device)


def breakdown(problem: Problem, method: str, device: str, wall_s: float, iters: int) -> dict[str, Any]:
    """Where one iteration's time goes: f alone, the Jacobian (fused f+J minus f), the scan, the rest."""
    system = problem.system
    U = problem.inputs.transpose(0, 1).contiguous()
    T, B, _ = U.shape
    D = system.D
    S = torch.zeros((T, B, D), dtype=problem.s0.dtype, device=device) + 0.1
    rows = S.reshape(-1, D)
    Ur = U.reshape(T * B, -1)
    chunk = max(256, (1 << 17) // (D * D if method == "deer" else D)) if device == "cpu" else rows.shape[0]

    def chunked(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
        for i in range(0, rows.shape[0], chunk):
            fn(rows[i : i + chunk], Ur[i : i + chunk])

    t_f, _ = _timed(lambda: chunked(system.f), device)
    fj = system.f_and_jac if method == "deer" else system.f_and_jac_diag
    t_fj, _ = _timed(lambda: chunked(fj), device)
    shape = (T, B, D, D) if method == "deer" else (T, B, D)
    A = 0.5 * torch.rand(shape, dtype=S.dtype, device=device) / D
    t_scan, _ = _timed(lambda: solve_recurrence(A, S, diag=method != "deer"), device)
    per_iter = wall_s / max(iters, 1)
    return {"method": method, "D": D, "T": T, "B": B, "iter_s": per_iter, "f_s": t_f,
            "jacobian_s": max(t_fj - t_f, 0.0), "scan_s": t_scan,
            "rest_s": max(per_iter - t_fj - t_scan, 0.0)}


def r1(args: argparse.Namespace, device: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    Ts = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    rows, parts = [], []
    for D in (1, 2, 8):
        for T in Ts:
            problem = make("gru", T=T, B=16, D=D, seed=1, dtype=torch.float32, device=device)
            seq = loop_of(problem, device)
            lle = _lle(problem, seq[1].states)
            for method in ("deer", "quasi_deer"):
                row = run_row(problem, method, device=device, seq=seq, lle=lle)
                rows.append(row)
                _progress(row)
                if Ts[-1] == T:
                    parts.append(breakdown(problem, method, device, row["wall_s"], row["iters"]))
    return rows, parts


def r2(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    Ts = [3_000] if args.quick else [30_000, 100_000]
    Ds = (8, 16) if args.quick else (8, 16, 32)
    B = 2
    rows = []
    for D in Ds:
        for T in Ts:
            problem = make("gru", T=T, B=B, D=D, seed=1, dtype=torch.float32, device=device)
            seq = loop_of(problem, device)
            for method in ("deer", "quasi_deer"):
                if method == "deer" and device == "cpu" and args.mem_cap_bytes < 3 * B * T * D * D * 4:
                    rows.append({"system": "gru", "method": method, "D": D, "T": T, "B": B,
                                 "skipped": "memory"})
                    continue
                row = run_row(problem, method, device=device, seq=seq, lle=None)
                row["iter_s"] = row["wall_s"] / max(row["iters"], 1)
                rows.append(row)
                _progress(row)
    return rows


def r3(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    Ts = [64, 256] if args.quick else [64, 256, 1024]
    rows = []
    for g in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        for T in Ts:
            problem = make("mfrnn", T=T, seed=0, g=g, dtype=torch.float64, device=device)
            seq = loop_of(problem, device)
            lle = _lle(problem, seq[1].states)
            row = run_row(problem, "deer", device=device, seq=seq, lle=lle, system="mfrnn")
            row["g"] = g
            rows.append(row)
            _progress(row)
    return rows


def r4(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    rows = []
    cases = [("logistic", 256 if args.quick else 1024, 0.5), ("mfrnn", 64 if args.quick else 256, 3.0)]
    for name, T, g in cases:
        problem = make(name, T=T, seed=0, g=g, dtype=torch.float64, device=device)
        seq = loop_of(problem, device)
        lle = _lle(problem, seq[1].states)
        runs: list[tuple[str, dict[str, Any]]] = [("deer", {})]
        for lam in (1e-2, 1.0, 100.0):
            runs += [("elk", {"lam": lam}), ("quasi_elk", {"lam": lam})]
        for method, config in runs:
            if method == "elk" and name == "mfrnn" and args.quick and config["lam"] != 1.0:
                continue  # dense ELK at D = 32 is the slow corner: one λ in --quick
            row = run_row(problem, method, device=device, seq=seq, lle=lle, config=config, system=name)
            rows.append(row)
            _progress(row)
    return rows


def _progress(row: dict[str, Any]) -> None:
    speed = f" x{row['speedup']:.2f}" if row.get("speedup") else ""
    console.print(f"[dim]{row['system']} {row['method']} {row.get('config', '')} D={row['D']} "
                  f"T={row['T']} B={row['B']}: {row['iters']} iters, {row['wall_s']:.3f}s{speed}, "
                  f"resets {row['resets']}[/dim]")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}"
    return str(value)


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)


def plots(out: Path, r1_rows: list[dict[str, Any]], r3_rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if r1_rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        for D in sorted({r["D"] for r in r1_rows}):
            for method, style in (("deer", "-o"), ("quasi_deer", "--s")):
                pts = sorted((r["T"], r["speedup"]) for r in r1_rows if r["D"] == D and r["method"] == method)
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, label=f"{method} D={D}")
        anchors = sorted((T, s) for (D, T), s in ANCHOR_A1.items() if D in (1, 2, 8))
        ax.scatter([a[0] for a in anchors], [a[1] for a in anchors], marker="x", color="k",
                   label="A1 DEER, V100 (D=1,2,8)")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="T", ylabel="speed-up over batched loop",
               title=f"R1: GRU, B=16, float32 ({r1_rows[0]['device']})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / "r1_speedup_vs_T.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    if r3_rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        for T in sorted({r["T"] for r in r3_rows}):
            pts = sorted((r["LLE"], r["iters"]) for r in r3_rows if r["T"] == T)
            ax.plot(*zip(*pts, strict=True), "o-", label=f"T={T}")
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set(yscale="log", xlabel="LLE (estimated)", ylabel="DEER iterations",
               title="R3: MF-RNN D=32, float64, tol 1e-10")
        ax.legend()
        fig.tight_layout()
        path = out / "r3_iterations_vs_lle.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI sizes (about a minute on 2 idle cores)")
    parser.add_argument("--json", type=Path, default=None, help="write all rows as JSON here")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=None, help="directory for the PNGs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--only", default="R1,R2,R3,R4", help="comma-separated subset of R1,R2,R3,R4")
    parser.add_argument("--mem-cap-bytes", type=int, default=4 << 30, help="skip CPU DEER rows above this")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench: error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    only = {part.strip().upper() for part in args.only.split(",")}
    device = args.device
    console.print(f"parallel_newton bench: device={device} threads={torch.get_num_threads()} "
                  f"quick={args.quick} torch={torch.__version__}")
    report: dict[str, Any] = {"device": device, "threads": torch.get_num_threads(), "quick": args.quick,
                              "torch": torch.__version__}
    if device == "cuda":
        report["gpu"] = torch.cuda.get_device_name()
    r1_rows: list[dict[str, Any]] = []
    r3_rows: list[dict[str, Any]] = []
    if "R1" in only:
        r1_rows, parts = r1(args, device)
        print_table("R1 (A1): GRU, B=16, float32 - parallel vs the loop batched over B", r1_rows, COLUMNS)
        print_table("R1: where one iteration's time goes (seconds)", parts,
                    ["method", "D", "T", "B", "iter_s", "f_s", "jacobian_s", "scan_s", "rest_s"])
        report["R1"], report["R1_breakdown"] = r1_rows, parts
    if "R2" in only:
        rows = r2(args, device)
        print_table("R2 (A2): time per iteration and memory", rows,
                    ["method", "D", "T", "B", "iters", "iter_s", "wall_s", "speedup", "peak_bytes",
                     "workspace_bytes", "skipped"])
        report["R2"] = rows
        report["R2_memory_ratio"] = _memory_ratios(rows)
    if "R3" in only:
        r3_rows = r3(args, device)
        print_table("R3 (A4): MF-RNN D=32 - DEER iterations vs LLE", r3_rows,
                    ["g", "T", "LLE", "iters", "resets", "max_resid", "wall_s"])
        report["R3"] = r3_rows
    if "R4" in only:
        rows = r4(args, device)
        print_table("R4: stabilisation - resets and iterations", rows,
                    ["system", "method", "config", "T", "iters", "resets", "status", "max_resid", "wall_s"])
        report["R4"] = rows
    if args.out is not None:
        report["pngs"] = plots(args.out, r1_rows, r3_rows)
        console.print(f"PNGs: {', '.join(report['pngs'])}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        console.print(f"JSON: {args.json}")
    return 0


def _memory_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["method"] != "deer" or "skipped" in row:
            continue
        quasi = next((r for r in rows if r["method"] == "quasi_deer" and r["D"] == row["D"]
                      and r["T"] == row["T"]), None)
        if quasi is not None:
            out.append({"D": row["D"], "T": row["T"],
                        "deer_over_quasi_workspace": row["workspace_bytes"] / quasi["workspace_bytes"],
                        "deer_over_quasi_peak": row["peak_bytes"] / quasi["peak_bytes"]})
    return out


if __name__ == "__main__":
    sys.exit(main())
