"""`hedgerow sim --protocol heardof`: the scenarios S1-S7 of the Heard-Of spec over seeds.

JSON: `decided` (processes that decided and no run left undecided while live), `undecided` (live
processes some run left undecided), `violations` (each with seed, run label and what broke),
`runs`. Exit 1 on any violation (so `s4-unsafe`, which turns on the unsafe completion rule C2',
exits 1); the failing seed and its replay command are printed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from hedgerow.testnet.sim.heardof_scenarios import SCENARIO_FUNCS, Options, Outcome

SCENARIOS: dict[str, str] = {
    "s1-amp-rounds": "AMP_f -> HO_f: OTR/UV/LV/FloodMin round machines (ho_f mode, n=4, f=1) over the "
    "packet simulator, one node crashed mid-broadcast",
    "s2-ho-oracle": "HoNetwork(RandomHOf(1)) drives timeout-mode round machines; UV under Split({0,1},{2}) "
    "must split its decisions (the checker bites)",
    "s3-colorless": "(f+1)-set agreement over AmpOverHo, n=5, f=2, Silence({3,4}): without C1 3,4 stay "
    "undecided, with C1 all decide",
    "s4-separation": "lattice agreement, f=2: HO_2 with a silenced pair leaves 3,4 undecided; AMP_2 "
    "(slow or crashed 3,4) decides",
    "s4-unsafe": "s4 with the naive completion rule C2': 3 and 4 decide incomparable sets (exits 1)",
    "s5-equivalence": "f=1: lattice agreement over AmpOverHo with C2, n=3 and 4, Silence({2}): all decide",
    "s6-restart": "simulated twin of S6: a node restarts from its HoRecord mid-LastVoting, no "
    "conflicting duplicates",
    "s7-approx": "midpoint approximate agreement, n=4, HO_1, inputs in [0,1000], eps=1: 10 rounds",
}


def run(args: argparse.Namespace) -> int:
    from hedgerow.node.output import console, print_json, table

    options = Options(n=args.nodes, max_rounds=args.steps)
    runs: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    decided_any: set[int] = set()
    undecided_any: set[int] = set()
    started = time.perf_counter()
    failing: list[int] = []
    for seed in args.seed_range:
        outcomes: list[Outcome] = SCENARIO_FUNCS[args.scenario](seed, options)
        for out in outcomes:
            runs.append({"seed": seed, **out.to_json()})
            decided_any |= set(out.decided)
            undecided_any |= set(out.undecided)
            violations += [{"seed": seed, "label": out.label, "what": v} for v in out.violations]
            if out.violations and seed not in failing:
                failing.append(seed)
    summary = {
        "protocol": "heardof", "scenario": args.scenario,
        "seeds": [args.seed_range.start, args.seed_range.stop - 1],
        "decided": sorted(decided_any - undecided_any), "undecided": sorted(undecided_any),
        "violations": violations, "runs": runs, "ok": not violations,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print_json(summary)
    else:
        rows = [(r["seed"], r["label"], r["decided"], r["undecided"], r["crashed"],
                 _short(r["decisions"]), len(r["violations"])) for r in runs]
        console.print(table(f"heardof {args.scenario}", ["seed", "run", "decided", "undecided", "crashed",
                                                          "decisions", "violations"], rows))
        for v in violations[:20]:
            console.print(f"[red]seed={v['seed']} {v['label']}: {v['what']}[/red]")
    for seed in failing:
        _replay_line(args, seed)
    return 1 if violations else 0


def _replay_line(args: argparse.Namespace, seed: int) -> None:
    import sys

    extra = f" --nodes {args.nodes}" if args.nodes else ""
    extra += f" --steps {args.steps}" if args.steps else ""
    print(f"seed={seed} failed; replay: hedgerow sim --protocol heardof --scenario {args.scenario} "
          f"--seeds {seed}{extra}", file=sys.stderr)


def _short(decisions: dict[str, Any]) -> str:
    text = ", ".join(f"{p}:{v}" for p, v in decisions.items())
    return text if len(text) <= 60 else text[:57] + "..."
