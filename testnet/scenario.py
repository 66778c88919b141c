"""Run a scenario file against a live testnet: load, timeline of perturbations, checks, verdict.

Stages (STYLE.md §4): `wait` (every validator commits), `load` + `perturb` (the timeline; a step's
`at_s` is its place in the schedule, not a synchronisation), `wait` (liveness: honest nodes commit
again within `liveness_bound_s` of the last step), `test` (scenario_checks.py), `restore` (undo
faults, pauses, clock skews, byzantine flags; start killed nodes). Waits are conditions with
deadlines; a missed one is a reported violation naming the condition.

A scenario with `script = NAME` (testnet/scenarios/village.toml) runs that grassroots script instead
of the load (`grassroots_campaign.run_live`: the script's days mapped onto heights, each act's txs
submitted in waves) and adds a violation for every difference between the live ledger's end state
and the direct run's (`hedgerow sim --protocol grassroots --scenario NAME`); the chain checks run
as for a load.

`hedgerow testnet scenario FILE --dir DIR [--json] [--up]` is the CLI (node/cmd_testnet.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError
from hedgerow.testnet.gr_load import GrassrootsLoad
from hedgerow.testnet.invariants import Violation
from hedgerow.testnet.launcher import Testnet, WaitTimeout, pid_alive, wait_until
from hedgerow.testnet.perturb import Perturber, previously_byzantine
from hedgerow.testnet.scenario_checks import duplicates, gather, misbehaviour_seen, run_checks
from hedgerow.testnet.scenario_file import Scenario, Step

SAMPLE_S = 0.2


@dataclass
class Applied:
    at_s: float
    action: str
    detail: str
    ok: bool
    took_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "at_s": round(self.at_s, 3),
            "action": self.action,
            "detail": self.detail,
            "ok": self.ok,
            "took_s": round(self.took_s, 3),
        }


@dataclass
class ScenarioResult:
    name: str
    description: str
    expect: str
    perturbations: list[Applied] = field(default_factory=list)
    submitted: int = 0
    acknowledged: int = 0
    committed: int = 0
    duplicates: int = 0
    max_commit_gap_s: float = 0.0
    liveness_resumed_s: float | None = None
    heights: dict[str, int] = field(default_factory=dict)
    byzantine: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    script: dict[str, Any] | None = None  # a script scenario: its live end state and the comparison

    @property
    def passed(self) -> bool:
        return not self.violations

    @property
    def as_expected(self) -> bool:
        return self.passed == (self.expect == "pass")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "expect": self.expect,
            "verdict": "pass" if self.passed else "fail",
            "as_expected": self.as_expected,
            "perturbations": [p.to_json() for p in self.perturbations],
            "submitted": self.submitted,
            "acknowledged": self.acknowledged,
            "committed": self.committed,
            "duplicates": self.duplicates,
            "max_commit_gap_s": round(self.max_commit_gap_s, 3),
            "liveness_resumed_s": None
            if self.liveness_resumed_s is None
            else round(self.liveness_resumed_s, 3),
            "heights": self.heights,
            "byzantine": self.byzantine,
            "observed": self.observed,
            "violations": [v.to_dict() for v in self.violations],
            "restored": self.restored,
            "wall_s": round(self.wall_s, 3),
            **({} if self.script is None else {"script": self.script}),
        }


class HeightMonitor:
    """Samples every reachable node's height in a thread: the scenario's commit timeline."""

    def __init__(self, testnet: Testnet, names: list[str]) -> None:
        self.testnet = testnet
        self.names = names
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hedgerow-heights", daemon=True)

    def start(self) -> HeightMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            heights = {}
            for name in self.names:
                rec = self.testnet.nodes[name]
                if rec.pid is None or rec.paused or not pid_alive(rec.pid):
                    continue
                try:
                    heights[name] = int(self.testnet.call(name, "status", timeout_s=1.0)["height"])
                except Exception:  # noqa: BLE001, S112 - a node under a fault may not answer
                    continue
            self.samples.append((time.monotonic(), heights))
            self._stop.wait(SAMPLE_S)

    def resumed_s(self, names: list[str], since: float, base: dict[str, int]) -> float | None:
        """Seconds after `since` of the first sample in which every name is past its `base` height."""
        for at, heights in self.samples:
            if at >= since and all(heights.get(n, -1) > base.get(n, 0) for n in names):
                return at - since
        return None

    def max_gap_s(self) -> float:
        """Longest stretch in which no watched node's height went up."""
        best, last_up, top = 0.0, None, -1
        for at, heights in self.samples:
            high = max(heights.values(), default=-1)
            if last_up is None:
                last_up, top = at, high
            elif high > top:
                best, last_up, top = max(best, at - last_up), at, high
        if self.samples and last_up is not None:
            best = max(best, self.samples[-1][0] - last_up)
        return best


def honest_validators(testnet: Testnet, byzantine: set[str]) -> list[str]:
    return [n for n, r in testnet.nodes.items() if r.role == "validator" and n not in byzantine]


def run_scenario(
    testnet: Testnet, scenario: Scenario, *, on_step: Any = None, restore: bool = True, wait_s: float = 60.0
) -> ScenarioResult:
    """Run one scenario on a running testnet and return its result (never raises on a violation)."""
    started = time.monotonic()
    result = ScenarioResult(scenario.name, scenario.description, scenario.expect)
    validators = [n for n, r in testnet.nodes.items() if r.role == "validator"]
    if len(validators) < 1:
        raise UsageError("the testnet has no validators")
    perturber = Perturber(testnet, seed=scenario.seed, wait_s=wait_s)
    byzantine = scenario.byzantine_nodes()
    exempt = previously_byzantine(testnet.dir) - byzantine
    for name in scenario.byzantine_nodes():
        testnet.record(name)
    running = [n for n in validators if n in testnet.running()]
    apps = {str(testnet.call(n, "status").get("app")) for n in running}
    if apps != {"grassroots"}:
        raise UsageError(
            f"scenarios drive a grassroots load; this testnet runs {sorted(apps)} "
            "(hedgerow testnet up --app grassroots)"
        )
    start_height = max([perturber.height(n) for n in running] + [0])
    wait_until(
        lambda: all(perturber.height(n) > start_height for n in running),
        wait_s,
        f"every running validator to commit past height {start_height}",
    )
    perturber.heal()  # start from a clean fault table
    monitor = HeightMonitor(testnet, list(testnet.nodes)).start()
    run = _Run(
        testnet,
        perturber,
        scenario,
        result,
        monitor,
        started,
        restore,
        byzantine,
        exempt,
        validators,
        start_height,
    )
    if scenario.script:
        try:
            acknowledged = _run_script(testnet, running[0], scenario, result, wait_s)
        except BaseException:
            monitor.stop()
            raise
        submitted = set(acknowledged)
        last_step_end = time.monotonic()
        base = {n: perturber._safe_height(n) for n in testnet.nodes}
        return _finish(run, submitted, acknowledged, last_step_end, base)
    load = GrassrootsLoad(
        testnet,
        rate_tps=scenario.rate_tps,
        accounts=scenario.accounts,
        tag=f"{scenario.name}/{time.time_ns()}",
        ack_timeout_s=scenario.ack_timeout_s,
    ).start()
    t0 = time.monotonic()
    last_step_end = t0
    base = {n: perturber._safe_height(n) for n in testnet.nodes}
    try:
        for step in scenario.steps:
            delay = t0 + step.at_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the schedule itself (steps happen at their offsets), not a wait for state
            applied = _apply(perturber, step, time.monotonic() - t0)
            result.perturbations.append(applied)
            if not applied.ok:
                result.violations.append(Violation("perturbation", f"{step.action}: {applied.detail}"))
            if on_step is not None:
                on_step(applied)
            last_step_end = time.monotonic()
            base = {n: perturber._safe_height(n) for n in testnet.nodes}
        delay = t0 + scenario.duration_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    finally:
        stats = load.stop()
    return _finish(run, stats.submitted, dict(stats.acknowledged), last_step_end, base)


@dataclass
class _Run:
    """One scenario run's context, from the start to the checks."""

    testnet: Testnet
    perturber: Perturber
    scenario: Scenario
    result: ScenarioResult
    monitor: HeightMonitor
    started: float
    restore: bool
    byzantine: set[str]
    exempt: set[str]
    validators: list[str]
    start_height: int


def _finish(
    run: _Run,
    submitted: set[bytes],
    acknowledged: dict[bytes, int],
    last_step_end: float,
    base: dict[str, int],
) -> ScenarioResult:
    """Liveness, the chain checks (scenario_checks.py) and the counts, after the load or script."""
    testnet, perturber, scenario, result, monitor = (
        run.testnet,
        run.perturber,
        run.scenario,
        run.result,
        run.monitor,
    )
    byzantine, exempt, validators, start_height = run.byzantine, run.exempt, run.validators, run.start_height
    result.byzantine = sorted(byzantine)
    honest = honest_validators(testnet, byzantine)
    live = [n for n in honest if n in perturber.running()]
    _liveness(perturber, live, last_step_end, base, scenario, result)
    monitor.stop()
    if result.liveness_resumed_s is not None:
        result.liveness_resumed_s = monitor.resumed_s(live, last_step_end, base) or result.liveness_resumed_s
    result.max_commit_gap_s = monitor.max_gap_s()
    evidence = gather(testnet, live, perturber.running())
    violations, observed = run_checks(
        evidence,
        byzantine=byzantine,
        submitted=submitted,
        acknowledged=acknowledged,
        start_height=start_height,
        validators=len(validators),
        exempt=exempt,
    )
    result.violations += violations
    seen = misbehaviour_seen(evidence, live)
    result.observed = observed + [
        f"honest nodes counted {count} × {what}" for what, count in sorted(seen.items()) if count
    ]
    if scenario.byzantine_observed and not result.observed:
        result.violations.append(Violation("perturbation", "no honest node observed the byzantine behaviour"))
    chain = max(evidence.chains.values(), key=len, default=[])
    committed = {h for block in chain if block.height > start_height for h in map(_hash, block.txs)}
    result.submitted = len(submitted)
    result.acknowledged = len(acknowledged)
    result.committed = len(committed & submitted)
    if result.acknowledged < scenario.min_acknowledged and scenario.expect == "pass" and not scenario.script:
        result.violations.append(
            Violation(
                "load", f"only {result.acknowledged} txs acknowledged (want >= {scenario.min_acknowledged})"
            )
        )
    result.heights = {n: len(c) for n, c in evidence.chains.items()}
    result.duplicates = duplicates(evidence, start_height)
    if run.restore:
        result.restored = perturber.restore()
    result.wall_s = time.monotonic() - run.started
    return result


def _run_script(
    testnet: Testnet, node: str, scenario: Scenario, result: ScenarioResult, wait_s: float
) -> dict[bytes, int]:
    """Run the scenario's grassroots script against `node`; violations for a failed act, for the
    ledger's invariants and for every difference from the direct run. Returns the acknowledged txs
    (hash -> height)."""
    from hedgerow.testnet.sim.grassroots_campaign import (
        ScenarioError,
        compare_end_states,
        run_live,
    )
    from hedgerow.testnet.sim.grassroots_campaign import run_scenario as run_direct

    began = time.monotonic()
    try:
        live = run_live(
            scenario.script, Path(testnet.record(node).home), stretch=scenario.stretch, deadline_s=wait_s
        )
    except (ScenarioError, WaitTimeout) as error:
        result.violations.append(Violation("script", f"{scenario.script} on {node}: {error}"))
        result.script = {"name": scenario.script, "node": node, "error": str(error)}
        return {}
    direct = run_direct(scenario.script)
    mismatches = compare_end_states(live, direct)
    result.violations += [Violation("grassroots", v) for v in live["violations"]]
    result.violations += [Violation("script", f"{scenario.script}: {m}") for m in mismatches]
    result.script = {
        "name": scenario.script,
        "node": node,
        "stretch": scenario.stretch,
        "base": live["base"],
        "end_height": live["height"],
        "waves": live["waves"],
        "day_slack_heights": live["slack"],
        "took_s": round(time.monotonic() - began, 3),
        "matches_direct": not mismatches,
        "mismatches": mismatches,
        "end_state": {k: live[k] for k in ("agents", "supply", "checkpoints", "violations")},
    }
    return {bytes.fromhex(h): height for h, height in live["committed"].items()}


def _hash(tx: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(tx).digest()


def _liveness(
    perturber: Perturber,
    live: list[str],
    since: float,
    base: dict[str, int],
    scenario: Scenario,
    result: ScenarioResult,
) -> None:
    """Every live honest node commits past its height at the last step's end within the bound
    (a violation otherwise); sets `liveness_resumed_s` to an upper bound of how long it took."""
    if not live:
        result.violations.append(Violation("liveness", "no honest validator is running at the end"))
        return
    base = {n: base.get(n, 0) for n in live}
    remaining = max(2.0, scenario.liveness_bound_s - (time.monotonic() - since))
    try:
        wait_until(
            lambda: all(perturber.height(n) > base[n] for n in live),
            remaining,
            f"{', '.join(live)} to commit again",
        )
    except WaitTimeout:
        result.violations.append(
            Violation(
                "liveness",
                f"no new commit on {', '.join(live)} within {scenario.liveness_bound_s:.0f} s of the "
                f"last perturbation (heights stuck at {base})",
            )
        )
        return
    result.liveness_resumed_s = time.monotonic() - since


def _apply(perturber: Perturber, step: Step, at_s: float) -> Applied:
    began = time.monotonic()
    try:
        detail = _dispatch(perturber, step)
        ok = True
    except WaitTimeout as error:
        detail, ok = str(error), False
    except UsageError as error:
        detail, ok = f"could not apply: {error}", False
    return Applied(at_s, step.action, detail, ok, time.monotonic() - began)


def _dispatch(p: Perturber, step: Step) -> str:
    args, action = step.args, step.action
    if action in ("kill", "restart", "stop", "pause", "resume", "clock-skew"):
        name = p.resolve(str(args["node"]))
        if step.label:
            p.labels[step.label] = name
        if action == "clock-skew":
            return p.clock_skew(name, float(args.get("offset_ms", 0)), float(args.get("rate", 1.0)))
        method = {"kill": p.kill, "restart": p.restart, "stop": p.stop, "pause": p.pause, "resume": p.resume}
        return method[action](name)
    if action == "partition":
        groups = [[p.resolve(str(n)) for n in group] for group in args["groups"]]
        return p.partition(groups, one_way=bool(args.get("one_way", False)))
    if action == "heal":
        return p.heal()
    if action in ("delay", "drop", "link"):
        rule = {k: float(v) for k, v in args.items() if k not in ("from", "to", "both_ways")}
        src = "*" if args.get("from", "*") == "*" else p.resolve(str(args["from"]))
        dst = "*" if args.get("to", "*") == "*" else p.resolve(str(args["to"]))
        return p.link(src, dst, rule, both_ways=bool(args.get("both_ways", False)))
    if action == "byzantine":
        names = [str(n) for n in args.get("nodes", [args.get("node")])]
        return "; ".join(p.make_byzantine(p.resolve(n), [str(f) for f in args["flags"]]) for n in names)
    if action in ("kernel-cut", "kernel-heal", "netem"):
        name = p.resolve(str(args["node"]))
        if action == "netem":
            return p.netem(name, float(args.get("delay_ms", 0)), float(args.get("loss", 0)))
        return p.kernel_cut(name) if action == "kernel-cut" else p.kernel_heal(name)
    if action == "garbage":
        names = [p.resolve(str(n)) for n in args.get("nodes", p.running())]
        return p.garbage(names, int(args.get("frames", 20)))
    raise UsageError(f"unknown action {action!r}")


def create_for(
    directory: Path, scenario: Scenario, *, deadline_s: float = 60.0, netns: bool = False
) -> Testnet:
    """A fresh grassroots testnet shaped by the scenario's [testnet] table (each node in its own
    network namespace with `netns`)."""
    from hedgerow.testnet.launcher import up
    from hedgerow.testnet.manifest import parse_manifest

    consensus = scenario.consensus or {"delta_ms": 50, "local_processing_ms": 50}
    raw: dict[str, Any] = {
        "validators": scenario.validators,
        "app": "grassroots",
        "consensus": consensus,
        "seed": scenario.seed,
    }
    if scenario.mempool:
        raw["mempool"] = scenario.mempool
    if not netns:
        return up(directory, parse_manifest(raw), deadline_s=deadline_s).testnet
    from hedgerow.testnet.netns import create_netns

    testnet = create_netns(directory, parse_manifest(raw))
    try:
        testnet.start_all()
        testnet.wait_for_height(2, deadline_s=deadline_s)
    except BaseException:
        testnet.teardown()
        raise
    return testnet
