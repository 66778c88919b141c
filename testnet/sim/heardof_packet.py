"""Packet-level asynchronous simulator for AMP_f (spec §5.2): virtual time, seeded per-link delays,
drops and duplicates, crashes (also half-way through a broadcast), slow nodes, restarts.

Nodes are sans-IO cores (`start/on_message/on_timer` -> actions): `RoundMachine`s (AMP_f -> HO_f)
or `AmpNode`s (an `AmpAlgorithm` run directly). `HoNetwork(oracle)` instead decides each round-r
message p -> q by `p in HO(q, r)`. Persist-before-send is checked on every action list.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.actions import Action, Broadcast, Deliver, Evidence, Persist, Send, SetTimer
from hedgerow.protocols.heardof.algorithms import NONE
from hedgerow.protocols.heardof.amp import AmpAlgorithm
from hedgerow.protocols.heardof.messages import HoRecord, RoundMsg
from hedgerow.testnet.sim.heardof_oracles import HoSet, Oracle


class AmpNode:
    """An AMP process as a sans-IO core: sends to itself are delivered at once, in order."""

    def __init__(self, amp: AmpAlgorithm, p: int, n: int, f: int, inp: Any) -> None:
        self.amp, self.p, self.n, self.f, self.inp = amp, p, n, f, inp
        self.state: Any = None
        self.decision: Any = NONE

    def start(self, now: float) -> list[Action]:
        self.state, sends = self.amp.start(self.p, self.n, self.f, self.inp)
        return self._route(sends)

    def on_message(self, sender: int, message: Any, now: float) -> list[Action]:
        self.state, sends = self.amp.receive(self.state, sender, message)
        return self._route(sends)

    def on_timer(self, timer: Any, now: float) -> list[Action]:
        return []

    def _route(self, sends: list[tuple[int, Any]]) -> list[Action]:
        out: list[Action] = []
        own: list[Any] = []
        while True:
            for dst, payload in sends:
                if dst == -1:
                    out.append(Broadcast(payload))
                    own.append(payload)
                elif dst == self.p:
                    own.append(payload)
                else:
                    out.append(Send(dst, payload))
            if self.decision is NONE and self.amp.decision(self.state) is not NONE:
                self.decision = self.amp.decision(self.state)
                out.append(Deliver((0, self.decision)))
            if not own:
                return out
            self.state, sends = self.amp.receive(self.state, self.p, own.pop(0))


@dataclass
class LinkParams:
    delay_min_s: float = 0.0005
    delay_max_s: float = 0.003
    drop: float = 0.0
    duplicate: float = 0.0
    slow_until_s: dict[int, float] = field(default_factory=dict)  # node -> its links held until then


@dataclass
class Crash:
    node: int
    at_s: float | None = None              # crash at this virtual time
    mid_broadcast_round: int | None = None  # or half-way through its round-r messages
    restart_after_s: float | None = None   # restart from the last Persist record after this delay


@dataclass
class NodeStats:
    decided_at_s: float | None = None
    decision: Any = NONE
    sent: int = 0
    received: int = 0
    last_record: HoRecord | None = None
    sent_log: dict[tuple[int, int], Any] = field(default_factory=dict)  # (round, dst) -> payload bytes
    crashed: bool = False
    restarts: int = 0
    restart_pending: bool = False


class PacketSim:
    def __init__(self, cores: Sequence[Any], *, seed: int, link: LinkParams | None = None,
                 crashes: Sequence[Crash] = (), oracle: Oracle | None = None,
                 factory: Callable[[int], Any] | None = None) -> None:
        self.cores = list(cores)
        self.n = len(self.cores)
        self.rng = random.Random(seed)
        self.seed = seed
        self.link = link or LinkParams()
        self.crashes = {c.node: c for c in crashes}
        self.oracle = oracle
        self.factory = factory  # rebuilds a core for a restart
        self.ho_cache: dict[int, list[HoSet]] = {}
        self.now = 0.0
        self.events: list[tuple[float, int, int, str, Any]] = []
        self._seq = 0
        self.stats = [NodeStats() for _ in range(self.n)]
        self.violations: list[str] = []
        self.deliveries = 0

    def _push(self, at: float, node: int, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self.events, (at, self._seq, node, kind, data))

    def run(self, *, until_s: float, max_events: int = 2_000_000,
            stop: Callable[[PacketSim], bool] | None = None) -> None:
        for p in range(self.n):
            self._execute(p, self.cores[p].start(0.0))
        for c in self.crashes.values():
            if c.at_s is not None:
                self._push(c.at_s, c.node, "crash", None)
        for _ in range(max_events):
            if not self.events or (stop is not None and stop(self)):
                return
            at, _, node, kind, data = heapq.heappop(self.events)
            if at > until_s:
                return
            self.now = at
            self._dispatch(node, kind, data)

    def _dispatch(self, node: int, kind: str, data: Any) -> None:
        st = self.stats[node]
        if kind == "crash":
            self._crash(node)
            return
        if kind == "restart":
            self._restart(node)
            return
        if st.crashed:
            return
        core = self.cores[node]
        if kind == "msg":
            sender, message = data
            st.received += 1
            self._execute(node, core.on_message(sender, message, self.now))
        else:
            self._execute(node, core.on_timer(data, self.now))

    def _crash(self, node: int) -> None:
        st = self.stats[node]
        if st.crashed:
            return
        st.crashed = True
        c = self.crashes.get(node)
        if c is not None and c.restart_after_s is not None and st.restarts == 0:
            st.restart_pending = True
            self._push(self.now + c.restart_after_s, node, "restart", None)

    def _restart(self, node: int) -> None:
        st = self.stats[node]
        if self.factory is None or st.last_record is None:
            return
        st.crashed, st.restarts, st.restart_pending = False, st.restarts + 1, False
        core = self.factory(node)
        self.cores[node] = core
        self._execute(node, core.resume(st.last_record, self.now))

    def _execute(self, p: int, actions: list[Action]) -> None:
        st = self.stats[p]
        crash = self.crashes.get(p)
        for action in actions:
            if st.crashed:
                return
            if isinstance(action, Persist):
                st.last_record = action.record
            elif isinstance(action, Send | Broadcast):
                targets = [action.to] if isinstance(action, Send) else [q for q in range(self.n) if q != p]
                msg = action.message
                if isinstance(msg, RoundMsg):
                    self._check_persisted(p, msg)
                    if crash is not None and crash.mid_broadcast_round == msg.round and st.restarts == 0:
                        targets = targets[: self.rng.randint(0, max(0, len(targets) - 1))]
                        self._send_all(p, targets, msg)
                        self._crash(p)
                        return
                self._send_all(p, targets, msg)
            elif isinstance(action, SetTimer):
                self._push(max(action.at, self.now), p, "timer", action.timer)
            elif isinstance(action, Deliver):
                _, value = action.value  # (instance, value), as the round machine delivers
                if st.decision is NONE:
                    st.decision, st.decided_at_s = value, self.now
            elif isinstance(action, Evidence):
                self.violations.append(f"t={self.now:.4f} p{p}: evidence {action.proof[0]}")

    def _check_persisted(self, p: int, msg: RoundMsg) -> None:
        st = self.stats[p]
        if st.last_record is None or st.last_record.round < msg.round:
            self.violations.append(f"p{p} sent round {msg.round} before persisting it")

    def _send_all(self, p: int, targets: list[int], msg: Any) -> None:
        for q in targets:
            self.stats[p].sent += 1
            if isinstance(msg, RoundMsg):
                key = (msg.round, q)
                old = self.stats[p].sent_log.setdefault(key, msg.payload)
                if old != msg.payload:
                    self.violations.append(f"p{p} sent two different round-{msg.round} payloads to p{q}")
            if not self._allowed(p, q, msg) or self.rng.random() < self.link.drop:
                continue
            copies = 2 if self.rng.random() < self.link.duplicate else 1
            for _ in range(copies):
                delay = self.rng.uniform(self.link.delay_min_s, self.link.delay_max_s)
                at = self.now + delay
                for end in (p, q):
                    at = max(at, self.link.slow_until_s.get(end, 0.0) + delay)
                self._push(at, q, "msg", (p, msg))

    def _allowed(self, p: int, q: int, msg: Any) -> bool:
        if self.oracle is None or not isinstance(msg, RoundMsg):
            return True
        sets = self.ho_cache.get(msg.round)
        if sets is None:
            sets = self.oracle.ho_sets(msg.round, self.n, None, self.rng)
            self.ho_cache[msg.round] = sets
        return p in sets[q]

    # -- summaries ----------------------------------------------------------------------------

    def live(self) -> list[int]:
        return [p for p in range(self.n) if not self.stats[p].crashed]

    def decisions(self) -> dict[int, Any]:
        return {p: st.decision for p, st in enumerate(self.stats) if st.decision is not NONE}



def HoNetwork(cores: Sequence[Any], oracle: Oracle, *, seed: int,  # noqa: N802 - the spec's name
              link: LinkParams | None = None) -> PacketSim:
    """The packet simulator driven by an HO oracle: p's round-r message reaches q iff p in HO(q, r)
    (delays well below the round timeout, so timeout-mode machines realize the oracle's sets)."""
    return PacketSim(cores, seed=seed, oracle=oracle,
                     link=link or LinkParams(delay_min_s=0.0001, delay_max_s=0.001))
