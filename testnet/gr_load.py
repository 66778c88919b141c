"""Grassroots load for scenarios: signed ledger transactions at a steady rate over the node RPC.

Each account (a `protocols.grassroots.client.Client`, key `SigningKey.from_label`) runs in its own
thread: it mints its own coins once, then transfers one coin at a time to the next account, each
submitted with `wait = "final"` to a running validator (round robin, skipping killed and paused
ones). A reply with status `final` is an *acknowledgement*: the node promises the tx is committed
at that height, and the scenario checks later that it is, exactly once. Anything else (a timeout,
a node killed under the call, a rejection) leaves the tx unacknowledged; the account then re-reads
its nonce from a node and carries on.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hedgerow.node.rpc_client import RpcCallError, RpcClient
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.testnet.launcher import Testnet, pid_alive

MINT_AMOUNT = 10**9


def tx_hash(tx: bytes) -> bytes:
    return hashlib.sha256(tx).digest()


@dataclass
class LoadStats:
    submitted: set[bytes] = field(default_factory=set)
    acknowledged: dict[bytes, int] = field(default_factory=dict)  # tx hash -> height the node reported
    rejected: int = 0
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class GrassrootsLoad:
    """Background grassroots transactions against a testnet until `stop()`."""

    def __init__(
        self,
        testnet: Testnet,
        *,
        rate_tps: float = 10.0,
        accounts: int = 4,
        tag: str = "load",
        ack_timeout_s: float = 5.0,
    ) -> None:
        self.testnet = testnet
        self.rate_tps = max(0.1, rate_tps)
        self.accounts = max(2, accounts)
        self.ack_timeout_s = ack_timeout_s
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._key = SigningKey.generate()
        self._clients = [
            Client(SigningKey.from_label(f"{tag}/{i}"), testnet.chain_id) for i in range(self.accounts)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"hedgerow-load-{i}", daemon=True)
            for i in range(self.accounts)
        ]

    def start(self) -> GrassrootsLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.ack_timeout_s + 10)
        return self.stats

    # -- one account ------------------------------------------------------------------------------

    def _targets(self) -> list[str]:
        out = []
        for name, rec in self.testnet.nodes.items():
            if rec.role == "validator" and rec.pid is not None and not rec.paused and pid_alive(rec.pid):
                out.append(name)
        return out

    def _run(self, index: int) -> None:
        client = self._clients[index]
        peer = self._clients[(index + 1) % self.accounts].account
        connections: dict[str, RpcClient] = {}
        interval = self.accounts / self.rate_tps
        next_at = time.monotonic() + interval * index / self.accounts
        minted = False
        turn = index
        try:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
                targets = self._targets()
                if not targets:
                    continue
                name = targets[turn % len(targets)]
                turn += 1
                tx = (
                    client.mint(0, MINT_AMOUNT)
                    if not minted
                    else client.transfer(peer, [(client.account, 0, 1)])
                )
                status = self._submit(connections, name, tx)
                if status == "final":
                    minted = True
                elif status is not None:
                    self._resync(connections, name, client)
        finally:
            for conn in connections.values():
                conn.close()

    def _submit(self, connections: dict[str, RpcClient], name: str, tx: bytes) -> str | None:
        """The tx's status, "final" when acknowledged; None when the node never answered."""
        digest = tx_hash(tx)
        with self.stats.lock:
            self.stats.submitted.add(digest)
        try:
            conn = connections.get(name) or self.testnet.client(name, timeout_s=2.0)
            connections[name] = conn
            reply: dict[str, Any] = conn.call(
                "submit",
                timeout_s=self.ack_timeout_s + 2.0,
                tx=tx,
                wait="final",
                wait_timeout_s=self.ack_timeout_s,
            )
        except (RpcCallError, OSError):
            old = connections.pop(name, None)
            if old is not None:
                old.close()
            with self.stats.lock:
                self.stats.unanswered += 1
            return None
        if reply.get("result") == "ok" and reply.get("status") == "final":
            with self.stats.lock:
                self.stats.acknowledged[digest] = int(reply["height"])
            return "final"
        with self.stats.lock:
            self.stats.rejected += 1
        return str(reply.get("result") if reply.get("result") != "ok" else reply.get("status"))

    def _resync(self, connections: dict[str, RpcClient], name: str, client: Client) -> None:
        try:
            conn = connections.get(name) or self.testnet.client(name, timeout_s=2.0)
            connections[name] = conn
            nonce = conn.call("query", timeout_s=3.0, path="nonce", args={"account": client.account.hex()})
            client.nonce = int(nonce)
        except (RpcCallError, OSError, ValueError, TypeError):
            old = connections.pop(name, None)
            if old is not None:
                old.close()
