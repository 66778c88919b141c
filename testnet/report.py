"""Scenario reports: rich tables for people, JSON for machines (`--json`)."""

from __future__ import annotations

from typing import Any

from hedgerow.node.output import console, table
from hedgerow.testnet.scenario import ScenarioResult


def print_result(result: ScenarioResult) -> None:
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    expected = "" if result.as_expected else " [yellow](the scenario expected the opposite)[/yellow]"
    console.print(
        table(
            f"scenario {result.name}: {result.description}",
            ["at (s)", "perturbation", "what happened", "ok", "took (s)"],
            [
                (f"{p.at_s:.1f}", p.action, p.detail, "yes" if p.ok else "NO", f"{p.took_s:.1f}")
                for p in result.perturbations
            ],
        )
    )
    console.print(summary_table([result]))
    for line in result.observed:
        console.print(f"  observed (byzantine {', '.join(result.byzantine)}): {line}")
    for violation in result.violations:
        console.print(f"  [red]violation[/red] {violation.invariant}: {violation.detail}")
    console.print(f"verdict: {verdict}{expected} ({result.wall_s:.1f} s)")


def summary_table(results: list[ScenarioResult]) -> Any:
    rows = []
    for r in results:
        resumed = "-" if r.liveness_resumed_s is None else f"{r.liveness_resumed_s:.1f}"
        rows.append(
            (
                r.name,
                len(r.perturbations),
                r.submitted,
                r.acknowledged,
                f"{r.committed}" + (f" (+{r.duplicates} dup)" if r.duplicates else ""),
                f"{r.max_commit_gap_s:.1f}",
                resumed,
                len(r.violations),
                ("pass" if r.passed else "FAIL") + ("" if r.as_expected else " (unexpected)"),
            )
        )
    return table(
        "scenario results",
        [
            "scenario",
            "steps",
            "tx sent",
            "tx acked",
            "tx committed",
            "max gap s",
            "resumed s",
            "violations",
            "verdict",
        ],
        rows,
    )
