"""The node store: WAL mode, fsynced safety state, finalized chain and snapshots survive reopening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hedgerow.node.store import SIGNED_PRUNE_EVERY, FinalizedRow, SignedRow, Store


def test_store_is_wal_and_keeps_safety_state_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hedgerow.sqlite"
    store = Store(path)
    assert store.read_safety() is None
    seq1 = store.write_safety(b"checkpoint-1", [SignedRow("vote", 1, b"a" * 32)],
                              [(b"b" * 32, 1, 1, b"block-bytes")])
    seq2 = store.write_safety(b"checkpoint-2", [SignedRow("timeout", 2, b"c" * 32)])
    assert (seq1, seq2) == (1, 2)
    assert store.fsyncs == 2
    store.close()

    again = Store(path)
    assert again.read_safety() == b"checkpoint-2"
    assert [r.kind for r in again.signed_log()] == ["vote", "timeout"]
    assert again.get_block(b"b" * 32) == b"block-bytes"
    assert again.write_safety(b"checkpoint-3") == 3, "the sequence continues after a restart"
    mode = sqlite3.connect(str(path)).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    again.close()


def test_signer_log_keeps_only_its_newest_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", signed_rows_kept=10)
    for round_ in range(1, 2 * SIGNED_PRUNE_EVERY + 1):
        store.write_safety(b"checkpoint", [SignedRow("vote", round_, bytes(32))])
    rounds = [row.round for row in store.signed_log()]
    assert rounds == list(range(2 * SIGNED_PRUNE_EVERY - 9, 2 * SIGNED_PRUNE_EVERY + 1)), "pruned"
    store.write_safety(b"checkpoint", [SignedRow("vote", 10_000, bytes(32))])
    assert store.signed_log()[-1].round == 10_000 and len(store.signed_log()) == 11
    store.close()


def test_finalized_rows_and_snapshots(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert store.finalized_height() == 0 and store.latest_snapshot() is None
    for height in range(1, 6):
        snap = (b"state%d" % height, b"h" * 32) if height % 2 == 0 else None
        block = (bytes([height]) * 32, height, height, b"block%d" % height)
        store.put_finalized(FinalizedRow(height, bytes([height]) * 32, b"proof", b"s" * 32, 3, 1000 + height),
                            block, snap)
    assert store.finalized_height() == 5
    assert store.get_block(bytes([2]) * 32) == b"block2" and store.get_proof(bytes([2]) * 32) == b"proof"
    assert store.finalized_at(3) == FinalizedRow(3, bytes([3]) * 32, b"proof", b"s" * 32, 3, 1003)
    assert [r.height for r in store.finalized_range(2, 2)] == [2, 3]
    assert store.latest_snapshot() == (4, b"state4", b"h" * 32)
    store.set_meta("genesis_hash", b"g")
    assert store.get_meta("genesis_hash") == b"g" and store.get_meta("nope") is None
    store.close()
