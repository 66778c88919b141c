"""One node process: the actors wired together (DESIGN.md, Processes and actors).

Actors (each a trio task with a bounded inbox, under one nursery; one-cancels-all):
- `transport`: authenticated peer connections (net/); inbound consensus messages go to `consensus`.
- `consensus`: owns the MonadBFT core (validators) or the certificate-checking follower (observers);
  executes the core's actions in order, persisting (fsync) before any send.
- `timers`: the core's SetTimer deadlines, fed back to `consensus`.
- `mempool`: batches RPC submissions and peers' forwarded txs, checks signatures through the
  application (on the loop, in time slices that yield), admits to the pool and hands ready txs to
  consensus.
- `ledger`: executes FINALIZED blocks in height order through the Application, records each with
  its proof and state hash (and snapshots) in one write, then answers tx waiters.
- `rpc`: the local authenticated RPC (node/rpc.py); `metrics`: /metrics for Prometheus.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from hedgerow.node.app import Application, load_application
from hedgerow.node.config import NodeConfig
from hedgerow.node.errors import ConfigError
from hedgerow.node.mempool import ADD_OK, Mempool
from hedgerow.node.metrics import Metrics, MetricsSnapshot
from hedgerow.node.rpc import RpcServer
from hedgerow.node.runtime import Mailbox, Supervisor
from hedgerow.node.store import FinalizedRow, Store, store_path
from hedgerow.node.waiters import TxWaiter, Verdicts, WaitGroup

log = logging.getLogger("hedgerow.node")

SNAPSHOT_INTERVAL = 100
MEMPOOL_BATCH = 1024  # txs admitted per mempool step
# Signature checks run this long between two yields of the event loop. Longer slices keep the
# Ed25519 code hot in the caches and, under load, let blocks grow (fewer per-block costs): 4 ms
# cut the nodes' CPU per tx by ~3 % against 2 ms; 6 ms slowed rounds into timeouts.
CHECK_SLICE_S = 0.004
MEMPOOL_TTL_S = 120.0
SUBMIT_BATCH_MAX = 4096  # txs in one submit_batch request
WAITS = ("none", "speculative", "final")
TX_HASHES_KEPT = 256  # blocks whose tx hashes are memoised


@dataclass(frozen=True)
class CommittedBlock:
    """A finalized block as the ledger needs it (from the core, from sync, or from the store)."""

    height: int
    block_id: bytes
    timestamp_ms: int
    txs: tuple[bytes, ...]
    proof: bytes
    round: int = 0
    data: bytes = b""  # the block's wire bytes, stored with its finalized row; b"" when replayed


def tx_hash_of(tx: bytes) -> bytes:
    return hashlib.sha256(tx).digest()


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.key = config.signing_key()
        self.genesis = config.genesis()
        self.chain_id = self.genesis.chain_id
        self.index = self.genesis.index_of(self.key.public.raw)
        self.role = "validator" if self.index is not None and config.role == "validator" else "observer"
        self.node_id = self.key.node_id.hex()
        try:
            self.app: Application = load_application(config.app or self.genesis.app, self.chain_id,
                                                     self.genesis.raw)
        except (ValueError, ImportError) as error:
            raise ConfigError(str(error)) from None
        mp = config.mempool
        self.mempool = Mempool(txs_max=int(mp.get("txs_max", 10_000)),
                               bytes_max=int(mp.get("bytes_max", 16 * 1024 * 1024)))
        self.store: Store | None = None
        self.limiter = trio.CapacityLimiter(1)
        self.supervisor = Supervisor()
        self.metrics = Metrics()
        self.ledger_inbox: Mailbox[CommittedBlock] = Mailbox("ledger", 1024)
        # Items: (txs, reply): one RPC submission with its reply, or a peer's forwarded batch.
        self.mempool_inbox: Mailbox[tuple[Sequence[bytes], Verdicts | None]] = Mailbox("mempool", 16384)
        self.waiters: dict[bytes, TxWaiter] = {}
        self.height = 0
        self.state_hash = self.app.state_hash()
        self.last_commit_at: float | None = None
        self.commits = 0
        self.txs_committed = 0
        self.started_at = time.monotonic()
        self.consensus: Any = None  # ConsensusDriver (validators) or Follower (observers)
        self.rpc_server: RpcServer | None = None
        self.ports: dict[str, int] = {}
        self.ledger_ready = trio.Event()
        self.proposed_txs = 0
        self._tx_hashes: dict[bytes, list[bytes]] = {}  # block id -> its tx hashes (recent blocks)

    # -- store access off the event loop -------------------------------------------------------------

    async def db(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def open_store(self) -> Store:
        store = Store(store_path(self.config.home))
        known = store.get_meta("genesis_hash")
        if known is None:
            store.set_meta("genesis_hash", self.genesis.genesis_hash)
        elif known != self.genesis.genesis_hash:
            store.close()
            raise ConfigError(f"{self.config.home}: the store belongs to another genesis "
                              f"({known.hex()[:16]} != {self.genesis.genesis_hash.hex()[:16]})")
        self.store = store
        return store

    # -- status --------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        age = None if self.last_commit_at is None else int((time.monotonic() - self.last_commit_at) * 1000)
        info: dict[str, Any] = {
            "name": self.config.name, "node_id": self.node_id, "role": self.role, "index": self.index,
            "chain_id": self.chain_id, "genesis_hash": self.genesis.genesis_hash.hex(),
            "app": self.app.name, "height": self.height,
            "state_hash": self.state_hash.hex(), "last_commit_age_ms": age, "commits": self.commits,
            "txs_committed": self.txs_committed, "mempool": self.mempool.stats(),
            "uptime_s": round(time.monotonic() - self.started_at, 3), "ports": dict(self.ports),
            "round": None, "leader": None, "peers": 0, "tx_waiters": len(self.waiters),
        }
        if self.consensus is not None:
            info.update(self.consensus.status())
        return info

    def metrics_snapshot(self) -> MetricsSnapshot:
        status = self.status()
        values = {"height": float(self.height), "round": float(status.get("round") or 0),
                  "peers": float(status.get("peers") or 0), "mempool_txs": float(len(self.mempool)),
                  "tx_per_second": self.metrics.tx_rate(),
                  "last_commit_age_seconds": (status["last_commit_age_ms"] or 0) / 1000.0}
        counters = {"commits": float(self.commits), "txs_committed": float(self.txs_committed),
                    "fsyncs": float(self.store.fsyncs if self.store else 0),
                    "rpc_requests": float(self.rpc_server.requests if self.rpc_server else 0),
                    "timeouts": float(status.get("timeouts") or 0)}
        views = status.get("view_changes")
        if views is not None:  # the view changes a validator's driver logged (0 until the first)
            for name in ("round_timeouts", "tcs", "necs", "reverts"):
                counters[name] = float(views.get(name, 0))
        dropped: dict[str, float] = {}
        for source in (status.get("dropped") or {}, self.rpc_server.rejected if self.rpc_server else {}):
            for reason, count in source.items():
                dropped[reason] = dropped.get(reason, 0.0) + float(count)
        return MetricsSnapshot(values, counters, dropped)

    # -- ledger --------------------------------------------------------------------------------------

    async def recover_ledger(self) -> None:
        """Load the newest snapshot, then replay the finalized blocks recorded after it."""
        store = self.store
        assert store is not None
        snapshot = await self.db(store.latest_snapshot)
        if snapshot is not None:
            height, state, state_hash = snapshot
            self.app.restore(state)
            if self.app.state_hash() != state_hash:
                raise ConfigError(f"snapshot at height {height}: state hash mismatch after restore")
            self.height, self.state_hash = height, state_hash
        top = await self.db(store.finalized_height)
        while self.height < top:
            rows = await self.db(store.finalized_range, self.height + 1, 64)
            for row in rows:
                block = await self.load_committed(row.block_id, row.height, row.proof)
                self._execute(block, expected=row.state_hash)
        self.last_commit_at = time.monotonic() if self.height else None

    async def load_committed(self, block_id: bytes, height: int, proof: bytes) -> CommittedBlock:
        if self.consensus is None:
            raise ConfigError("ledger replay needs the consensus layer to decode blocks")
        store = self.store
        assert store is not None
        data = await self.db(store.get_block, block_id)
        if data is None:
            raise ConfigError(f"store: finalized block {block_id.hex()[:16]} at height {height} missing")
        block: CommittedBlock = self.consensus.committed_from_bytes(data, proof)
        return block

    def _execute(self, block: CommittedBlock, expected: bytes | None = None) -> list[Any]:
        if block.height != self.height + 1:
            raise ConfigError(f"ledger: block at height {block.height} after {self.height}")
        results, state_hash = self.app.execute_block(block.height, block.timestamp_ms, list(block.txs))
        if expected is not None and state_hash != expected:
            raise ConfigError(f"ledger replay diverged at height {block.height}")
        self.height = block.height
        self.state_hash = state_hash
        return results

    async def ledger_actor(self) -> None:
        store = self.store
        assert store is not None
        self.ledger_ready.set()
        while True:
            block = await self.ledger_inbox.receive()
            if block.height <= self.height:
                continue  # delivered at least once: already executed
            # Signature checks of txs this node has not checked yet (a block can finalize before
            # forwarded copies clear the mempool's queue) run in slices that yield between them;
            # execution then finds every check in the application's cache.
            await self.check_txs(block.txs)
            results = self._execute(block)
            snapshot = None
            if block.height % SNAPSHOT_INTERVAL == 0:
                snapshot = (self.app.snapshot(), self.state_hash)
            row = FinalizedRow(block.height, block.block_id, block.proof, self.state_hash, len(block.txs),
                               int(time.time() * 1000))
            stored = (block.block_id, block.height, block.round, block.data) if block.data else None
            await self.db(store.put_finalized, row, stored, snapshot)
            self.commits += 1
            self.txs_committed += len(block.txs)
            self.last_commit_at = time.monotonic()
            self.metrics.note_commit(len(block.txs))
            hashes = self.tx_hashes(block.block_id, block.txs)
            self.mempool.remove(hashes)
            for tx_hash, result in zip(hashes, results, strict=True):
                waiter = self.waiters.get(tx_hash)
                if waiter is not None:
                    waiter.mark_final(block.height, result)
            if self.consensus is not None:
                self.consensus.on_executed(block, hashes)

    def tx_hashes(self, block_id: bytes, txs: Sequence[bytes]) -> list[bytes]:
        """A block's tx hashes in order, computed once per block (voted, marked final, executed)."""
        hashes = self._tx_hashes.get(block_id)
        if hashes is None:
            hashes = self._tx_hashes[block_id] = [tx_hash_of(tx) for tx in txs]
            if len(self._tx_hashes) > TX_HASHES_KEPT:
                del self._tx_hashes[next(iter(self._tx_hashes))]
        return hashes

    def note_speculative(self, block_id: bytes, txs: Sequence[bytes]) -> None:
        if not self.waiters:
            return
        for tx_hash in self.tx_hashes(block_id, txs):
            waiter = self.waiters.get(tx_hash)
            if waiter is not None:
                waiter.mark_speculative()

    # -- mempool -------------------------------------------------------------------------------------

    async def mempool_actor(self) -> None:
        inbox = self.mempool_inbox
        while True:
            batch = [await inbox.receive()]
            count = len(batch[0][0])
            while count < MEMPOOL_BATCH:  # whatever else is waiting, admitted in one step
                try:
                    batch.append(inbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                count += len(batch[-1][0])
            txs = [tx for item, _ in batch for tx in item]
            checks = iter(await self.check_txs(txs))
            from_clients: list[bytes] = []
            now = time.monotonic()
            add, nonce = self.mempool.add, self.app.account_nonce
            for item, reply in batch:
                verdicts = []
                for tx in item:
                    check = next(checks)
                    verdicts.append(add(tx, check, nonce(check.sender) if check.ok else 0, now=now))
                if reply is not None:
                    from_clients += [tx for tx, ok in zip(item, verdicts, strict=True) if ok == ADD_OK]
                    reply.set(verdicts)
            self.mempool.evict_older(time.monotonic() - MEMPOOL_TTL_S)
            if from_clients and self.consensus is not None:
                self.consensus.forward_txs(from_clients)

    def payload_source(self, txs_max: int, bytes_max: int, exclude: frozenset[bytes]) -> list[bytes]:
        """What this node proposes when it leads: ready txs of its mempool (core PayloadSource)."""
        txs = self.mempool.reap_ready(txs_max, bytes_max, exclude, self.app.account_nonce)
        self.proposed_txs += len(txs)
        return txs

    async def check_txs(self, txs: Sequence[bytes]) -> list[Any]:
        """The application's checks of `txs` (signatures: the node's main CPU cost), on the event
        loop in slices of CHECK_SLICE_S with a yield after each, so consensus and RPC steps interleave.
        Not in a worker thread (`cryptography` releases the GIL while verifying): measured on the
        throughput bench, the thread hops and the faster, smaller blocks cost more CPU per tx."""
        checks = []
        append, check, clock = checks.append, self.app.check_tx, time.perf_counter
        deadline = clock() + CHECK_SLICE_S
        for tx in txs:
            append(check(tx))
            if clock() >= deadline:
                await trio.sleep(0)
                deadline = clock() + CHECK_SLICE_S
        return checks

    async def submit(self, txs: Sequence[bytes], wait: str, timeout_s: float) -> list[dict[str, Any]]:
        """Admit `txs` (one mempool hop, one signature-check batch) and wait until every admitted one
        is speculative or final (or `timeout_s` passes); one result per tx, in order."""
        if wait not in WAITS:
            raise ValueError("wait must be none, speculative or final")
        hashes = [tx_hash_of(tx) for tx in txs]
        if self.role != "validator":
            return [{"tx_hash": h, "result": "not_validator", "status": "rejected"} for h in hashes]
        group = WaitGroup() if wait != "none" else None
        mine: dict[int, TxWaiter] = {}  # by position; a hash already waited on (a copy) gets none
        if group is not None:
            for position, tx_hash in enumerate(hashes):
                if tx_hash not in self.waiters:
                    mine[position] = self.waiters[tx_hash] = TxWaiter(group)
            group.expect(len(mine))
        reply = Verdicts()
        try:
            if not self.mempool_inbox.try_send((txs, reply)):
                return [{"tx_hash": h, "result": "busy", "status": "rejected"} for h in hashes]
            await reply.event.wait()
            if group is not None:
                for position, verdict in enumerate(reply.values):
                    if verdict != ADD_OK and position in mine:
                        group.forget(mine[position])  # not admitted: nothing to wait for
                with trio.move_on_after(timeout_s):
                    await (group.final if wait == "final" else group.speculative).wait()
            return [self._submit_result(tx_hash, verdict, mine.get(position))
                    for position, (tx_hash, verdict) in enumerate(zip(hashes, reply.values, strict=True))]
        finally:
            for position, waiter in mine.items():
                if self.waiters.get(hashes[position]) is waiter:
                    del self.waiters[hashes[position]]

    def _submit_result(self, tx_hash: bytes, verdict: str, waiter: TxWaiter | None) -> dict[str, Any]:
        if verdict != ADD_OK:
            return {"tx_hash": tx_hash, "result": verdict, "status": "rejected"}
        if waiter is None:
            return {"tx_hash": tx_hash, "result": "ok", "status": "pending"}
        return {"tx_hash": tx_hash, "result": "ok", "status": waiter.status, "height": waiter.height,
                "tx_result": waiter.result, "node": self.config.name, **waiter.latencies_ms()}

    # -- RPC -----------------------------------------------------------------------------------------

    def rpc_handlers(self) -> dict[str, Any]:
        async def status(params: dict[str, Any]) -> Any:
            return self.status()

        async def submit(params: dict[str, Any]) -> Any:
            tx = params.get("tx")
            if not isinstance(tx, bytes):
                raise ValueError("submit needs tx (bytes)")
            results = await self.submit((tx,), str(params.get("wait", "none")),
                                        float(params.get("wait_timeout_s", 30.0)))
            return results[0]

        async def submit_batch(params: dict[str, Any]) -> Any:
            """Many txs in one request: one result per tx, in order (each as `submit` answers)."""
            txs = params.get("txs")
            if not isinstance(txs, list) or not 0 < len(txs) <= SUBMIT_BATCH_MAX \
                    or not all(isinstance(tx, bytes) for tx in txs):
                raise ValueError(f"submit_batch needs txs: a list of 1..{SUBMIT_BATCH_MAX} byte strings")
            return await self.submit(txs, str(params.get("wait", "none")),
                                     float(params.get("wait_timeout_s", 30.0)))

        async def query(params: dict[str, Any]) -> Any:
            return self.app.query(str(params.get("path", "")), dict(params.get("args") or {}))

        async def genesis(params: dict[str, Any]) -> Any:
            return {"genesis": self.config.genesis_path.read_bytes(),
                    "genesis_hash": self.genesis.genesis_hash.hex()}

        async def finalized(params: dict[str, Any]) -> Any:
            store = self.store
            assert store is not None
            start, count = int(params.get("start", 1)), min(int(params.get("count", 100)), 1000)
            rows = await self.db(store.finalized_range, start, count)
            return [{"height": r.height, "block_id": r.block_id, "state_hash": r.state_hash, "txs": r.txs}
                    for r in rows]

        async def blocks(params: dict[str, Any]) -> Any:
            """Finalized blocks with their proofs, for followers (observers) to verify and execute."""
            store = self.store
            assert store is not None
            start, count = int(params.get("start", 1)), min(int(params.get("count", 64)), 256)
            rows = await self.db(store.finalized_range, start, count)
            out = []
            for row in rows:
                data = await self.db(store.get_block, row.block_id)
                if data is None:
                    break
                out.append({"height": row.height, "block": data, "proof": row.proof})
            return out

        async def signed_log(params: dict[str, Any]) -> Any:
            store = self.store
            assert store is not None
            rows = await self.db(store.signed_log)
            return [[r.kind, r.round, r.digest] for r in rows]

        async def peers(params: dict[str, Any]) -> Any:
            return self.consensus.peers() if self.consensus is not None else []

        async def mempool(params: dict[str, Any]) -> Any:
            ready = self.mempool.reap_ready(1_000_000, 1 << 40, frozenset(), self.app.account_nonce)
            return {**self.mempool.stats(), "ready": len(ready), "rejected": dict(self.mempool.rejected),
                    "proposed_txs": self.proposed_txs}

        handlers: dict[str, Any] = {"mempool": mempool, "status": status, "submit": submit,
                                    "submit_batch": submit_batch, "query": query,
                                    "genesis": genesis, "finalized": finalized, "blocks": blocks,
                                    "signed_log": signed_log, "peers": peers}
        if self.consensus is not None:
            handlers.update(self.consensus.rpc_handlers())
        return handlers

    # -- running -------------------------------------------------------------------------------------

    async def run(self, *, handle_signals: bool = True,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> int:
        """Open the store, rebuild from disk, start every actor; returns the exit code. SIGINT and
        SIGTERM are caught from the first line on: one arriving during start-up stops the node
        gracefully as soon as its actors run."""
        if not handle_signals:
            return await self._run(None, task_status)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            return await self._run(signals, task_status)

    async def _run(self, signals: Any, task_status: trio.TaskStatus[None]) -> int:
        store = self.open_store()
        try:
            if self.role == "validator":
                from hedgerow.node.consensus import ConsensusDriver

                driver = ConsensusDriver(self)
                self.consensus = driver
                await driver.build_core()
            else:
                from hedgerow.node.follower import Follower

                self.consensus = Follower(self)
            await self.recover_ledger()
            if self.role == "validator":
                for block in await self.consensus.unexecuted_finalized(self.height):
                    self.mempool.mark_finalized(tx_hash_of(tx) for tx in block.txs)  # never proposed again
                    await self.ledger_inbox.send(block)
        except BaseException:
            store.close()
            raise
        sup = self.supervisor
        self.rpc_server = RpcServer(self.chain_id, self.node_id, self.rpc_handlers())
        started = trio.Event()

        async def network() -> None:
            async with trio.open_nursery() as nursery:
                await self.consensus.run(nursery)
                started.set()

        async def rpc() -> None:
            assert self.rpc_server is not None
            await self.rpc_server.serve(self.config.rpc_host, self.config.rpc_port)

        async def metrics() -> None:
            if self.config.metrics_port is None:
                return
            self.ports["metrics"] = self.metrics.serve(self.config.metrics_host, self.config.metrics_port)
            await self.metrics.run(self.metrics_snapshot)

        async def announce() -> None:
            await started.wait()
            self.ports["rpc"] = self.config.rpc_port
            print(f"event=started name={self.config.name} role={self.role} node_id={self.node_id} "
                  f"home={self.config.home} p2p={self.config.p2p_host}:{self.ports.get('p2p')} "
                  f"rpc={self.config.rpc_host}:{self.config.rpc_port} "
                  f"metrics={self.config.metrics_host}:{self.config.metrics_port} "
                  f"height={self.height}", flush=True)
            task_status.started()

        async def close_store() -> None:
            await self.db(store.close)

        sup.add("ledger", self.ledger_actor)
        sup.add("mempool", self.mempool_actor)
        sup.add("consensus", network)
        try:  # compute worker, rounds actor and their router (issues 6-8)
            from hedgerow.node.actor_compute import install as install_compute_and_rounds

            install_compute_and_rounds(self, sup)
        except ImportError as error:  # an optional subsystem must not take consensus down with it
            log.error("event=compute_disabled node=%s reason=%s", self.config.name, error)
            print(f"event=compute_disabled reason={error}", flush=True)
        sup.add("rpc", rpc)
        sup.add("metrics", metrics)
        sup.add("announce", announce)
        sup.on_shutdown(close_store)
        return await sup.run(handle_signals=signals is not None, signals=signals)
