"""A seeded discrete-event simulator for sans-IO cores (DESIGN.md testing layer 2).

All nondeterminism comes from one `random.Random(seed)`: link delays, losses and duplicates before
GST. Events (message deliveries, timers, scripted calls) run in (time, sequence) order, so a seed
replays a run exactly; `trace_hash` digests one line per event and action to prove it.

Nodes are *instances*: several may share one validator index (Twins). A `Send(to, msg)` reaches
every running instance of validator `to`; a `Broadcast` every other instance. Scenario scripts add
`filters` (drop or delay chosen messages), set a `partition` (groups of instance ids), crash and
restart instances, and schedule calls.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hedgerow.protocols.actions import Broadcast, Persist, Send, SetTimer

DROP = "drop"
MESSAGE, TIMER, CALL = 0, 1, 2


class CoreLike(Protocol):
    def start(self, now: int) -> list[Any]: ...
    def on_message(self, sender: int, message: object, now: int) -> list[Any]: ...
    def on_timer(self, timer: Hashable, now: int) -> list[Any]: ...


DelayFn = Callable[[random.Random], int]


def fixed_delay(delay_ms: int) -> DelayFn:
    return lambda rng: delay_ms


def uniform_delay(low_ms: int, high_ms: int) -> DelayFn:
    return lambda rng: rng.randint(low_ms, high_ms)


@dataclass(slots=True)
class Network:
    """Link model: `delay` after GST; before `gst_ms` also `loss`, `duplicate` and extra jitter."""

    delay: DelayFn = field(default_factory=lambda: fixed_delay(10))
    gst_ms: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    jitter_ms: int = 0


@dataclass(eq=False, slots=True)
class Node:
    iid: int
    validator: int
    name: str
    core: Any
    honest: bool = True
    checked: bool = True  # fed to the invariant checker as an honest node
    alive: bool = False
    store: Any = None
    epoch: int = 0
    timers: dict[Hashable, int] = field(default_factory=dict)


Filter = Callable[["Simulator", Node, Node, object], Any]  # None | DROP | extra delay (int ms)
ActionObserver = Callable[[Node, Any], None]


class Simulator:
    def __init__(
        self,
        seed: int,
        nodes: list[Node],
        network: Network,
        describe: Callable[[object], str] | None = None,
        keep_trace: bool = False,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.nodes = nodes
        self.network = network
        self.now = 0
        self.steps = 0
        self.filters: list[Filter] = []
        self.partition: list[set[int]] | None = None
        self.action_observers: list[ActionObserver] = []
        self.step_observers: list[Callable[[Node | None], None]] = []
        self.pre_observers: list[Callable[[Node, int, Any], None]] = []  # (node, MESSAGE|TIMER, payload)
        self.persist_hook: Callable[[Node, Any], bool] | None = None
        self.describe = describe or (lambda message: type(message).__name__)
        self.keep_trace = keep_trace
        self.trace_lines: list[str] = []
        self._trace = hashlib.sha256()
        self._queue: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self.sent: dict[str, int] = {}
        self.delivered = 0
        self.dropped = 0
        self.by_validator: dict[int, list[Node]] = {}
        for node in nodes:
            self.by_validator.setdefault(node.validator, []).append(node)

    # ------------------------------------------------------------------ scheduling
    def _push(self, at: int, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(at, self.now), self._seq, kind, payload))

    def schedule(self, at_ms: int, call: Callable[[], None]) -> None:
        self._push(at_ms, CALL, call)

    def start(self, node: Node) -> None:
        node.alive = True
        self._trace_line(f"{self.now} {node.iid} start")
        self.execute(node, node.core.start(self.now))

    def crash(self, node: Node) -> None:
        node.alive = False
        node.epoch += 1
        node.timers.clear()
        self._trace_line(f"{self.now} {node.iid} crash")

    def restart(self, node: Node, core: Any) -> None:
        node.core = core
        node.epoch += 1
        node.timers.clear()
        self.start(node)

    # ------------------------------------------------------------------ routing
    def _trace_line(self, line: str) -> None:
        self._trace.update(line.encode() + b"\n")
        if self.keep_trace:
            self.trace_lines.append(line)

    @property
    def trace_hash(self) -> str:
        return self._trace.hexdigest()

    def _group(self, iid: int) -> int:
        assert self.partition is not None
        for index, group in enumerate(self.partition):
            if iid in group:
                return index
        return -1

    def _transmit(self, src: Node, dst: Node, message: object) -> None:
        if self.partition is not None and self._group(src.iid) != self._group(dst.iid):
            self.dropped += 1
            return
        extra = 0
        for rule in self.filters:
            verdict = rule(self, src, dst, message)
            if verdict == DROP:
                self.dropped += 1
                return
            if isinstance(verdict, int):
                extra += verdict
        net = self.network
        copies = 1
        delay = net.delay(self.rng) + extra
        if self.now < net.gst_ms:
            if net.loss and self.rng.random() < net.loss:
                self.dropped += 1
                return
            if net.jitter_ms:
                delay += self.rng.randint(0, net.jitter_ms)
            if net.duplicate and self.rng.random() < net.duplicate:
                copies = 2
        for copy in range(copies):
            later = self.rng.randint(0, max(net.jitter_ms, 1)) if copy else 0
            self._push(self.now + delay + later, MESSAGE, (dst, dst.epoch, src.validator, message))

    def send_from(self, src: Node, to: int | None, message: object) -> None:
        """Route one message: to every instance of validator `to`, or (None) every other instance."""
        name = type(message).__name__
        if to is None:
            targets = [node for node in self.nodes if node is not src]
        else:
            targets = [node for node in self.by_validator.get(to, []) if node is not src]
        self.sent[name] = self.sent.get(name, 0) + len(targets)
        for dst in targets:
            self._transmit(src, dst, message)

    # ------------------------------------------------------------------ actions
    def execute(self, node: Node, actions: list[Any]) -> None:
        for action in actions:
            if not node.alive:
                return  # crashed mid-list: the rest never happened
            for observer in self.action_observers:
                observer(node, action)
            if isinstance(action, Send):
                self._trace_line(f"{self.now} {node.iid} send {action.to} {self.describe(action.message)}")
                self.send_from(node, action.to, action.message)
            elif isinstance(action, Broadcast):
                self._trace_line(f"{self.now} {node.iid} bcast {self.describe(action.message)}")
                self.send_from(node, None, action.message)
            elif isinstance(action, SetTimer):
                self._seq += 1
                token = self._seq
                node.timers[action.timer] = token
                self._push(int(action.at), TIMER, (node, node.epoch, action.timer, token))
            elif isinstance(action, Persist):
                if node.store is not None:
                    node.store.write(action.record)
                if self.persist_hook is not None and self.persist_hook(node, action.record):
                    self.crash(node)
                    return
            else:
                self._trace_line(f"{self.now} {node.iid} {self.describe(action)}")

    # ------------------------------------------------------------------ main loop
    def step(self) -> bool:
        if not self._queue:
            return False
        at, _, kind, payload = heapq.heappop(self._queue)
        self.now = at
        self.steps += 1
        handled: Node | None = None
        if kind == MESSAGE:
            dst, epoch, sender, message = payload
            if dst.alive and dst.epoch == epoch:
                for pre in self.pre_observers:
                    pre(dst, MESSAGE, message)
                self.delivered += 1
                self._trace_line(f"{at} {dst.iid} recv {sender} {self.describe(message)}")
                self.execute(dst, dst.core.on_message(sender, message, at))
                handled = dst
        elif kind == TIMER:
            node, epoch, timer, token = payload
            if node.alive and node.epoch == epoch and node.timers.get(timer) == token:
                del node.timers[timer]
                for pre in self.pre_observers:
                    pre(node, TIMER, timer)
                self._trace_line(f"{at} {node.iid} timer {timer!r}")
                self.execute(node, node.core.on_timer(timer, at))
                handled = node
        else:
            payload()
        for observer in self.step_observers:
            observer(handled)
        return True

    def run(
        self,
        *,
        until_ms: int | None = None,
        max_steps: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> str:
        """Run until the queue empties, `until_ms`, `max_steps` events, or `stop()` holds."""
        while True:
            if stop is not None and stop():
                return "stop"
            if max_steps is not None and self.steps >= max_steps:
                return "steps"
            if not self._queue:
                return "idle"
            if until_ms is not None and self._queue[0][0] > until_ms:
                self.now = until_ms
                return "time"
            self.step()
