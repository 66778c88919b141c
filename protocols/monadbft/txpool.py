"""The core's built-in FIFO mempool (spec §4) and the payload-source hook a node may use instead."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol


def tx_hash(tx: bytes) -> bytes:
    return hashlib.sha256(tx).digest()


class PayloadSource(Protocol):
    """Supplies a fresh block's txs: at most `txs_max` txs and `bytes_max` bytes, none whose SHA-256
    is in `exclude` (txs already in uncommitted ancestors)."""

    def __call__(self, txs_max: int, bytes_max: int, exclude: frozenset[bytes]) -> Sequence[bytes]: ...


class TxPool:
    """FIFO, deduplicated by tx SHA-256, bounded in count and bytes; remembers recently finalized
    hashes so a late forwarded copy is not proposed again."""

    def __init__(self, txs_max: int, bytes_max: int, finalized_memory: int) -> None:
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self.finalized_memory = finalized_memory
        self._txs: OrderedDict[bytes, bytes] = OrderedDict()
        self._finalized: OrderedDict[bytes, None] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, tx: bytes) -> str:
        """'ok', 'duplicate' or 'mempool_full'."""
        digest = tx_hash(tx)
        if digest in self._txs or digest in self._finalized:
            return "duplicate"
        if len(self._txs) >= self.txs_max or self.bytes + len(tx) > self.bytes_max:
            return "mempool_full"
        self._txs[digest] = tx
        self.bytes += len(tx)
        return "ok"

    def take(self, txs_max: int, bytes_max: int, exclude: frozenset[bytes]) -> list[bytes]:
        """Oldest txs first (they stay in the pool until finalized)."""
        chosen: list[bytes] = []
        size = 0
        for digest, tx in self._txs.items():
            if len(chosen) >= txs_max:
                break
            if digest in exclude or size + len(tx) > bytes_max:
                continue
            chosen.append(tx)
            size += len(tx)
        return chosen

    def finalized(self, txs: Sequence[bytes]) -> None:
        for tx in txs:
            digest = tx_hash(tx)
            removed = self._txs.pop(digest, None)
            if removed is not None:
                self.bytes -= len(removed)
            self._finalized[digest] = None
            if len(self._finalized) > self.finalized_memory:
                self._finalized.popitem(last=False)
