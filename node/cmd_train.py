"""`hedgerow job train`: gradient-coded training (COCO-EF and its baselines) in the seeded simulator.

`--dir TESTNET_DIR` / `--home DIR` run the job across real nodes' compute workers, the coordinator
in this process (`hedgerow.node.job_client`); `--sim` runs it in the seeded simulator.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError, VerdictFailure
from hedgerow.node.output import console, print_json, progress, table

CODES = {"cyclic": "cyclic_ones", "cyclic_ones": "cyclic_ones", "cyclic_mds": "cyclic_mds",
         "cyclic_random": "cyclic_random", "frac": "frac", "none": "cyclic_ones"}
METHOD_CHOICES = ("custom", "cocoef", "gc", "gc_randk", "gc_biased", "ef_nogc", "uncoded", "uncoded_wait")


def register(kinds: Any) -> None:
    parser = kinds.add_parser(
        "train",
        help="gradient-coded training with COCO-EF (seeded simulator)",
        description="Train with gradient coding: every partition sits on s+1 workers, each worker sends "
        "one compressed coded gradient with error feedback, the coordinator aggregates the replies "
        "received by the deadline. Exit 1 if the job aborted.",
        epilog="example: hedgerow job train --code cyclic --n-workers 4 --stragglers 1 "
        "--compressor topk:0.05 --rounds 200 --sim --seed 0 --plot loss.png",
    )
    parser.add_argument("--code", default="cyclic", choices=sorted(CODES),
                        help="gradient code: cyclic (= cyclic_ones, COCO-EF), cyclic_mds, cyclic_random, "
                        "frac, or none (uncoded, s=0)")
    parser.add_argument("--mode", choices=("exact", "stochastic"), default=None,
                        help="decoding: exact (any n-s replies) or stochastic (fixed unbiased weights); "
                        "default: exact for cyclic_mds/cyclic_random, else stochastic")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="custom",
                        help="a preset of spec 5.9 (overrides --code/--mode/--no-ef)")
    parser.add_argument("--n-workers", type=int, default=4, help="workers n (default 4)")
    parser.add_argument("--stragglers", type=int, default=1, help="straggler budget s (default 1)")
    parser.add_argument("--compressor", default="topk:0.05",
                        help="identity | topk:RATIO | randk:RATIO | sign (default topk:0.05)")
    parser.add_argument("--no-ef", action="store_true", help="turn error feedback off")
    parser.add_argument("--rounds", type=int, default=300, help="training rounds (default 300)")
    parser.add_argument("--eta", type=float, default=None, help="step size (default 1.0 logreg, 0.1 mlp)")
    parser.add_argument("--p", type=float, default=0.25,
                        help="straggler probability, assumed and injected (default 0.25)")
    parser.add_argument("--straggler-model", choices=("latency", "bernoulli", "none"), default="latency",
                        help="simulated stragglers (default latency: d*tau*(1+Exp) + bits/bw, slow w.p. p)")
    parser.add_argument("--kill", default="", help="comma-separated workers dead for the whole job")
    parser.add_argument("--problem", choices=("logreg", "mlp"), default="logreg",
                        help="synthetic non-iid logistic regression, or an MLP on a Gaussian mixture")
    parser.add_argument("--wire", choices=("f32", "f64"), default="f32", help="wire dtype (default f32)")
    parser.add_argument("--data-seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--sim", action="store_true", help="run in the seeded simulator")
    parser.add_argument("--dir", type=Path, default=None,
                        help="run across the validators of this testnet (their compute workers)")
    parser.add_argument("--home", type=Path, default=None, help="run across this node and its peers")
    parser.add_argument("--deadline", type=float, default=0.5,
                        help="--dir/--home: seconds a round waits for stragglers (default 0.5)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="--dir/--home: seconds to connect")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (stragglers, job)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.add_argument("--plot", metavar="FILE.png", default=None, help="write the loss curves as PNG")
    parser.set_defaults(handler=run_train)


def parse_compressor(text: str) -> tuple[str, float]:
    name, _, ratio_text = text.partition(":")
    if name in ("identity", "sign") and not ratio_text:
        return name, 1.0 if name == "identity" else 0.05
    if name not in ("topk", "randk") or not ratio_text:
        raise UsageError(f"--compressor {text!r}: want identity, sign, topk:RATIO or randk:RATIO")
    try:
        ratio = float(ratio_text)
    except ValueError:
        raise UsageError(f"--compressor {text!r}: RATIO must be a number in (0, 1]") from None
    if not 0.0 < ratio <= 1.0:
        raise UsageError(f"--compressor {text!r}: RATIO must be in (0, 1]")
    return name, ratio


def _check_args(args: argparse.Namespace) -> list[int]:
    if not args.sim and args.dir is None and args.home is None:
        raise UsageError("say where to train: --sim (seeded simulator), --dir TESTNET_DIR or --home DIR")
    if args.sim and (args.dir is not None or args.home is not None):
        raise UsageError("--sim runs in this process; drop --dir/--home")
    if not args.sim and args.kill:
        raise UsageError("--kill is for --sim; on a testnet kill a node (hedgerow testnet kill NAME)")
    if args.n_workers < 2:
        raise UsageError(f"--n-workers must be at least 2, got {args.n_workers}")
    if not 0 <= args.stragglers < args.n_workers:
        raise UsageError(f"--stragglers must be in 0..n-1, got {args.stragglers}")
    if args.rounds < 1:
        raise UsageError(f"--rounds must be at least 1, got {args.rounds}")
    if not 0.0 <= args.p < 1.0:
        raise UsageError(f"--p must be in [0, 1), got {args.p}")
    if args.eta is not None and not (args.eta > 0 and math.isfinite(args.eta)):
        raise UsageError(f"--eta must be positive, got {args.eta}")
    try:
        killed = [int(x) for x in args.kill.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--kill {args.kill!r}: want comma-separated worker ids") from None
    if any(not 0 <= k < args.n_workers for k in killed):
        raise UsageError(f"--kill {args.kill!r}: worker ids must be in 0..{args.n_workers - 1}")
    return killed


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """(TrainSetup, SimConfig) from the parsed arguments; UsageError on bad input."""
    from dataclasses import replace

    from hedgerow.compute.gradcoding.codes import ConfigError as GcConfigError
    from hedgerow.compute.gradcoding.driver import TrainSetup, method_setup
    from hedgerow.compute.gradcoding.messages import CompressorSpec
    from hedgerow.compute.gradcoding.sim import SimConfig

    killed = _check_args(args)
    name, ratio = parse_compressor(args.compressor)
    compressor = CompressorSpec(name, ratio)
    scheme = CODES[args.code]
    s = 0 if args.code == "none" else args.stragglers
    mode = args.mode or ("exact" if scheme in ("cyclic_mds", "cyclic_random") else "stochastic")
    mlp = args.problem == "mlp"
    setup = TrainSetup(n=args.n_workers, s=s, scheme=scheme, mode=mode, compressor=compressor,
                       error_feedback=not args.no_ef and name != "identity", rounds=args.rounds,
                       eta=args.eta if args.eta is not None else (0.1 if mlp else 1.0), p=args.p,
                       wire_dtype=args.wire, problem=args.problem, data_seed=args.data_seed,
                       data_dim=64 if mlp else 100, m=100 if mlp else 500, job_seed=args.seed,
                       method=args.method if args.method != "custom" else f"{args.code}/{mode}")
    try:
        if args.method != "custom":
            setup = replace(method_setup(args.method, setup, compressor), p=args.p)
        setup.job_spec()  # validates the code (frac divisibility, cyclic_mds parity, ...)
    except GcConfigError as error:
        raise UsageError(str(error)) from None
    sim = SimConfig(straggler=args.straggler_model, p=args.p, straggler_seed=args.seed,
                    killed=frozenset(killed))
    return setup, sim


def run_train(args: argparse.Namespace) -> int:
    from hedgerow.compute.gradcoding.codes import ConfigError as GcConfigError
    from hedgerow.compute.gradcoding.driver import train

    if not args.sim:
        from hedgerow.node.job_client import train_cli

        return train_cli(args)
    setup, sim = build(args)
    stragglers = [0]
    with progress(quiet=args.json) as bar:
        task = bar.add_task("training", total=setup.rounds)

        def on_progress(record: Any, loss: float, bits: int) -> None:
            stragglers[0] += setup.n - len(record.responders)
            bar.update(task, completed=record.round + 1, description=(
                f"round {record.round + 1} loss {loss:.5f} bits {bits:,} stragglers {stragglers[0]}"))

        try:
            result = train(setup, sim, on_progress=on_progress)
        except GcConfigError as error:
            raise UsageError(str(error)) from None
    summary = result.summary()
    if args.plot:
        _plot(args.plot, result)
        summary["plot"] = args.plot
    return print_summary(summary, "gradient-coded training", as_json=args.json)


def print_summary(summary: dict[str, Any], title: str, *, as_json: bool) -> int:
    """Print a training summary (JSON or a field/value table); exit 0, or VerdictFailure if aborted."""
    if as_json:
        print_json(summary)
    else:
        rows = [(key, _fmt(value)) for key, value in summary.items()]
        console.print(table(title, ["field", "value"], rows))
    if summary["aborted"]:
        raise VerdictFailure(f"job aborted: {summary['aborted']}")
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _plot(path: str, result: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gap = result.f_star is not None
    ys = [loss - result.f_star for loss in result.losses] if gap else result.losses
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(range(1, len(ys) + 1), ys)
    left.set_xlabel("round")
    right.plot(result.bits_cumulative, ys)
    right.set_xlabel("uplink bits (aggregated)")
    for axis in (left, right):
        axis.set_yscale("log")
        axis.set_ylabel("F(w) - F*" if gap else "training loss")
        axis.grid(True, alpha=0.3)
    fig.suptitle(f"{result.setup.method}: n={result.setup.n}, s={result.setup.s}, "
                 f"{result.setup.compressor.name}")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as error:
        raise UsageError(f"--plot {path!r}: {error}") from None
    finally:
        plt.close(fig)
