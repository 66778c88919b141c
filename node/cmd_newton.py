"""`hedgerow job newton`: evaluate a registry recurrence by parallel Newton iterations.

The job goes through the real protocol path in process: it is built as a `NewtonJob`, served by
the worker function (`serve`, on CUDA when available), and accepted only after the coordinator's
residual re-check. `--check` also runs the sequential loop (batched over B) for the error and the
speed-up. `--dir TESTNET_DIR` / `--home DIR` send it to a node's compute worker over the network
(`hedgerow.node.job_client`).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError, VerdictFailure
from hedgerow.node.output import console, print_json, progress, table

SYSTEMS = ("gru", "mfrnn", "logistic", "ode_euler")
METHODS = ("deer", "quasi_deer", "elk", "quasi_elk", "picard", "jacobi", "sequential")
LOCAL_ELEMS_MAX = 1 << 40

EXAMPLE = """example:
  hedgerow job newton --system gru --T 100000 --D 8 --method quasi_deer --batch 16 --dtype float32 --check
"""


def register(kinds: Any) -> None:
    parser = kinds.add_parser("newton", help="evaluate a long recurrence by parallel Newton (DEER, ELK, ...)",
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", required=True, help=f"registry system: {', '.join(SYSTEMS)}")
    parser.add_argument("--T", type=int, required=True, help="sequence length (>= 1)")
    parser.add_argument("--D", type=int, default=None, help="state size (default: the system's)")
    parser.add_argument("--method", default="quasi_deer", help=f"one of {', '.join(METHODS)}")
    parser.add_argument("--batch", type=int, default=1, help="sequences solved together (B)")
    parser.add_argument("--dtype", default=None, help="float32 | float64 (default: f32 on CUDA, f64 on CPU)")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the system's parameters and inputs")
    parser.add_argument("--g", type=float, default=0.5, help="MF-RNN gain (LLE crosses 0 near g = 1.5)")
    parser.add_argument("--lam", type=float, default=1e-2, help="ELK damping λ")
    parser.add_argument("--tol", type=float, default=None, help="max|residual| stopping tolerance")
    parser.add_argument("--max-iter", type=int, default=None, help="linear solves at most (default T + 1)")
    parser.add_argument("--local", action="store_true", help="run in this process (the default)")
    parser.add_argument("--home", type=Path, default=None, help="send the job to this node's compute worker "
                        "(reassigned to its peers on a crash)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="send the job to a compute worker of this testnet")
    parser.add_argument("--deadline", type=float, default=600.0,
                        help="--home/--dir: seconds before reassigning")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="--home/--dir: seconds to connect")
    parser.add_argument("--check", action="store_true", help="also run the sequential loop and compare")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=handle)


def _validate(args: argparse.Namespace) -> tuple[str, str]:
    if args.system not in SYSTEMS:
        raise UsageError(f"unknown --system {args.system!r}; choose one of {', '.join(SYSTEMS)}")
    if args.method not in METHODS:
        raise UsageError(f"unknown --method {args.method!r}; choose one of {', '.join(METHODS)}")
    if args.T < 1 or args.batch < 1 or (args.D is not None and args.D < 1):
        raise UsageError(f"--T, --batch and --D must be >= 1 "
                         f"(got T={args.T}, batch={args.batch}, D={args.D})")
    if args.system == "logistic" and args.D not in (None, 1):
        raise UsageError(f"the logistic map has D = 1, got --D {args.D}")
    if args.tol is not None and not (args.tol > 0 and math.isfinite(args.tol)):
        raise UsageError(f"--tol must be a positive number, got {args.tol}")
    if args.max_iter is not None and args.max_iter < 1:
        raise UsageError(f"--max-iter must be >= 1, got {args.max_iter}")
    if not (args.lam >= 0 and math.isfinite(args.lam)):
        raise UsageError(f"--lam must be >= 0, got {args.lam}")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        here = "cpu, cuda" if torch.cuda.is_available() else "cpu"
        raise UsageError(f"--device {device!r} is not available here ({here})")
    dtype = args.dtype or ("float32" if device == "cuda" else "float64")
    if dtype not in ("float32", "float64"):
        raise UsageError(f"--dtype must be float32 or float64, got {dtype!r}")
    return device, dtype


def handle(args: argparse.Namespace) -> int:
    device, dtype_name = _validate(args)
    if args.home is not None or args.dir is not None:
        from hedgerow.node.job_client import newton_cli

        return newton_cli(args, dtype_name)
    import torch

    from hedgerow.compute.newton import NewtonConfig, NewtonCoordinator, NewtonReply, serve, solve
    from hedgerow.compute.newton.jobs import from_wire_tensor, make_job
    from hedgerow.compute.newton.systems import make
    from hedgerow.protocols.actions import Deliver, Evidence

    dtype = getattr(torch, dtype_name)
    problem = make(args.system, T=args.T, B=args.batch, D=args.D, seed=args.seed, g=args.g, dtype=dtype,
                   device=device)
    config = NewtonConfig(method=args.method, lam=args.lam, tol=args.tol, max_iter=args.max_iter)
    job = make_job(bytes(16), problem.system, problem.s0, problem.inputs, config, deadline_ms=3_600_000)
    with progress(quiet=args.json) as bar:
        task = bar.add_task(f"{args.method} max|r| = ?", total=args.T + 1)

        def on_iteration(iteration: int, max_residual: float) -> None:
            bar.update(task, completed=iteration, description=f"{args.method} max|r| = {max_residual:.2e}")

        reply = serve(job, worker=b"local", device=device, max_job_elems=LOCAL_ELEMS_MAX,
                      clock=time.perf_counter, on_iteration=on_iteration)
    if not isinstance(reply, NewtonReply):
        raise UsageError(f"job rejected: {reply.reason}")
    coordinator = NewtonCoordinator([0], max_job_elems=LOCAL_ELEMS_MAX)
    coordinator.submit(job, 0.0)
    actions = coordinator.on_message(0, reply, 0.0)
    delivered = [a.value for a in actions if isinstance(a, Deliver) and a.value.ok]
    faults = [a.proof.reason for a in actions if isinstance(a, Evidence)]
    verified, reason = bool(delivered), "; ".join(faults)
    report: dict[str, Any] = {
        "system": args.system, "method": args.method, "T": args.T, "D": problem.system.D, "batch": args.batch,
        "dtype": dtype_name, "device": device, "status": reply.status,
        "iterations": max(reply.iterations), "iterations_per_sequence": list(reply.iterations),
        "max_residual": max(reply.max_residual), "wall_s": reply.wall_ms / 1000.0,
        "verified": verified, "verify_reason": reason,
    }
    if args.check:
        started = time.perf_counter()
        loop = solve(problem.system.f, problem.s0, problem.inputs, config=NewtonConfig(method="sequential"))
        seq_wall = time.perf_counter() - started
        assert reply.states is not None
        states = from_wire_tensor(reply.states, device=device)
        report["seq_wall_s"] = seq_wall
        report["max_err_vs_seq"] = float((states - loop.states).abs().max())
        report["speedup"] = seq_wall / max(report["wall_s"], 1e-9)
    _print(report, as_json=args.json)
    if reply.status != "converged" or not verified:
        raise VerdictFailure(f"job {reply.status}, verified={verified} {reason}".strip())
    return 0


def _print(report: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    rows = [(k, f"{v:.3e}" if isinstance(v, float) else v) for k, v in report.items()
            if k != "iterations_per_sequence"]
    console.print(table("hedgerow job newton", ["field", "value"], rows))
