"""The Application interface the node executes committed blocks through (DESIGN.md, like ABCI).

Consensus orders opaque transaction bytes; the application decides what they mean. The node needs:
- `check_tx(tx)`: stateless checks and the signature (the mempool admits only `ok` txs), plus the
  sender and nonce the mempool uses for per-sender ordering and dedup;
- `execute_block(height, timestamp_ms, txs) -> (results, state_hash)`: deterministic;
- `query(path, args)`, `snapshot() -> bytes`, `restore(bytes)`, `account_nonce(sender)`.

`load_application(name, genesis)` picks the application named in genesis/config: `kv` (the small
built-in key/value store, `node/app_kv.py`) or `grassroots` (the coins-and-bonds ledger) once it
is installed.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple, Protocol


class CheckResult(NamedTuple):
    """Outcome of `check_tx`: `reason` is "" when ok, else a stable short code. A tuple of plain
    values: cheap to build (one per admitted tx) and never traced by the garbage collector."""

    ok: bool
    reason: str
    sender: bytes
    nonce: int
    tx_hash: bytes


class Application(Protocol):
    name: str

    def check_tx(self, tx: bytes) -> CheckResult: ...

    def account_nonce(self, sender: bytes) -> int: ...

    def execute_block(self, height: int, timestamp_ms: int, txs: list[bytes]) -> tuple[list[Any], bytes]: ...

    def query(self, path: str, args: dict[str, Any]) -> Any: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...

    def state_hash(self) -> bytes: ...


APPLICATIONS: dict[str, str] = {
    "kv": "hedgerow.node.app_kv:KvApp",
    "grassroots": "hedgerow.node.app_grassroots:GrassrootsApp",
}


def load_application(name: str, chain_id: str, genesis: dict[str, Any]) -> Application:
    """Instantiate the named application for this chain (ValueError for an unknown name)."""
    target = APPLICATIONS.get(name)
    if target is None:
        raise ValueError(f"unknown application {name!r} (known: {', '.join(sorted(APPLICATIONS))})")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    app: Application = cls(chain_id, genesis)
    return app
