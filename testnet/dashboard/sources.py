"""Blocking readers the dashboard's collector calls from a worker thread, one per data source:

- `scrape_metrics(port)`: a node's Prometheus `/metrics` (tx/s, timeouts, commits, mempool size, and
  the view-change counters `hedgerow_{round_timeouts,tcs,necs,reverts}_total` where a node has them);
- `LogTail`: structured `event=NAME key=value` lines the nodes write to `data/logs/node.log`
  (`event=timeout|tc|nec round=R`, `event=revert height=H ... evidence=...`, evidence, starts);
- `ledger_view(testnet, name)`: the grassroots ledger through the node RPC `query` (supply per issuer,
  open offers, escrows and claims, and the liquidity ratios and defaults of the issuers);
- `read_jobs(directory)`: compute-job progress files `DIR/jobs/*.jsonl`, one JSON object a line
  (`{"job", "kind", "iteration", "residual" or "loss", "stragglers", "done"}`), which a job run
  against the testnet (`hedgerow job newton|train --dir DIR`) writes with `testnet.joblog.JobLog`.

Each reader bounds what it reads (bytes, rows, time) and never raises on a node that went away.
"""

from __future__ import annotations

import json
import shlex
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hedgerow.node.rpc_client import RpcCallError
from hedgerow.testnet.launcher import Testnet

METRICS_TIMEOUT_S = 0.5
LOG_BYTES_MAX = 64 * 1024  # per node and tick
LOG_EVENTS_IGNORED = frozenset({"commit"})  # too frequent for a timeline
LEDGER_ROWS_MAX = 50
RATIO_ACCOUNTS_MAX = 8
JOB_POINTS_MAX = 400
METRIC_NAMES = ("tx_per_second", "timeouts", "commits", "txs_committed", "mempool_txs",
                "round_timeouts", "tcs", "necs", "reverts")  # the last four: nodes that report view changes


def scrape_metrics(port: int, timeout_s: float = METRICS_TIMEOUT_S) -> dict[str, float]:
    """The `hedgerow_*` samples of a node's /metrics, keyed without the prefix (`_total` dropped)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as reply:
            text = reply.read(1 << 20).decode("utf-8", "replace")
    except (OSError, ValueError):
        return {}
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name.removeprefix("hedgerow_").removesuffix("_total")
                if name in METRIC_NAMES and not sample.labels:
                    values[name] = float(sample.value)
    except ValueError:
        return {}
    return values


def parse_event_line(line: str) -> dict[str, str] | None:
    """`event=spec_revert node=v1 block=ab12` -> {"event": "spec_revert", "node": "v1", ...}."""
    if "event=" not in line:
        return None
    start = line.index("event=")
    fields: dict[str, str] = {}
    try:
        words = shlex.split(line[start:])
    except ValueError:
        words = line[start:].split()
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key.isidentifier():
            fields[key] = value[:200]
    return fields if fields.get("event") else None


class LogTail:
    """New `event=` lines of each node's log since the last call (starts at the current end)."""

    def __init__(self) -> None:
        self._offsets: dict[Path, int] = {}

    def read(self, name: str, path: Path) -> list[dict[str, str]]:
        try:
            size = path.stat().st_size
        except OSError:
            return []
        offset = self._offsets.get(path)
        if offset is None or size < offset:  # first look, or the log was rotated / truncated
            offset = size if offset is None else 0
        with open(path, "rb") as log:
            log.seek(offset)
            chunk = log.read(LOG_BYTES_MAX)
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self._offsets[path] = offset + end
        events = []
        for raw in chunk[:end].decode("utf-8", "replace").splitlines():
            fields = parse_event_line(raw)
            if fields is not None and fields["event"] not in LOG_EVENTS_IGNORED:
                fields.setdefault("node", name)
                events.append(fields)
        return events


def ledger_view(testnet: Testnet, name: str, accounts: list[str] | None = None,
                timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Supply, open contracts and the ratios of `accounts` (hex; default: the issuers) from one node's
    grassroots ledger (None: no answer)."""
    try:
        with testnet.client(name, timeout_s) as client:
            supply = client.call("query", timeout_s=timeout_s, path="supply", args={})
            contracts = client.call("query", timeout_s=timeout_s, path="contracts", args={})
            chosen = accounts or sorted({row["issuer"] for row in supply})
            ratios = [client.call("query", timeout_s=timeout_s, path="ratios", args={"agent": agent})
                      for agent in chosen[:RATIO_ACCOUNTS_MAX]]
    except (RpcCallError, OSError, KeyError, TypeError):
        return None
    open_contracts = [c for c in contracts if str(c.get("state", "")).upper() in ("OPEN", "LOCKED")]
    counts: dict[str, int] = {}
    for contract in open_contracts:
        counts[contract["type"]] = counts.get(contract["type"], 0) + 1
    return {"from": name, "supply": supply[:LEDGER_ROWS_MAX], "open_counts": counts,
            "open_contracts": open_contracts[:LEDGER_ROWS_MAX],
            "accounts": [{"agent": r["agent"], "ratios": r["ratios"], "default_count": r["default_count"],
                          "in_default": r["in_default"], "net_position": r["net_position"]} for r in ratios]}


def read_jobs(directory: Path) -> list[dict[str, Any]]:
    """Progress of the compute jobs that log under `DIR/jobs/` (latest JOB_POINTS_MAX points each)."""
    jobs = []
    for path in sorted((Path(directory) / "jobs").glob("*.jsonl"))[:16]:
        points: list[dict[str, Any]] = []
        try:
            lines = path.read_text(errors="replace").splitlines()[-JOB_POINTS_MAX:]
        except OSError:
            continue
        for line in lines:
            try:
                point = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(point, dict):
                points.append(point)
        if not points:
            continue
        last = points[-1]
        metric = "residual" if "residual" in last else "loss"
        jobs.append({"job": str(last.get("job", path.stem)), "kind": str(last.get("kind", "")),
                     "metric": metric, "iteration": last.get("iteration"), "done": bool(last.get("done")),
                     "stragglers": last.get("stragglers", []),
                     "curve": [[p.get("iteration"), p.get(metric)] for p in points if metric in p]})
    return jobs
