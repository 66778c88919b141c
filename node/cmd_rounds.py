"""`hedgerow rounds`: Heard-Of round algorithms, exhaustively checked or run under the simulator.

    hedgerow rounds check --algorithm uv --n 3 --predicate any      # exits 1: the split violation
    hedgerow rounds --algorithm otr --predicate hof --mode ho_f --inputs 0,1,1,0 --sim --seeds 0-9
    hedgerow rounds --algorithm lv --predicate hof --mode ho_f --inputs 0,1,1,0 --dir ./net   # real nodes
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError, VerdictFailure
from hedgerow.node.output import console, parse_range, print_json, table

CHECK_ALGORITHMS = ("otr", "uv", "lv", "floodmin")
RUN_ALGORITHMS = ("otr", "uv", "lv", "floodmin", "approx")
CHECK_PREDICATES = ("default", "any", "nosplit", "hof")


def register(verbs: Any) -> None:
    parser = verbs.add_parser(
        "rounds",
        help="Heard-Of rounds: exhaustive checker (`check`) and simulated runs",
        description="`rounds check` explores every HO assignment breadth-first over global configurations "
        "and exits 1 on a violation (printing the HO sets that cause it). Without `check`, runs an algorithm "
        "under the seeded simulator (--sim): mode ho_f = round machines over an asynchronous network "
        "(AMP_f -> HO_f), mode timeout = HO sets drawn by an oracle meeting --predicate.",
        epilog="examples:\n  hedgerow rounds check --algorithm otr --n 4 --values 3\n"
        "  hedgerow rounds check --algorithm uv --n 3 --predicate any   # finds the agreement violation\n"
        "  hedgerow rounds --algorithm lv --predicate hof --mode ho_f --inputs 0,1,1,0 --sim --seeds 0-9",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=("run", "check"), default="run",
                        help="`check` (exhaustive) or `run` (default)")
    parser.add_argument("--algorithm", required=True, choices=RUN_ALGORITHMS, help="library algorithm")
    parser.add_argument("--predicate", default="default",
                        help="check: any|nosplit|hof (default: nosplit for uv, any otherwise); "
                        "run: any|hof|nosplit|otr|lv|unif|complete (default hof)")
    parser.add_argument("--n", type=int, default=3, help="check: number of processes (default 3)")
    parser.add_argument("--f", type=int, default=1, help="failures tolerated (default 1)")
    parser.add_argument("--values", type=int, default=2, help="check: input values {0..K-1} (default 2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="check: horizon in rounds (default: fixpoint; LV 16 for n=3, 12 otherwise)")
    parser.add_argument("--self-omission", action="store_true",
                        help="check: allow p to miss its own message (default: p in HO(p,r))")
    parser.add_argument("--mode", choices=("ho_f", "timeout"), default="ho_f", help="run: round mode")
    parser.add_argument("--inputs", default=None, help="run: comma-separated integer inputs, one per process")
    parser.add_argument("--sim", action="store_true", help="run under the seeded packet simulator")
    parser.add_argument("--seeds", default="0", help="run: seeds N or A-B inclusive")
    parser.add_argument("--crash", type=int, default=None, help="run: crash this process mid-broadcast")
    parser.add_argument("--dir", type=Path, default=None,
                        help="run: one instance on every validator of this testnet (real network)")
    parser.add_argument("--home", type=Path, default=None, help="run: on this node and its peers")
    parser.add_argument("--instance", type=int, default=None, help="run --dir/--home: instance id (random)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="run --dir/--home: seconds to wait for the decisions (default 30)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _check(args)
    return _run(args)


def _check(args: argparse.Namespace) -> int:
    from hedgerow.protocols.heardof import checker
    from hedgerow.protocols.heardof.algorithms import make_algorithm

    if args.algorithm not in CHECK_ALGORITHMS:
        raise UsageError(f"rounds check supports {', '.join(CHECK_ALGORITHMS)}")
    if not 2 <= args.n <= 5 or not 1 <= args.values <= 4:
        raise UsageError("rounds check wants 2 <= --n <= 5 and 1 <= --values <= 4 (the state space explodes)")
    predicate = args.predicate
    if predicate == "default":
        predicate = "nosplit" if args.algorithm == "uv" else "any"
    if predicate not in CHECK_PREDICATES:
        raise UsageError(f"rounds check predicates: any, nosplit, hof (got {predicate!r})")
    n = args.n
    alg = make_algorithm(args.algorithm, n)
    horizon = args.rounds
    if args.algorithm == "lv" and horizon is None:
        horizon = 16 if n == 3 else 12
    k = 1
    if args.algorithm == "floodmin":
        inputs = [tuple(p) for p in itertools.permutations(range(n))]
        k = args.f + 1
    else:
        inputs = checker.binary_inputs(n, args.values)
    started = time.perf_counter()
    result = checker.check(
        alg, n, inputs, self_heard=not args.self_omission, f=args.f if predicate == "hof" else None,
        round_filter=checker.nosplit if predicate == "nosplit" else None, horizon=horizon, k=k,
    )
    wall_s = time.perf_counter() - started
    summary = {
        "algorithm": args.algorithm, "n": n, "predicate": predicate, "values": args.values,
        "self_heard": not args.self_omission, "horizon": horizon, "configurations": result.configurations,
        "layer_sizes": result.layer_sizes, "max_distinct_decisions": result.max_distinct_decisions,
        "violations": [v.to_json() for v in result.violations[:20]],
        "violation_count": len(result.violations),
        "first_violation_round": min((v.round for v in result.violations), default=None),
        "wall_s": round(wall_s, 3),
    }
    if args.json:
        print_json(summary)
    else:
        console.print(table(f"rounds check {args.algorithm} n={n} predicate={predicate}", ["what", "value"], [
            ("configurations explored", result.configurations), ("layers", result.layer_sizes[:20]),
            ("max distinct decisions", result.max_distinct_decisions),
            ("violations", len(result.violations)), ("wall time", f"{wall_s:.3f} s"),
        ]))
        for v in result.violations[:5]:
            sets = " | ".join("(" + ", ".join(str(sorted(h)) for h in a) + ")" for a in v.ho_sets)
            console.print(f"[red]{v.kind} at round {v.round}: inputs {list(v.inputs)}, HO sets per round "
                          f"{sets} -> decisions {list(v.decisions)}[/red]")
    return 1 if result.violations else 0


def _run(args: argparse.Namespace) -> int:
    from hedgerow.testnet.sim.heardof_runner import run_once

    if not args.sim:
        if args.dir is None and args.home is None:
            raise UsageError("say where to run: --sim (seeded simulator) or --dir TESTNET_DIR / --home DIR")
        from hedgerow.node.job_client import rounds_cli

        return rounds_cli(args)
    if not args.inputs:
        raise UsageError("--inputs is required, e.g. --inputs 0,1,1,0")
    try:
        inputs = [int(x) for x in args.inputs.split(",")]
        seeds = parse_range(args.seeds)
    except ValueError as error:
        raise UsageError(str(error)) from None
    n = len(inputs)
    if args.mode == "ho_f" and n <= 2 * args.f:
        raise UsageError(f"ho_f mode needs n > 2f (n={n}, f={args.f})")
    predicate = "hof" if args.predicate == "default" else args.predicate
    runs = []
    for seed in seeds:
        try:
            stats = run_once(args.algorithm, inputs, mode=args.mode, predicate=predicate, seed=seed, f=args.f,
                             crash=args.crash)
        except ValueError as error:
            raise UsageError(str(error)) from None
        runs.append(stats)
    violations = [{"seed": r.seed, "what": v} for r in runs for v in r.violations]
    if args.json:
        print_json({"algorithm": args.algorithm, "mode": args.mode, "predicate": predicate, "inputs": inputs,
                    "runs": [r.to_json() for r in runs], "violations": violations})
    else:
        console.print(table(f"rounds {args.algorithm} mode={args.mode} predicate={predicate}",
                            ["seed", "decisions", "undecided", "rounds", "mean |HO|", "predicate held",
                             "violations"],
                            [(r.seed, r.decisions, r.undecided, r.rounds, f"{r.mean_ho:.2f}",
                              r.predicate_held, len(r.violations)) for r in runs]))
    for item in violations:
        console.print(f"seed={item['seed']}: {item['what']}; replay: hedgerow rounds --algorithm "
                      f"{args.algorithm} --predicate {predicate} --mode {args.mode} --inputs {args.inputs} "
                      f"--sim --seeds {item['seed']}", style="red")
    if violations:
        raise VerdictFailure(f"{len(violations)} violation(s)")
    return 0
