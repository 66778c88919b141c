"""The grassroots ledger behind the Application interface of DESIGN.md (like ABCI).

`check_tx` (stateless checks, signatures and the mempool nonce window), `execute_block(height,
timestamp, txs) -> (receipts, app_hash)`, `query(path, args)`, `snapshot()` / `restore(bytes)`.
The block's height (clock "height") or timestamp in seconds (clock "timestamp") is its only clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hedgerow.protocols.grassroots.codes import Code
from hedgerow.protocols.grassroots.ledger import BlockResult, Ledger, Receipt, precheck
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.queries import PARAM_QUERIES, STATE_QUERIES, QueryError, int_arg
from hedgerow.protocols.grassroots.state import LedgerState, app_hash, restore_state, snapshot_bytes

RECEIPTS_KEPT_MAX = 200_000
VERIFIED_KEPT_MAX = 100_000
HASHES_KEPT_MAX = 100_000


@dataclass(frozen=True, slots=True)
class CheckResult:
    code: Code
    tx_hash: bytes | None
    signer: bytes | None = None
    nonce: int | None = None

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


class GrassrootsApp:
    """One replica's ledger: the state machine plus recent receipts and app hashes for queries."""

    def __init__(self, params: Params, state: LedgerState | None = None) -> None:
        self.params = params
        self.verified: OrderedDict[bytes, None] = OrderedDict()
        self.ledger = Ledger(params, state if state is not None else LedgerState(), verified=self.verified)
        self.receipts: OrderedDict[bytes, tuple[int, int, Receipt]] = OrderedDict()
        self.app_hashes: OrderedDict[int, bytes] = OrderedDict()
        self.last: BlockResult | None = None

    @property
    def state(self) -> LedgerState:
        return self.ledger.state

    def check_tx(self, raw: bytes) -> CheckResult:
        """Mempool admission: steps 1-3 of spec 5.2, then the nonce against the committed state,
        allowing future nonces up to `mempool_nonce_window` ahead."""
        code, tx = precheck(raw, self.params, self.verified)
        if tx is None:
            return CheckResult(code, None)
        if code == Code.OK:
            self.verified[tx.tx_hash] = None
            while len(self.verified) > VERIFIED_KEPT_MAX:
                self.verified.popitem(last=False)
            expected = self.state.nonces.get(tx.signer, 0)
            if not expected <= tx.nonce <= expected + self.params.mempool_nonce_window:
                code = Code.BAD_NONCE
        return CheckResult(code, tx.tx_hash, tx.signer, tx.nonce)

    def block_now(self, height: int, timestamp: float) -> int:
        return height if self.params.clock == "height" else int(timestamp)

    def execute_block(
        self, height: int, timestamp: float, txs: Sequence[bytes]
    ) -> tuple[list[Receipt], bytes]:
        result = self.ledger.apply_block(height, self.block_now(height, timestamp), txs)
        self.last = result
        for index, receipt in enumerate(result.receipts):
            self.receipts[receipt.tx_hash] = (height, index, receipt)
            self.verified.pop(receipt.tx_hash, None)
        while len(self.receipts) > RECEIPTS_KEPT_MAX:
            self.receipts.popitem(last=False)
        self.app_hashes[height] = result.app_hash
        while len(self.app_hashes) > HASHES_KEPT_MAX:
            self.app_hashes.popitem(last=False)
        return list(result.receipts), result.app_hash

    def app_hash(self) -> bytes:
        return app_hash(self.state)

    def snapshot(self) -> bytes:
        """Canonical state bytes; sha256 of them is the app_hash at `state.height`."""
        return snapshot_bytes(self.state)

    def restore(self, data: bytes) -> None:
        state = restore_state(data)
        self.ledger = Ledger(self.params, state, verified=self.verified)
        self.app_hashes = OrderedDict({state.height: app_hash(state)})
        self.receipts = OrderedDict()

    def query(self, path: str, args: Mapping[str, Any] | None = None) -> Any:
        """Answer a read-only query; raises QueryError on an unknown path or bad arguments."""
        args = args or {}
        state = self.state
        if path in STATE_QUERIES:
            return STATE_QUERIES[path](state, args)
        if path in PARAM_QUERIES:
            return PARAM_QUERIES[path](state, self.params, args)
        if path == "status":
            return {
                "height": state.height,
                "now": state.now,
                "next_id": state.next_id,
                "app_hash": self.app_hash().hex(),
                "chain_id": self.params.chain_id,
            }
        if path == "app_hash":
            height = int_arg(args, "height", state.height)
            found = self.app_hashes.get(height)
            return None if found is None else found.hex()
        if path == "receipt":
            return self._receipt(args)
        if path == "snapshot":
            return self.snapshot().hex()
        raise QueryError(f"unknown query {path!r}; known: {', '.join(sorted(QUERY_PATHS))}")

    def _receipt(self, args: Mapping[str, Any]) -> Any:
        tx_hash = args.get("tx_hash")
        if isinstance(tx_hash, str):
            tx_hash = bytes.fromhex(tx_hash)
        found = self.receipts.get(tx_hash) if isinstance(tx_hash, bytes) else None
        if found is None:
            return None
        height, index, receipt = found
        return {
            "tx_hash": receipt.tx_hash.hex(),
            "height": height,
            "index": index,
            "code": receipt.code.name,
            "events": jsonable(receipt.events),
        }


QUERY_PATHS = frozenset({*STATE_QUERIES, *PARAM_QUERIES, "status", "app_hash", "receipt", "snapshot"})


def jsonable(value: Any) -> Any:
    """Events and wire values with bytes rendered as hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
