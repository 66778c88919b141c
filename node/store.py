"""The node's SQLite store (stdlib): WAL mode, one writer thread, safety state fsynced.

Tables
- `safety`: the consensus core's latest Checkpoint (one row), written with `synchronous=FULL`
  in its own transaction *before* any vote or timeout that follows it leaves the process.
- `signed`: a log of the votes/timeouts/proposals this node signed (kind, round, digest), written
  in the same fsynced transaction as the checkpoint that precedes the send (signer-safety audits);
  bounded: the newest `signed_rows_kept` rows stay (the checkpoint itself carries what safety needs).
- `blocks`: every block seen (id, height, round, encoded bytes).
- `finalized`: height -> block id, proof (encoded certificates), state hash after executing it.
- `proofs`: block id -> finality proof, written with the block's finalized row.
- `snapshots`: application snapshots with their height and state hash.
- `meta`: small key/value facts (genesis hash, app name).

The blocking calls are plain methods; actors call them through `trio.to_thread.run_sync` with
`store.limiter` (capacity 1), so writes happen off the event loop and in order. Reads that the
RPC needs are cheap and go through the same limiter.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

SIGNED_ROWS_KEPT = 100_000  # newest signer-log rows kept
SIGNED_PRUNE_EVERY = 256  # checkpoint writes between prunes of the signer log

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS safety(id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
                                  record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS signed(seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                  round INTEGER NOT NULL, digest BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks(block_id BLOB PRIMARY KEY, height INTEGER NOT NULL,
                                  round INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_height ON blocks(height);
CREATE TABLE IF NOT EXISTS finalized(height INTEGER PRIMARY KEY, block_id BLOB NOT NULL,
                                     proof BLOB NOT NULL, state_hash BLOB NOT NULL,
                                     txs INTEGER NOT NULL, time_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS proofs(block_id BLOB PRIMARY KEY, proof BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots(height INTEGER PRIMARY KEY, state BLOB NOT NULL,
                                     state_hash BLOB NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class FinalizedRow:
    height: int
    block_id: bytes
    proof: bytes
    state_hash: bytes
    txs: int
    time_ms: int


class SignedRow(NamedTuple):
    """One statement in the signer log: kind (vote, timeout, proposal, ne), round, digest."""

    kind: str
    round: int
    digest: bytes


class StoreError(Exception):
    """The store file is unusable or inconsistent (a ConfigError for the operator)."""


class Store:
    """One SQLite file in WAL mode. Not thread-safe by itself: use it from one thread at a time
    (the node serialises calls through `limiter`)."""

    def __init__(self, path: Path | str, *, signed_rows_kept: int = SIGNED_ROWS_KEPT) -> None:
        self.path = Path(path)
        self.signed_rows_kept = signed_rows_kept
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: journal mode is {mode}, want wal")
        self.fsyncs = 0
        self._safety_seq = self._load_safety_seq()

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._db.close()

    def _load_safety_seq(self) -> int:
        row = self._db.execute("SELECT seq FROM safety WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    # -- safety state (synchronous=FULL) ------------------------------------------------------------

    def write_safety(self, record: bytes, signed: Iterable[SignedRow] = (),
                     blocks: Iterable[tuple[bytes, int, int, bytes]] = ()) -> int:
        """Write the checkpoint (and the blocks and signed statements that ride with it) in one
        fsynced transaction; returns its sequence number. Raises before returning if not durable."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._safety_seq += 1
                self._db.execute("INSERT OR REPLACE INTO safety(id, seq, record) VALUES (1, ?, ?)",
                                 (self._safety_seq, record))
                self._db.executemany("INSERT INTO signed(kind, round, digest) VALUES (?, ?, ?)",
                                     [(row.kind, row.round, row.digest) for row in signed])
                if self._safety_seq % SIGNED_PRUNE_EVERY == 0:
                    self._db.execute("DELETE FROM signed WHERE seq <= (SELECT MAX(seq) FROM signed) - ?",
                                     (self.signed_rows_kept,))
                self._db.executemany(
                    "INSERT OR IGNORE INTO blocks(block_id, height, round, data) VALUES (?, ?, ?, ?)",
                    list(blocks))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
            self.fsyncs += 1
            return self._safety_seq

    def read_safety(self) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM safety WHERE id = 1").fetchone()
        return bytes(row[0]) if row else None

    def signed_log(self) -> list[SignedRow]:
        with self._lock:
            rows = self._db.execute("SELECT kind, round, digest FROM signed ORDER BY seq").fetchall()
        return [SignedRow(str(kind), int(rnd), bytes(dig)) for kind, rnd, dig in rows]

    # -- blocks ---------------------------------------------------------------------------------------

    def put_blocks(self, blocks: Iterable[tuple[bytes, int, int, bytes]]) -> None:
        """Blocks outside a checkpoint: not fsynced on their own (the next FULL commit covers them)."""
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO blocks(block_id, height, round, data) VALUES (?, ?, ?, ?)",
                list(blocks))

    def get_proof(self, block_id: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT proof FROM proofs WHERE block_id = ?", (block_id,)).fetchone()
        return bytes(row[0]) if row else None

    def get_block(self, block_id: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM blocks WHERE block_id = ?", (block_id,)).fetchone()
        return bytes(row[0]) if row else None

    def blocks_from_height(self, height: int, limit: int = 100_000) -> list[bytes]:
        """Encoded blocks at `height` and above, in height order (a restarted core's block tree)."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM blocks WHERE height >= ? ORDER BY height LIMIT ?",
                                    (height, limit)).fetchall()
        return [bytes(row[0]) for row in rows]

    # -- finalized chain and ledger ---------------------------------------------------------------------

    def put_finalized(self, row: FinalizedRow, block: tuple[bytes, int, int, bytes] | None = None,
                      snapshot: tuple[bytes, bytes] | None = None) -> None:
        """Record an executed finalized block in one transaction: the finalized row, the block
        (`(id, height, round, wire bytes)`, kept if already stored) with its finality proof, and
        optionally an app snapshot at its height. Not fsynced: the block is already final on disk
        (the fsynced checkpoint's root), and a row that a power cut takes back is re-derived by
        re-executing from the root on restart (`unexecuted_finalized`); a process crash loses
        nothing (WAL)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT OR REPLACE INTO finalized(height, block_id, proof, state_hash, txs, time_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (row.height, row.block_id, row.proof, row.state_hash, row.txs, row.time_ms))
                if block is not None:
                    self._db.execute("INSERT OR IGNORE INTO blocks(block_id, height, round, data)"
                                     " VALUES (?, ?, ?, ?)", block)
                    self._db.execute("INSERT OR REPLACE INTO proofs(block_id, proof) VALUES (?, ?)",
                                     (row.block_id, row.proof))
                if snapshot is not None:
                    state, state_hash = snapshot
                    self._db.execute("INSERT OR REPLACE INTO snapshots(height, state, state_hash)"
                                     " VALUES (?, ?, ?)", (row.height, state, state_hash))
                    self._db.execute("DELETE FROM snapshots WHERE height < ?", (row.height,))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def finalized_height(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(height) FROM finalized").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def finalized_at(self, height: int) -> FinalizedRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT height, block_id, proof, state_hash, txs, time_ms FROM finalized WHERE height = ?",
                (height,)).fetchone()
        return _finalized_row(row) if row else None

    def finalized_range(self, start: int, count: int) -> list[FinalizedRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT height, block_id, proof, state_hash, txs, time_ms FROM finalized"
                " WHERE height >= ? ORDER BY height LIMIT ?", (start, count)).fetchall()
        return [_finalized_row(row) for row in rows]

    def latest_snapshot(self) -> tuple[int, bytes, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT height, state, state_hash FROM snapshots ORDER BY height DESC LIMIT 1").fetchone()
        return (int(row[0]), bytes(row[1]), bytes(row[2])) if row else None

    # -- meta -------------------------------------------------------------------------------------------

    def set_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None


def _finalized_row(row: tuple[object, ...]) -> FinalizedRow:
    height, block_id, proof, state_hash, txs, time_ms = row
    return FinalizedRow(int(height), bytes(block_id), bytes(proof),  # type: ignore[call-overload]
                        bytes(state_hash), int(txs), int(time_ms))  # type: ignore[call-overload]


def store_path(home: Path) -> Path:
    return Path(home) / "data" / "hedgerow.sqlite"


def fsync_dir(path: Path) -> None:
    """fsync a directory entry (after creating files in it)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
