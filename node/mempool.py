"""The node's mempool: signature-checked (by the application, in batches), deduplicated by tx hash,
bounded in count and bytes, with per-sender nonce order. Pure data structure, no I/O.

Admission (`add`, given the application's `CheckResult` and the sender's next committed nonce):
- `invalid:<reason>` when the application rejected it (bad signature, malformed, wrong chain);
- `duplicate` for a tx hash already pending or recently committed, or a (sender, nonce) taken;
- `bad_nonce` for a nonce below the sender's next one, or more than `nonce_window` above it;
- `busy` when the pool is full (count or bytes): it never grows past its bounds;
- `ok` otherwise.

`reap(txs_max, bytes_max)` returns ready txs for a block: per sender in nonce order, senders in
arrival order. `remove(tx_hashes)` drops executed txs (and remembers their hashes for dedup,
bounded). `mark_finalized(tx_hashes)` records txs that are in a FINALIZED block the ledger has not
executed yet: from then on they are never proposed again nor admitted again (their senders' nonces
only advance at execution, so a proposal would otherwise repeat them), until `remove` clears them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hedgerow.node.app import CheckResult

ADD_OK = "ok"
ADD_BUSY = "busy"
ADD_DUPLICATE = "duplicate"
ADD_BAD_NONCE = "bad_nonce"


@dataclass(slots=True)
class PendingTx:
    tx: bytes
    tx_hash: bytes
    sender: bytes
    nonce: int
    added_at: float = 0.0


@dataclass(slots=True)
class _Sender:
    by_nonce: dict[int, PendingTx] = field(default_factory=dict)


class Mempool:
    def __init__(self, *, txs_max: int = 10_000, bytes_max: int = 16 * 1024 * 1024,
                 nonce_window: int = 64, recent_max: int = 100_000) -> None:
        if txs_max < 1 or bytes_max < 1 or nonce_window < 1:
            raise ValueError("mempool bounds must be positive")
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self.nonce_window = nonce_window
        self._by_hash: OrderedDict[bytes, PendingTx] = OrderedDict()
        self._senders: OrderedDict[bytes, _Sender] = OrderedDict()
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._recent_max = recent_max
        self._finalized: dict[bytes, None] = {}  # in a finalized block, not executed yet
        self.bytes = 0
        self.rejected: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def _reject(self, reason: str) -> str:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return reason

    def add(self, tx: bytes, check: CheckResult, next_nonce: int, now: float = 0.0) -> str:
        ok, reason, sender_key, nonce, tx_hash = check
        if not ok:
            return self._reject(f"invalid:{reason}")
        by_hash = self._by_hash
        if tx_hash in by_hash or tx_hash in self._recent or tx_hash in self._finalized:
            return self._reject(ADD_DUPLICATE)
        if nonce < next_nonce or nonce > next_nonce + self.nonce_window:
            return self._reject(ADD_BAD_NONCE)
        sender = self._senders.get(sender_key)
        if sender is not None and nonce in sender.by_nonce:
            return self._reject(ADD_DUPLICATE)
        if len(by_hash) >= self.txs_max or self.bytes + len(tx) > self.bytes_max:
            return self._reject(ADD_BUSY)
        pending = PendingTx(tx, tx_hash, sender_key, nonce, now)
        if sender is None:
            sender = self._senders[sender_key] = _Sender()
        sender.by_nonce[nonce] = pending
        by_hash[tx_hash] = pending
        self.bytes += len(tx)
        return ADD_OK

    def reap(self, txs_max: int, bytes_max: int) -> list[PendingTx]:
        """Up to the limits, without removing them: per sender ascending nonces, senders FIFO."""
        out: list[PendingTx] = []
        size = 0
        for sender in self._senders.values():
            for nonce in sorted(sender.by_nonce):
                pending = sender.by_nonce[nonce]
                if len(out) >= txs_max or size + len(pending.tx) > bytes_max:
                    return out
                out.append(pending)
                size += len(pending.tx)
        return out

    def reap_ready(self, txs_max: int, bytes_max: int, exclude: frozenset[bytes],
                   next_nonce: Callable[[bytes], int]) -> list[bytes]:
        """A block's payload: per sender, consecutive nonces from its next committed nonce, skipping
        (but counting) txs already in uncommitted ancestors (`exclude`) or in finalized blocks not
        executed yet (`mark_finalized`); stops at a gap."""
        out: list[bytes] = []
        size = 0
        finalized = self._finalized
        for sender_key, sender in self._senders.items():
            nonce = next_nonce(sender_key)
            while True:
                pending = sender.by_nonce.get(nonce)
                if pending is None:
                    break
                nonce += 1
                if pending.tx_hash in exclude or pending.tx_hash in finalized:
                    continue
                if len(out) >= txs_max or size + len(pending.tx) > bytes_max:
                    return out
                out.append(pending.tx)
                size += len(pending.tx)
        return out

    def mark_finalized(self, tx_hashes: Iterable[bytes]) -> None:
        """These txs are in a finalized block that the ledger has not executed yet."""
        for tx_hash in tx_hashes:
            self._finalized[tx_hash] = None

    def remove(self, tx_hashes: list[bytes], *, committed: bool = True) -> int:
        """Drop these txs (committed or evicted); committed hashes are remembered for dedup."""
        removed = 0
        for tx_hash in tx_hashes:
            if committed:
                self._finalized.pop(tx_hash, None)
                self._recent[tx_hash] = None
                if len(self._recent) > self._recent_max:
                    self._recent.popitem(last=False)
            pending = self._by_hash.pop(tx_hash, None)
            if pending is None:
                continue
            removed += 1
            self.bytes -= len(pending.tx)
            sender = self._senders.get(pending.sender)
            if sender is not None:
                sender.by_nonce.pop(pending.nonce, None)
                if not sender.by_nonce:
                    del self._senders[pending.sender]
        return removed

    def evict_older(self, before: float) -> int:
        """Drop txs admitted before `before` (never committed: lost by a full pool downstream or
        superseded); they leave room instead of pinning the pool at "busy" forever."""
        stale = []
        for tx_hash, pending in self._by_hash.items():
            if pending.added_at >= before:
                break
            stale.append(tx_hash)
        return self.remove(stale, committed=False)

    def prune_below(self, sender: bytes, next_nonce: int) -> int:
        """Drop a sender's pending txs whose nonces are now stale."""
        state = self._senders.get(sender)
        if state is None:
            return 0
        stale = [p.tx_hash for n, p in state.by_nonce.items() if n < next_nonce]
        return self.remove(stale, committed=False)

    def stats(self) -> dict[str, int]:
        return {"txs": len(self._by_hash), "bytes": self.bytes, "senders": len(self._senders),
                "finalized_unexecuted": len(self._finalized),
                "txs_max": self.txs_max, "bytes_max": self.bytes_max}
