"""A seeded, single-process simulator: one GcCoordinator and n GcWorkers on virtual time.

Node ids: workers `0..n-1`, the coordinator `n`. Every message goes through the wire codec
(`encode` then `decode`) unless `wire=False`. Straggler models (spec section 9):

* `bernoulli`: worker i misses round t iff `default_rng([straggler_seed, t]).random(n)[i] < p`; its
  reply then arrives after the deadline (late), the others after `d*tau`.
* `latency`: reply latency `d*tau*(1 + Exp(mean 0.2)) + bits/bandwidth`, plus `Exp(mean 10*tau)` with
  probability p, drawn from `default_rng([straggler_seed, t, i, 7])`.
* `none`: every reply after `d*tau`.

Faults: permanently killed workers, worker restarts (fresh memory, `memory_epoch+1`) and one
coordinator crash with a restart from its last persisted checkpoint.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hedgerow.compute.gradcoding.coordinator import GcConfig, GcCoordinator
from hedgerow.compute.gradcoding.messages import (
    GcCheckpoint,
    GcJobResult,
    GcJobSpec,
    GradReply,
    JobAbort,
    RoundRecord,
)
from hedgerow.compute.gradcoding.models import Problem, SharedGradients
from hedgerow.compute.gradcoding.worker import GcWorker
from hedgerow.protocols import wire
from hedgerow.protocols.actions import Action, Deliver, Persist, Send, SetTimer

Array = NDArray[np.float64]
STREAM_LATENCY = 7
RESTART_DELAY_TAUS = 5.0


@dataclass(frozen=True, slots=True)
class SimConfig:
    straggler: str = "bernoulli"  # "bernoulli" | "latency" | "none"
    p: float = 0.0
    straggler_seed: int = 0
    tau_s: float = 0.01
    bandwidth_bps: float = 10e6
    killed: frozenset[int] = frozenset()
    worker_restarts: tuple[tuple[int, int], ...] = ()  # (worker, round): restart when that round opens
    coordinator_crash_round: int | None = None  # crash right after opening that round
    wire: bool = True
    steps_max: int = 50_000_000


def median_latency_s(sim: SimConfig, d: int, bits: int) -> float:
    """Median reply latency of a non-straggler (the deadline is 1.5x this, spec section 8)."""
    if sim.straggler == "latency":
        return d * sim.tau_s * (1.0 + 0.2 * math.log(2.0)) + bits / sim.bandwidth_bps
    return d * sim.tau_s


@dataclass
class SimResult:
    w: Array
    result: GcJobResult | JobAbort | None
    history: list[RoundRecord]
    close_times_s: list[float]
    counters: dict[str, int]
    virtual_time_s: float
    frames: int = 0
    frame_bytes: int = 0
    crashes: int = 0
    worker_counters: list[dict[str, int]] = field(default_factory=list)


RoundHook = Callable[[RoundRecord, Array, float], None]
DeliverHook = Callable[[int, int, Any, float], None]  # (target, sender, message, now)


class GcSim:
    def __init__(self, job: GcJobSpec, cfg: GcConfig, w0: Array, sim: SimConfig,
                 problem: Problem | None = None, on_round: RoundHook | None = None,
                 on_deliver: DeliverHook | None = None) -> None:
        self.job, self.cfg, self.sim, self.n = job, cfg, sim, job.n
        self.coord_id = job.n
        self.w0 = np.array(w0, dtype=np.float64)
        self.problem: Problem | None = SharedGradients(problem) if problem is not None else None
        self.on_round = on_round
        self.on_deliver = on_deliver
        self.coordinator = GcCoordinator(job, cfg, self.w0)
        self.workers = [GcWorker(i, problem=self.problem) for i in range(self.n)]
        self.incarnation = 0
        self.queue: list[tuple[float, int, str, int, int, Any]] = []
        self.seq = 0
        self.now = 0.0
        self.checkpoint: GcCheckpoint | None = None
        self.history: list[RoundRecord] = []
        self.close_times: list[float] = []
        self.restarts_due: dict[int, list[int]] = {}
        for worker, rnd in sim.worker_restarts:
            self.restarts_due.setdefault(rnd, []).append(worker)
        self._straggler_masks: dict[int, NDArray[np.bool_]] = {}
        self.crash_pending = sim.coordinator_crash_round
        self.frames = 0
        self.frame_bytes = 0
        self.crashes = 0
        self.old_counters: dict[str, int] = {}

    # ------------------------------------------------------------------ scheduling

    def _push(self, at: float, kind: str, target: int, sender: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, target, sender, payload))

    def _straggles(self, round_: int, worker: int) -> bool:
        if self.sim.straggler != "bernoulli" or self.sim.p <= 0.0:
            return False
        mask = self._straggler_masks.get(round_)
        if mask is None:
            mask = np.random.default_rng([self.sim.straggler_seed, round_]).random(self.n) < self.sim.p
            self._straggler_masks = {round_: mask}
        return bool(mask[worker])

    def _reply_latency(self, reply: GradReply) -> float:
        d = len(self.job.support[reply.worker])
        tau = self.sim.tau_s
        if self.sim.straggler == "latency":
            rng = np.random.default_rng([self.sim.straggler_seed, reply.round, reply.worker, STREAM_LATENCY])
            delay = d * tau * (1.0 + rng.exponential(0.2)) + reply.bits / self.sim.bandwidth_bps
            if rng.random() < self.sim.p:
                delay += rng.exponential(10.0 * tau)
            return float(delay)
        if self._straggles(reply.round, reply.worker):
            deadline = self.cfg.deadline_s
            return 2.5 * d * tau if not math.isfinite(deadline) else max(2.5 * d * tau, 2.0 * deadline)
        return d * tau

    def _execute(self, source: int, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                message = action.message
                if self.sim.wire:
                    frame = wire.encode(message)
                    self.frames += 1
                    self.frame_bytes += len(frame)
                    message = wire.decode(frame)
                if source == self.coord_id:
                    if action.to in self.sim.killed:
                        continue
                    self._push(self.now, "msg", action.to, source, message)
                else:
                    is_reply = isinstance(message, GradReply)
                    latency = self._reply_latency(message) if is_reply else self.sim.tau_s
                    self._push(self.now + latency, "msg", self.coord_id, source, message)
            elif isinstance(action, SetTimer):
                self._push(max(action.at, self.now), "timer", source, self.incarnation, action.timer)
            elif isinstance(action, Persist) and isinstance(action.record, GcCheckpoint):
                self.checkpoint = action.record
            elif isinstance(action, Deliver):
                pass  # read from coordinator.result

    # ------------------------------------------------------------------ faults

    def _after_coordinator_step(self, history_before: int, round_before: int) -> None:
        coord = self.coordinator
        for record in coord.history[history_before:]:
            self.history.append(record)
            self.close_times.append(self.now)
            if self.on_round is not None:
                self.on_round(record, coord.w, self.now)
        if coord.round != round_before and coord.open:
            for worker in self.restarts_due.pop(coord.round, []):
                old = self.workers[worker]
                self.workers[worker] = GcWorker(worker, problem=self.problem,
                                                memory_epoch=old.memory_epoch + 1)
            if self.crash_pending is not None and coord.round >= self.crash_pending:
                self.crash_pending = None
                self._crash_coordinator()

    def _crash_coordinator(self) -> None:
        for key, value in self.coordinator.counters.items():
            self.old_counters[key] = self.old_counters.get(key, 0) + value
        self.crashes += 1
        self.incarnation += 1
        self.coordinator = GcCoordinator(self.job, self.cfg, self.w0, checkpoint=self.checkpoint)
        self.now += RESTART_DELAY_TAUS * self.sim.tau_s
        history_before = len(self.coordinator.history)
        self._execute(self.coord_id, self.coordinator.start(self.now))
        self._after_coordinator_step(history_before, -1)

    # ------------------------------------------------------------------ loop

    def run(self) -> SimResult:
        self._execute(self.coord_id, self.coordinator.start(self.now))
        self._after_coordinator_step(0, -1)
        steps = 0
        while self.queue and not self.coordinator.done and steps < self.sim.steps_max:
            at, _, kind, target, sender, payload = heapq.heappop(self.queue)
            self.now = max(self.now, at)
            steps += 1
            if kind == "msg" and self.on_deliver is not None and target not in self.sim.killed:
                self.on_deliver(target, sender, payload, self.now)
            if target == self.coord_id:
                coord = self.coordinator
                history_before, round_before = len(coord.history), coord.round
                if kind == "timer":
                    if sender != self.incarnation:
                        continue  # a timer of a crashed incarnation
                    actions = coord.on_timer(payload, self.now)
                else:
                    actions = coord.on_message(sender, payload, self.now)
                self._execute(self.coord_id, actions)
                self._after_coordinator_step(history_before, round_before)
            elif target not in self.sim.killed:
                handler = self.workers[target]
                actions = handler.on_timer(payload, self.now) if kind == "timer" else \
                    handler.on_message(sender, payload, self.now)
                self._execute(target, actions)
        counters = dict(self.coordinator.counters)
        for key, value in self.old_counters.items():
            counters[key] = counters.get(key, 0) + value
        return SimResult(self.coordinator.w.copy(), self.coordinator.result, self.history, self.close_times,
                         counters, self.now, self.frames, self.frame_bytes, self.crashes,
                         [dict(w.counters) for w in self.workers])
