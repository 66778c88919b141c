"""The dashboard's one view of a testnet: polls it once per interval, keeps a bounded history and a
timeline, and wakes every page stream when a new snapshot differs from the last.

One `Collector` per dashboard process, whatever the number of open pages: pages never poll nodes.
Blocking work (RPC, /metrics, logs, control actions) runs in worker threads under one lock, and the
testnet's records are re-read from `DIR/testnet.json` before each poll and action, so changes made
with the CLI (`hedgerow testnet pause v2`) show up as well.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from hedgerow.testnet.dashboard.control import Partition, current_partition, heal, node_action, partition
from hedgerow.testnet.dashboard.sources import LogTail, ledger_view, read_jobs, scrape_metrics
from hedgerow.testnet.launcher import Testnet

T = TypeVar("T")
EVENTS_MAX = 500
HISTORY_POINTS_MAX = 600
LEDGER_EVERY_TICKS = 3
VIEW_CHANGE_ROUNDS_MIN = 2
VIEW_EVENTS = frozenset({"timeout", "tc", "timeout_certificate", "nec", "no_endorsement", "evidence",
                         "spec_revert", "revert", "view_change"})
ROUND_EVENTS = {"timeout": "timeout", "tc": "TC", "nec": "NEC"}  # reported by node and round: merged
ROUND_EVENTS_SEEN_MAX = 2048
REPORTING_METRIC = "tcs"  # a node whose /metrics has it reports its view changes (no inference)


@dataclass(frozen=True)
class Event:
    seq: int
    t: float  # unix seconds
    kind: str  # fault | recovery | view | log
    name: str
    node: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


EVIDENCE = re.compile(r"kind='?(?P<kind>\w+)'?.*?offender=(?P<offender>\d+).*?round=(?P<round>\d+)")
DETAIL_CHARS_MAX = 160


def summarize(detail: str) -> str:
    """A timeline line for a logged event: an evidence proof as its kind, offender and round."""
    found = EVIDENCE.search(detail)
    if found is not None:
        return f"{found['kind']} by validator #{found['offender']} at round {found['round']}"
    return detail if len(detail) <= DETAIL_CHARS_MAX else detail[: DETAIL_CHARS_MAX - 1] + "…"


def node_state(view: dict[str, Any]) -> str:
    if not view.get("alive"):
        return "killed"
    return "paused" if view.get("paused") else "alive"


TRANSITIONS = {("alive", "paused"): ("fault", "paused"), ("paused", "alive"): ("recovery", "resumed"),
               ("alive", "killed"): ("fault", "killed"), ("paused", "killed"): ("fault", "killed"),
               ("killed", "alive"): ("recovery", "started")}


Entry = tuple[str, str, str, str]  # kind, name, node, detail


def diff_nodes(prev: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]]) -> list[Entry]:
    """Timeline entries (kind, name, node, detail) for the state changes between two polls."""
    out: list[Entry] = []
    for name, view in cur.items():
        old = prev.get(name)
        if old is None:
            continue
        change = TRANSITIONS.get((old["state"], view["state"]))
        if change is not None:
            detail = f"height {view.get('height') if view.get('height') is not None else old.get('height')}"
            out.append((change[0], change[1], name, detail))
    return out


def view_changes(cur: dict[str, dict[str, Any]], gaps: dict[str, int]) -> list[Entry]:
    """One `view change` entry when running nodes went through rounds that committed nothing: the
    fallback for nodes that do not report their view changes (no `hedgerow_tcs_total` in /metrics).

    A round that ends with a commit moves round and height together, so `round - height` (the gap)
    stays put, give or take the one block in flight; a round that ends by timeout grows it by one.
    `gaps` keeps each node's reference gap between polls (updated here): it follows the gap down,
    and up whenever the growth (at least VIEW_CHANGE_ROUNDS_MIN) is reported."""
    skipped: dict[str, int] = {}
    for name, view in cur.items():
        if view["state"] != "alive" or view.get("round") is None or view.get("height") is None \
                or view.get(REPORTING_METRIC) is not None:
            continue
        gap = int(view["round"]) - int(view["height"])
        reference = gaps.get(name)
        if reference is None or gap < reference:
            gaps[name] = gap
        elif gap - reference >= VIEW_CHANGE_ROUNDS_MIN:
            skipped[name], gaps[name] = gap - reference, gap
    if not skipped:
        return []
    worst = max(skipped, key=lambda n: skipped[n])
    return [("view", "view change", ",".join(sorted(skipped)),
             f"{skipped[worst]} round(s) ended without a commit (timeouts); now round {cur[worst]['round']}")]


def _round_detail(fields: dict[str, str]) -> str:
    event = fields["event"]
    if event == "tc":
        high = {"tip": "a tip", "qc": "a QC"}.get(fields.get("high", ""), "?")
        return f"timeout certificate for round {fields['round']}, extending {high}"
    if event == "nec":
        return (f"no-endorsement certificate for round {fields['round']} "
                f"({fields.get('signers', '?')} signers, tip QC round {fields.get('tip_qc', '?')})")
    return f"round {fields['round']} timed out (high QC round {fields.get('high_qc', '?')})"


def _revert_entry(fields: dict[str, str]) -> Entry:
    evidence = fields.get("evidence", "pending")
    block = fields.get("block", "")[:12]
    detail = f"height {fields.get('height', '?')} round {fields.get('round', '?')} block {block}"
    if evidence in ("", "pending"):
        return ("view", "revert", fields["node"], f"{detail}; evidence pending")
    offender = fields.get("offender")
    by = f" by validator #{offender}" if offender is not None else ""
    return ("view", "revert + evidence", fields["node"], f"{detail}; {evidence}{by}")


def log_entries(events: list[dict[str, str]], seen: OrderedDict[tuple[str, str], None]) -> list[Entry]:
    """Timeline entries for the `event=` lines of one poll, from every node.

    `event=timeout|tc|nec round=R` become one entry per event and round ("TC r=12", nodes that
    reported it in this poll), in round order; `seen` (updated here, bounded) drops the same event and
    round from later polls. `event=revert` becomes "revert + evidence" (or "revert" while the
    evidence is pending); any other line keeps its event name."""
    merged: dict[tuple[str, str], tuple[dict[str, str], list[str]]] = {}
    out: list[Entry] = []
    for fields in events:
        event = fields["event"]
        if event in ROUND_EVENTS and fields.get("round", "").isdigit():
            key = (event, fields["round"])
            if key in seen:
                continue
            _, nodes = merged.setdefault(key, (fields, []))
            if fields["node"] not in nodes:
                nodes.append(fields["node"])
        elif event in ("revert", "spec_revert"):
            out.append(_revert_entry(fields))
        else:
            kind = "view" if event in VIEW_EVENTS else "log"
            detail = summarize(" ".join(f"{k}={v}" for k, v in fields.items() if k not in ("event", "node")))
            out.append((kind, event, fields["node"], detail))
    ranked = sorted(merged.items(), key=lambda item: (int(item[0][1]), list(ROUND_EVENTS).index(item[0][0])))
    rounds: list[Entry] = []
    for (event, round_), (first, nodes) in ranked:
        seen[(event, round_)] = None
        label = f"{ROUND_EVENTS[event]} r={round_}"
        rounds.append(("view", label, ",".join(sorted(nodes)), _round_detail(first)))
    while len(seen) > ROUND_EVENTS_SEEN_MAX:
        seen.popitem(last=False)
    return rounds + out


class Collector:
    def __init__(self, directory: Path, testnet: Testnet | None = None, *, interval_s: float = 1.0,
                 accounts: list[str] | None = None) -> None:
        self.dir = Path(directory)
        self.accounts = list(accounts or [])  # hex keys whose ratios the ledger panel shows
        self.testnet = testnet if testnet is not None else Testnet.open(self.dir)
        self.interval_s = interval_s
        self.app = _app_of(self.testnet)
        self.latest: dict[str, Any] | None = None
        self.version = 0
        self.history: deque[tuple[float, dict[str, int | None]]] = deque(maxlen=HISTORY_POINTS_MAX)
        self.events: deque[Event] = deque(maxlen=EVENTS_MAX)
        self._seq = 0
        self._lock = threading.Lock()
        self._events_lock = threading.Lock()
        self._changed = trio.Event()
        self._poked = trio.Event()
        self._tail = LogTail()
        self._views: dict[str, dict[str, Any]] = {}
        self._gaps: dict[str, int] = {}
        self._rounds_seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._partition: Partition | None = current_partition(self.dir)
        self._ledger: dict[str, Any] | None = None
        self._ticks = 0

    # -- the testnet, under the lock ----------------------------------------------------------------

    def _reload(self) -> None:
        """Take the node records from testnet.json (another process may have changed them)."""
        self.testnet.nodes = Testnet.open(self.dir).nodes  # one assignment: readers see old or new

    def _locked(self, work: Callable[[], T]) -> T:
        with self._lock:
            self._reload()
            return work()

    def status_document(self) -> dict[str, Any]:
        """What `hedgerow testnet status --json` prints."""
        return self._locked(lambda: {"nodes": [s.to_json() for s in self.testnet.status()]})

    def act(self, action: str, name: str) -> str:
        return self._locked(lambda: node_action(self.testnet, action, name))

    def open_partition(self, side_a: list[str], side_b: list[str] | None) -> Partition:
        return self._locked(lambda: partition(self.testnet, side_a, side_b))

    def heal_partition(self) -> Partition:
        return self._locked(lambda: heal(self.testnet))

    # -- polling --------------------------------------------------------------------------------------

    def poll(self) -> dict[str, Any]:
        """One blocking poll of every node; records timeline events; returns the snapshot."""
        statuses = self.status_document()["nodes"]
        now = time.time()
        views: dict[str, dict[str, Any]] = {}
        for status in statuses:
            view = dict(status)
            view["state"] = node_state(view)
            record = self.testnet.nodes[view["name"]]
            if view["state"] == "alive":
                view.update(scrape_metrics(record.metrics_port))
            last = self._views.get(view["name"])
            if view["height"] is None and last is not None and last.get("height") is not None:
                view["height"], view["height_stale"] = last["height"], True  # paused or killed: frozen
            views[view["name"]] = view
        for entry in diff_nodes(self._views, views) + view_changes(views, self._gaps):
            self._note(now, *entry)
        logged = [fields for name, record in list(self.testnet.nodes.items())
                  for fields in self._tail.read(name, Path(record.home) / "data" / "logs" / "node.log")]
        for entry in log_entries(logged, self._rounds_seen):
            self._note(now, *entry)
        self._poll_partition(now)
        if self.app == "grassroots" and self._ticks % LEDGER_EVERY_TICKS == 0:
            running = [n for n, v in views.items() if v["state"] == "alive"]
            self._ledger = ledger_view(self.testnet, running[0], self.accounts) if running else self._ledger
        self._ticks += 1
        self._views = views
        self.history.append((now, {name: view.get("height") for name, view in views.items()}))
        return {"t": now, "dir": str(self.dir), "app": self.app, "nodes": list(views.values()),
                "partition": None if self._partition is None else self._partition.to_json(),
                "ledger": self._ledger, "jobs": read_jobs(self.dir)}

    def _poll_partition(self, now: float) -> None:
        found = current_partition(self.dir)
        if found == self._partition:
            return
        if self._partition is not None:
            self._note(now, "recovery", "heal", ",".join(self._partition.side_a),
                       f"healed {self._partition.side_a} | {self._partition.side_b}")
        if found is not None:
            self._note(now, "fault", "partition", ",".join(found.side_a), f"{found.side_a} | {found.side_b}")
        self._partition = found

    def _note(self, t: float, kind: str, name: str, node: str, detail: str) -> None:
        with self._events_lock:
            self._seq += 1
            self.events.append(Event(self._seq, t, kind, name, node, detail))

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        with self._events_lock:
            return [e.to_json() for e in self.events if e.seq > seq]

    def history_json(self) -> dict[str, Any]:
        points = list(self.history)
        names = list(self.testnet.nodes)
        return {"t": [t for t, _ in points], "names": names,
                "heights": {n: [h.get(n) for _, h in points] for n in names}}

    # -- the live loop ----------------------------------------------------------------------------------

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Store a snapshot; wake the streams when it differs from the previous one (its time aside)."""
        snapshot["events_seq"] = self._seq
        changed = self.latest is None or _content(self.latest) != _content(snapshot)
        self.latest = snapshot
        if changed:
            self.version += 1
            self._changed.set()
            self._changed = trio.Event()

    async def run(self) -> None:
        while True:
            self.publish(await trio.to_thread.run_sync(self.poll))
            with trio.move_on_after(self.interval_s):  # the poll period, cut short by a poke
                await self._poked.wait()
            self._poked = trio.Event()

    def poke(self) -> None:
        """Poll again now (after a control action), not at the end of the period."""
        self._poked.set()

    async def wait_newer(self, version: int) -> int:
        while self.version <= version:
            await self._changed.wait()
        return self.version


def _content(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in snapshot.items() if key != "t"}


def _app_of(testnet: Testnet) -> str:
    for record in testnet.nodes.values():
        try:
            genesis = json.loads((Path(record.home) / "config" / "genesis.json").read_text())
        except (OSError, ValueError):
            continue
        return str(genesis.get("app", "kv"))
    return "kv"
