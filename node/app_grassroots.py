"""The grassroots ledger (`protocols/grassroots`) behind the node's Application interface.

Genesis carries its parameters under `"grassroots"`; block timestamps reach it in seconds (the
ledger's clock is the height unless genesis says `clock = "timestamp"`). Receipts become
`[code, name]` results, so a waiting client sees e.g. `[4, "BAD_NONCE"]`.
"""

from __future__ import annotations

from typing import Any

from hedgerow.node.app import CheckResult
from hedgerow.protocols.grassroots.app import GrassrootsApp as Ledger
from hedgerow.protocols.grassroots.params import Params


class GrassrootsApp:
    name = "grassroots"

    def __init__(self, chain_id: str, genesis: dict[str, Any] | None = None) -> None:
        section = (genesis or {}).get("grassroots")
        self.inner = Ledger(Params.from_genesis(chain_id, section if isinstance(section, dict) else None))

    def check_tx(self, tx: bytes) -> CheckResult:
        result = self.inner.check_tx(tx)
        reason = "" if result.ok else result.code.name.lower()
        return CheckResult(result.ok, reason, result.signer or b"", int(result.nonce or 0),
                           result.tx_hash or b"")

    def account_nonce(self, sender: bytes) -> int:
        return int(self.inner.state.nonces.get(sender, 0))

    def execute_block(self, height: int, timestamp_ms: int, txs: list[bytes]) -> tuple[list[Any], bytes]:
        receipts, app_hash = self.inner.execute_block(height, timestamp_ms / 1000.0, txs)
        return [[int(r.code), r.code.name] for r in receipts], app_hash

    def query(self, path: str, args: dict[str, Any]) -> Any:
        return self.inner.query(path, args)

    def snapshot(self) -> bytes:
        return self.inner.snapshot()

    def restore(self, data: bytes) -> None:
        self.inner.restore(data)

    def state_hash(self) -> bytes:
        return self.inner.app_hash()
