"""`/metrics` for Prometheus (prometheus-client): height, round, commits, tx/s, peers, frames dropped
by reason, timeouts, view changes (TCs, NECs, reverts), mempool size, fsyncs.

The node's actors keep plain counters on the trio thread; the `metrics` actor copies them into an
immutable snapshot every `interval_s`, and the exporter thread (prometheus-client's HTTP server)
reads only that snapshot, so no live structure is shared across threads.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import trio
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class MetricsSnapshot:
    values: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, float] = field(default_factory=dict)


HELP = {
    "height": "last finalized and executed height",
    "round": "current consensus round",
    "peers": "connected peers",
    "tx_per_second": "committed transactions per second over the last 10 s",
    "mempool_txs": "transactions waiting in the mempool",
    "last_commit_age_seconds": "seconds since the last finalized block",
    "commits": "finalized blocks executed",
    "txs_committed": "transactions in executed finalized blocks",
    "timeouts": "consensus round timers that fired",
    "round_timeouts": "rounds this validator signed a timeout for",
    "tcs": "timeout certificates that became this validator's high certificate",
    "necs": "no-endorsement certificates in proposals this validator accepted",
    "reverts": "speculatively final blocks reverted",
    "fsyncs": "fsynced store transactions",
    "rpc_requests": "RPC requests served",
}


class _NodeCollector(Collector):
    def __init__(self, read: Callable[[], MetricsSnapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        snapshot = self._read()
        for name, value in sorted(snapshot.values.items()):
            yield GaugeMetricFamily(f"hedgerow_{name}", HELP.get(name, name), value=value)
        for name, value in sorted(snapshot.counters.items()):
            yield CounterMetricFamily(f"hedgerow_{name}", HELP.get(name, name), value=value)
        dropped = CounterMetricFamily("hedgerow_frames_dropped", "frames dropped, by reason",
                                      labels=["reason"])
        for reason, value in sorted(snapshot.dropped.items()):
            dropped.add_metric([reason], value)
        yield dropped


class Metrics:
    """Owns the registry and the exporter; `update(snapshot)` is called on the trio thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot = MetricsSnapshot()
        self.registry.register(_NodeCollector(lambda: self._snapshot))
        self._commits: deque[tuple[float, int]] = deque(maxlen=4096)
        self.port: int | None = None

    def serve(self, host: str, port: int) -> int:
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(server.server_port)
        return self.port

    def note_commit(self, txs: int, now: float | None = None) -> None:
        self._commits.append((time.monotonic() if now is None else now, txs))

    def tx_rate(self, window_s: float = 10.0) -> float:
        now = time.monotonic()
        recent = sum(txs for at, txs in self._commits if now - at <= window_s)
        return recent / window_s

    def update(self, snapshot: MetricsSnapshot) -> None:
        self._snapshot = snapshot

    async def run(self, take: Callable[[], MetricsSnapshot], interval_s: float = 0.5) -> None:
        while True:
            self.update(take())
            await trio.sleep(interval_s)
