"""`hedgerow testnet scenario FILE... --dir DIR [--json] [--up] [--scale X]` (a `testnet` sub-action,
listed in `EXTRA_SUBCOMMANDS` of node/cmd_testnet.py). Exit 1 when any scenario found a violation."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

EXAMPLE = """examples:
  hedgerow testnet up -n 4 --app grassroots --dir ./net
  hedgerow testnet scenario testnet/scenarios/crash-leader.toml --dir ./net
  hedgerow testnet scenario village --dir ./net    # the village-market month, live vs direct run
  hedgerow testnet scenario testnet/scenarios/*.toml --dir ./fresh --up --json
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "scenario",
        help="run scenario files (load + perturbations + invariant checks)",
        description="Run each scenario file against the testnet in --dir: a grassroots "
        "load, a timeline of perturbations on the real processes, then the invariant "
        "checks. Exit 1 when any scenario found a violation.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="a scenario file, or a grassroots script's name (village, play-2 ... play-11)",
    )
    parser.add_argument("--dir", type=Path, required=True, help="the testnet directory")
    parser.add_argument(
        "--up",
        action="store_true",
        help="create the testnet in --dir from the first scenario's [testnet] table, "
        "and take it down (leaving the directory) at the end",
    )
    parser.add_argument(
        "--netns",
        action="store_true",
        help="with --up: each node in its own network namespace (root; iproute2)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="stretch (>1) or compress (<1) the timelines"
    )
    parser.add_argument("--keep-faults", action="store_true", help="do not restore the testnet after each")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=cmd_scenario)


def load(path: Path) -> Any:
    """A scenario file, or a grassroots script's name (`village`, `play-4b`, ...) when no such file
    exists: that script against the live chain, its end state compared with the direct run's."""
    from hedgerow.testnet.scenario_file import load_scenario, script_scenario
    from hedgerow.testnet.sim.grassroots_campaign import SCRIPTS

    if not path.exists() and str(path) in SCRIPTS:
        return script_scenario(str(path))
    return load_scenario(path)


def print_script(script: dict[str, Any] | None) -> None:
    """A script scenario's live end state (the spec's table) and whether it equals the direct run's."""
    from hedgerow.node.output import console
    from hedgerow.testnet.sim.grassroots_campaign import print_report

    if script is None or "end_state" not in script:
        return
    print_report(script["name"], {**script["end_state"], "now": script["end_height"]}, as_json=False)
    same = "equals" if script["matches_direct"] else "[red]differs from[/red]"
    console.print(
        f"live {script['name']}: node {script['node']}, stretch {script['stretch']} (day d = height "
        f"{script['base']} + {script['stretch']}*5d), waves per act {script['waves']}, fewest heights "
        f"left in a day {script['day_slack_heights']}, {script['took_s']:.1f} s; the end state {same} "
        "the direct run's (hedgerow sim --protocol grassroots --scenario "
        f"{script['name']})"
    )


def cmd_scenario(args: argparse.Namespace) -> int:
    from hedgerow.node.errors import UsageError, VerdictFailure
    from hedgerow.node.output import console, print_json
    from hedgerow.testnet.launcher import WaitTimeout
    from hedgerow.testnet.netns import open_testnet
    from hedgerow.testnet.report import print_result, summary_table
    from hedgerow.testnet.scenario import create_for, run_scenario

    if not args.scale > 0:
        raise UsageError("--scale must be positive")
    if args.netns and not args.up:
        raise UsageError(
            "--netns goes with --up (a testnet created in namespaces records it in DIR/netns.json)"
        )
    scenarios = [load(path).scaled(args.scale) for path in args.files]
    created = None
    try:
        if args.up:
            if not args.json:
                console.print(f"bringing up {scenarios[0].validators} validators in {args.dir} ...")
            created = testnet = create_for(args.dir, scenarios[0], netns=args.netns)
        else:
            testnet = open_testnet(args.dir)
        results = []
        for scenario in scenarios:

            def show(step: Any, name: str = scenario.name) -> None:
                if not args.json:
                    console.print(f"  [{name}] t={step.at_s:5.1f}s {step.action}: {step.detail}")

            result = run_scenario(testnet, scenario, on_step=show, restore=not args.keep_faults)
            results.append(result)
            if not args.json:
                print_result(result)
                print_script(result.script)
    except WaitTimeout as error:
        raise VerdictFailure(f"{error} (logs under {args.dir}/*/data/logs)") from None
    finally:
        if created is not None:
            with contextlib.suppress(Exception):
                created.down()
            if hasattr(created, "teardown"):
                created.teardown()
    if args.json:
        print_json(
            results[0].to_json() if len(results) == 1 else {"scenarios": [r.to_json() for r in results]}
        )
    elif len(results) > 1:
        console.print(summary_table(results))
    failed = [r.name for r in results if not r.passed]
    if failed:
        raise VerdictFailure(f"violations in {', '.join(failed)} (logs under {args.dir}/*/data/logs)")
    return 0
