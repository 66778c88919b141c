"""Scenario files (TOML): a load, a timeline of perturbations, and what the checks expect.

    name = "crash-leader"
    description = "SIGKILL the leader under load, start it again"
    duration_s = 8                 # the load runs this long; steps are offsets into it
    seed = 1                       # seeds the fault layer's per-link RNGs
    [testnet]                      # only when the runner creates the testnet (`--up`, tests, demo)
    validators = 4
    consensus = { delta_ms = 50, local_processing_ms = 50 }
    [load]
    rate_tps = 20                  # grassroots txs per second, over all accounts
    accounts = 6
    [[perturb]]
    at_s = 1.5
    action = "kill"                # see ACTIONS
    node = "leader"                # a name, `leader` (resolved when the step runs) or a label
    label = "crashed"              # later steps may say node = "crashed"
    [[perturb]]
    at_s = 4
    action = "restart"
    node = "crashed"
    [check]
    liveness_bound_s = 10          # honest nodes commit again within this after the last step
    expect = "pass"                # or "violation": a scenario built to break an invariant
    byzantine_observed = false     # true: fail unless honest nodes saw the misbehaviour

A scripted scenario runs a grassroots script instead of the random load (no [load], no [[perturb]]),
then compares the live ledger's end state with the direct run's (`hedgerow sim --protocol grassroots
--scenario NAME`). `hedgerow testnet scenario village` is `script_scenario("village")`; as a file:

    name = "village"
    script = "village"             # a name in grassroots_campaign.SCRIPTS
    stretch = 4                    # heights per script tick (the ledger's clock is the height)

Step keys by action:
    kill | restart | stop | pause | resume         node
    partition                                      groups = [["v0"], ["v1", "v2", "v3"]], one_way
    heal                                           (removes every partition and link fault)
    delay | drop | link                            from, to ("*" = any), both_ways, delay_ms,
                                                   jitter_ms, drop, duplicate, reorder
    clock-skew                                     node, offset_ms, rate
    byzantine                                      node (or nodes), flags = ["equivocate", ...]
    garbage                                        nodes (default all), frames
    kernel-cut | kernel-heal                       node (testnets in namespaces, `--netns`: the
                                                   node's veth goes down / up in the kernel)
    netem                                          node, delay_ms, loss (tc netem on its veth)

Unknown keys and actions are errors: a typo must not silently do nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError

TOP_KEYS = {
    "name",
    "description",
    "duration_s",
    "seed",
    "testnet",
    "load",
    "perturb",
    "check",
    "script",
    "stretch",
}
TESTNET_KEYS = {"validators", "consensus", "mempool"}
LOAD_KEYS = {"rate_tps", "accounts", "ack_timeout_s"}
CHECK_KEYS = {"liveness_bound_s", "expect", "byzantine_observed", "min_acknowledged"}
ACTIONS: dict[str, set[str]] = {
    "kill": {"node"},
    "restart": {"node"},
    "stop": {"node"},
    "pause": {"node"},
    "resume": {"node"},
    "partition": {"groups", "one_way"},
    "heal": set(),
    "delay": {"from", "to", "both_ways", "delay_ms", "jitter_ms"},
    "drop": {"from", "to", "both_ways", "drop"},
    "link": {"from", "to", "both_ways", "delay_ms", "jitter_ms", "drop", "duplicate", "reorder"},
    "clock-skew": {"node", "offset_ms", "rate"},
    "byzantine": {"node", "nodes", "flags"},
    "garbage": {"nodes", "frames"},
    "kernel-cut": {"node"},
    "kernel-heal": {"node"},
    "netem": {"node", "delay_ms", "loss"},
}
STEP_COMMON = {"at_s", "action", "label"}


@dataclass(frozen=True)
class Step:
    at_s: float
    action: str
    args: dict[str, Any]
    label: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.args.items()]
        return f"{self.action} " + " ".join(parts)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    duration_s: float = 8.0
    seed: int = 0
    validators: int = 4
    consensus: dict[str, Any] = field(default_factory=dict)
    mempool: dict[str, Any] = field(default_factory=dict)
    rate_tps: float = 10.0
    accounts: int = 4
    ack_timeout_s: float = 5.0
    steps: tuple[Step, ...] = ()
    liveness_bound_s: float = 10.0
    expect: str = "pass"
    byzantine_observed: bool = False
    min_acknowledged: int = 1
    script: str = ""  # a grassroots script (replaces the load; no perturbation timeline)
    stretch: int = 4  # heights per script tick

    def scaled(self, factor: float) -> Scenario:
        """The same timeline compressed or stretched by `factor` (bounded runs in tests)."""
        steps = tuple(Step(s.at_s * factor, s.action, s.args, s.label) for s in self.steps)
        return Scenario(**{**self.__dict__, "duration_s": self.duration_s * factor, "steps": steps})

    def byzantine_nodes(self) -> set[str]:
        out: set[str] = set()
        for step in self.steps:
            if step.action == "byzantine":
                out.update(_names(step.args))
        return out


def _names(args: dict[str, Any]) -> list[str]:
    if "nodes" in args:
        return [str(n) for n in args["nodes"]]
    return [str(args["node"])] if "node" in args else []


def load_scenario(path: Path) -> Scenario:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    return parse_scenario(raw, str(path), default_name=Path(path).stem)


def script_scenario(name: str, stretch: int = 4) -> Scenario:
    """The scenario a bare script name stands for (`hedgerow testnet scenario village`)."""
    from hedgerow.testnet.sim.grassroots_campaign import SCENARIOS

    return parse_scenario(
        {"name": name, "description": SCENARIOS.get(name, ""), "script": name, "stretch": stretch}, name
    )


def _table(raw: dict[str, Any], key: str, allowed: set[str], where: str) -> dict[str, Any]:
    table = raw.get(key) or {}
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: [{key}] has unknown keys {sorted(unknown)} (have: {sorted(allowed)})")
    return table


def parse_scenario(raw: dict[str, Any], where: str = "scenario", default_name: str = "scenario") -> Scenario:
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (have: {sorted(TOP_KEYS)})")
    testnet = _table(raw, "testnet", TESTNET_KEYS, where)
    load = _table(raw, "load", LOAD_KEYS, where)
    check = _table(raw, "check", CHECK_KEYS, where)
    steps = tuple(
        sorted(
            (_step(item, i, where) for i, item in enumerate(raw.get("perturb") or [])), key=lambda s: s.at_s
        )
    )
    expect = str(check.get("expect", "pass"))
    if expect not in ("pass", "violation"):
        raise ConfigError(f"{where}: check.expect must be pass or violation, got {expect!r}")
    duration = float(raw.get("duration_s", 8.0))
    if duration <= 0 or any(s.at_s > duration for s in steps):
        raise ConfigError(f"{where}: duration_s must be positive and cover every step's at_s")
    script = str(raw.get("script", ""))
    stretch = raw.get("stretch", 4)
    if script:
        from hedgerow.testnet.sim.grassroots_campaign import SCRIPTS

        if script not in SCRIPTS:
            raise ConfigError(f"{where}: unknown script {script!r} (have: {', '.join(SCRIPTS)})")
        if steps or "load" in raw:
            raise ConfigError(f"{where}: a script scenario has no [load] and no [[perturb]] steps")
    if type(stretch) is not int or stretch < 1:
        raise ConfigError(f"{where}: stretch must be a positive integer, got {stretch!r}")
    return Scenario(
        name=str(raw.get("name", default_name)),
        description=str(raw.get("description", "")),
        duration_s=duration,
        seed=int(raw.get("seed", 0)),
        validators=int(testnet.get("validators", 4)),
        consensus=dict(testnet.get("consensus") or {}),
        mempool=dict(testnet.get("mempool") or {}),
        rate_tps=float(load.get("rate_tps", 10.0)),
        accounts=int(load.get("accounts", 4)),
        ack_timeout_s=float(load.get("ack_timeout_s", 5.0)),
        steps=steps,
        liveness_bound_s=float(check.get("liveness_bound_s", 10.0)),
        expect=expect,
        byzantine_observed=bool(check.get("byzantine_observed", False)),
        min_acknowledged=int(check.get("min_acknowledged", 1)),
        script=script,
        stretch=stretch,
    )


def _step(item: Any, index: int, where: str) -> Step:
    if not isinstance(item, dict) or "action" not in item or "at_s" not in item:
        raise ConfigError(f"{where}: perturb {index} needs at_s and action")
    action = str(item["action"])
    if action not in ACTIONS:
        raise ConfigError(f"{where}: perturb {index}: unknown action {action!r} (have: {', '.join(ACTIONS)})")
    args = {k: v for k, v in item.items() if k not in STEP_COMMON}
    unknown = set(args) - ACTIONS[action]
    if unknown:
        raise ConfigError(f"{where}: perturb {index} ({action}): unknown keys {sorted(unknown)}")
    needs = {
        "kill": "node",
        "restart": "node",
        "stop": "node",
        "pause": "node",
        "resume": "node",
        "partition": "groups",
        "clock-skew": "node",
        "byzantine": "flags",
        "kernel-cut": "node",
        "kernel-heal": "node",
        "netem": "node",
    }.get(action)
    if needs and needs not in args:
        raise ConfigError(f"{where}: perturb {index} ({action}) needs {needs}")
    if action == "byzantine" and not _names(args):
        raise ConfigError(f"{where}: perturb {index} (byzantine) needs node or nodes")
    at_s = float(item["at_s"])
    if at_s < 0:
        raise ConfigError(f"{where}: perturb {index}: at_s must be >= 0")
    label = item.get("label")
    return Step(at_s, action, args, str(label) if label is not None else None)
