"""Testnet manifests (TOML): which nodes, their roles, ports, consensus parameters and per-link faults.

    chain_id = "testnet"          # optional
    validators = 4                # v0..v3, unless [node.NAME] tables name them
    observers = 1                 # o0.. (started with the rest unless start = false)
    app = "kv"
    [consensus]  delta_ms = 100, vote_pace_ms = 0, ...
    [node.v2]    role = "validator"; p2p_port = 0 (0 = pick a free port); start = true
    [node.o0]    role = "observer"; start = false        # start it later: testnet start o0
    [[fault]]    from = "v0"; to = "v1"; drop = 0.1; delay_ms = 20; jitter_ms = 5; partition = false

Unknown keys are an error (a typo should not silently do nothing).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError

DEFAULT_CHAIN_ID = "hedgerow-testnet"
TOP_KEYS = {"chain_id", "validators", "observers", "app", "consensus", "node", "fault", "seed", "mempool"}
NODE_KEYS = {"role", "p2p_port", "rpc_port", "metrics_port", "start", "byzantine"}
FAULT_KEYS = {"from", "to", "drop", "delay_ms", "jitter_ms", "duplicate", "reorder", "partition"}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str = "validator"
    p2p_port: int = 0
    rpc_port: int = 0
    metrics_port: int = 0
    start: bool = True
    byzantine: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkFault:
    source: str
    target: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    chain_id: str = DEFAULT_CHAIN_ID
    app: str = "kv"
    seed: int = 0
    nodes: tuple[NodeSpec, ...] = ()
    consensus: dict[str, Any] = field(default_factory=dict)
    mempool: dict[str, Any] = field(default_factory=dict)
    faults: tuple[LinkFault, ...] = ()

    @property
    def validators(self) -> list[NodeSpec]:
        return [n for n in self.nodes if n.role == "validator"]

    @property
    def observers(self) -> list[NodeSpec]:
        return [n for n in self.nodes if n.role == "observer"]

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise ConfigError(f"no node {name!r} in the manifest")


def default_manifest(validators: int, observers: int = 0, *, chain_id: str = DEFAULT_CHAIN_ID,
                     app: str = "kv", consensus: dict[str, Any] | None = None) -> Manifest:
    if not 1 <= validators <= 64:
        raise ConfigError(f"validators must be 1..64, got {validators}")
    nodes = [NodeSpec(f"v{i}") for i in range(validators)]
    nodes += [NodeSpec(f"o{i}", role="observer") for i in range(observers)]
    return Manifest(chain_id=chain_id, app=app, nodes=tuple(nodes), consensus=dict(consensus or {}))


def load_manifest(path: Path, *, validators: int | None = None) -> Manifest:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    return parse_manifest(raw, str(path), validators=validators)


def parse_manifest(raw: dict[str, Any], where: str = "manifest", *,
                   validators: int | None = None) -> Manifest:
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    count = int(validators if validators is not None else raw.get("validators", 4))
    base = default_manifest(count, int(raw.get("observers", 0)))
    specs: dict[str, NodeSpec] = {spec.name: spec for spec in base.nodes}
    for name, table in (raw.get("node") or {}).items():
        if not isinstance(table, dict) or set(table) - NODE_KEYS:
            raise ConfigError(f"{where}: [node.{name}] has unknown keys {sorted(set(table) - NODE_KEYS)}")
        old = specs.get(name, NodeSpec(name))
        role = str(table.get("role", old.role))
        if role not in ("validator", "observer"):
            raise ConfigError(f"{where}: [node.{name}] role must be validator or observer")
        specs[name] = NodeSpec(name, role, int(table.get("p2p_port", old.p2p_port)),
                               int(table.get("rpc_port", old.rpc_port)),
                               int(table.get("metrics_port", old.metrics_port)),
                               bool(table.get("start", old.start)),
                               tuple(str(b) for b in table.get("byzantine", old.byzantine)))
    faults: list[LinkFault] = []
    for i, table in enumerate(raw.get("fault") or []):
        if not isinstance(table, dict) or set(table) - FAULT_KEYS or "from" not in table or "to" not in table:
            raise ConfigError(f"{where}: fault {i} needs from/to and only {sorted(FAULT_KEYS)}")
        for end in (table["from"], table["to"]):
            if end != "*" and end not in specs:
                raise ConfigError(f"{where}: fault {i} names unknown node {end!r}")
        settings = {k: v for k, v in table.items() if k not in ("from", "to")}
        faults.append(LinkFault(str(table["from"]), str(table["to"]), settings))
    if not any(spec.role == "validator" for spec in specs.values()):
        raise ConfigError(f"{where}: no validators")
    return Manifest(chain_id=str(raw.get("chain_id", base.chain_id)), app=str(raw.get("app", "kv")),
                    seed=int(raw.get("seed", 0)), nodes=tuple(specs.values()),
                    consensus=dict(raw.get("consensus") or {}), mempool=dict(raw.get("mempool") or {}),
                    faults=tuple(faults))
