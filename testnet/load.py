"""Transaction load for live testnets: signed kv transactions from many senders, submitted over the
pipelined RPC client, open loop (`submit_all`) or in a background thread (`BackgroundLoad`)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio

from hedgerow.node.app_kv import make_tx
from hedgerow.node.rpc_client import AsyncRpcClient, RpcCallError
from hedgerow.protocols.crypto import SigningKey


def make_txs(chain_id: str, senders: int, per_sender: int, *, tag: str = "load") -> list[bytes]:
    """`senders * per_sender` txs, interleaved so each sender's nonces ascend in list order."""
    keys = [SigningKey.from_label(f"{tag}-{i}") for i in range(senders)]
    return [make_tx(keys[s], chain_id, nonce, body=[f"{tag}-{s}".encode(), str(nonce).encode()])
            for nonce in range(per_sender) for s in range(senders)]


@dataclass
class SubmitResult:
    results: list[dict[str, Any]]
    latencies_s: list[float]
    elapsed_s: float
    verdicts: Counter[str] = field(default_factory=Counter)


async def submit_all(ports: list[int], txs: list[bytes], *, wait: str = "none", in_flight: int = 256,
                     timeout_s: float = 60.0, rate_tps: float | None = None,
                     chain_id: str | None = None, batch_txs: int = 1) -> SubmitResult:
    """Submit every tx, at most `in_flight` outstanding, optionally paced at `rate_tps` (open loop),
    `batch_txs` consecutive txs at a time (split per node, one `submit_batch` request each).
    Requests leave in list order and all txs of one sender go to the same node, so per-sender nonce
    order is kept (a window of in-flight txs never waits on a nonce that was not sent yet).
    Returns per-tx results and submit->reply latencies."""
    key = SigningKey.generate()
    clients = [await AsyncRpcClient.connect("127.0.0.1", port, key, chain_id) for port in ports]
    results: list[dict[str, Any]] = [{} for _ in txs]
    latencies: list[float] = [0.0] * len(txs)
    batch_txs = max(1, batch_txs)
    slots = trio.Semaphore(max(1, in_flight // batch_txs))
    started = time.perf_counter()

    async def finish(indices: list[int], client: AsyncRpcClient, receive: Any, t0: float) -> None:
        try:
            replies = await client.finish(receive)
        except RpcCallError as error:
            replies = [{"result": f"error: {error}"}] * len(indices)
        finally:
            slots.release()
        done = time.perf_counter() - t0
        for i, reply in zip(indices, replies, strict=True):
            results[i], latencies[i] = reply, done

    async with trio.open_nursery() as readers:
        for client in clients:
            readers.start_soon(client.run_reader)
        async with trio.open_nursery() as nursery:
            for first in range(0, len(txs), batch_txs):
                if rate_tps:
                    delay = started + first / rate_tps - time.perf_counter()
                    if delay > 0:
                        await trio.sleep(delay)
                per_node: dict[int, list[int]] = {}
                for i in range(first, min(first + batch_txs, len(txs))):
                    per_node.setdefault(_route(txs[i], len(clients)), []).append(i)
                for node, indices in per_node.items():
                    await slots.acquire()
                    t0 = time.perf_counter()
                    receive = await clients[node].start("submit_batch", txs=[txs[i] for i in indices],
                                                        wait=wait, wait_timeout_s=timeout_s)
                    nursery.start_soon(finish, indices, clients[node], receive, t0)
        for client in clients:
            await client.aclose()
        readers.cancel_scope.cancel()
    verdicts = Counter(str(r.get("status") if r.get("result") == "ok" else r.get("result")) for r in results)
    return SubmitResult(results, latencies, time.perf_counter() - started, verdicts)


def _route(tx: bytes, count: int) -> int:
    """The node (index) for a tx: by its signer (envelope field 3), so one sender uses one node."""
    try:
        signer = msgpack.unpackb(tx, raw=False)[3]
    except (ValueError, IndexError, TypeError, msgpack.UnpackException):
        return hash(tx) % count
    return int.from_bytes(hashlib.sha256(bytes(signer)).digest()[:4], "big") % count


class BackgroundLoad:
    """Submits txs at a steady rate from a thread until stopped (survives nodes going away)."""

    def __init__(self, ports: list[int], chain_id: str, *, rate_tps: float = 100.0, tag: str = "bg") -> None:
        self.ports = ports
        self.chain_id = chain_id
        self.rate_tps = rate_tps
        self.tag = tag
        self.accepted = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hedgerow-load", daemon=True)

    def start(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from hedgerow.node.rpc_client import RpcClient

        key = SigningKey.generate()
        senders = [SigningKey.from_label(f"{self.tag}-{i}") for i in range(32)]
        nonces = [0] * len(senders)
        clients: dict[int, Any] = {}
        i = 0
        while not self._stop.is_set():
            port = self.ports[i % len(self.ports)]
            s = i % len(senders)
            tx = make_tx(senders[s], self.chain_id, nonces[s], body=[f"{self.tag}-{s}".encode(), b"x"])
            try:
                client = clients.get(port) or RpcClient.connect("127.0.0.1", port, key, timeout_s=2.0,
                                                                chain_id=self.chain_id)
                clients[port] = client
                reply = client.call("submit", timeout_s=2.0, tx=tx, wait="none")
                if reply.get("result") == "ok":
                    self.accepted += 1
                    nonces[s] += 1
                else:
                    self.failed += 1
            except (RpcCallError, OSError):
                self.failed += 1
                old = clients.pop(port, None)
                if old is not None:
                    old.close()
            i += 1
            self._stop.wait(1.0 / self.rate_tps)
        for client in clients.values():
            client.close()
