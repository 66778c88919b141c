"""The sans-IO job coordinator (spec 5.9): assign, time out, re-check, reassign, deliver once.

A reply is trusted only after the coordinator recomputes the residual of the returned states with
one batched f call: accepted iff shapes match, every state is finite, `max|r| <= 10 tol` and the
states' SHA-256 equals `states_digest`. A job with `return_states=False` cannot be checked that
way; it goes to two workers and is accepted only when their replies agree (same digest, else last
states within 1e-6 relative). Workers are replica indices (`int`); time comes in as `now` (s).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from hedgerow.compute.newton.jobs import (
    MAX_JOB_ELEMS_DEFAULT,
    JobRejected,
    NewtonJob,
    NewtonReject,
    NewtonReply,
    check_job,
    from_wire_tensor,
    states_digest,
)
from hedgerow.compute.newton.solver import residual
from hedgerow.protocols.actions import Action, Deliver, Evidence, Persist, Send, SetTimer

RESIDUAL_SLACK = 10.0
AGREE_REL = 1e-6


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Persisted before a job (re)leaves: enough for a restarted coordinator to re-issue it."""

    job_id: bytes
    inputs_digest: bytes
    worker: int
    attempt: int
    deadline: float


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """Persisted before an accepted result is delivered."""

    job_id: bytes
    worker: int
    states_digest: bytes


@dataclass(frozen=True, slots=True)
class NewtonOutcome:
    """Delivered once per job: the accepted reply, or why the job failed."""

    job_id: bytes
    ok: bool
    reply: NewtonReply | None
    worker: int | None
    max_residual: float | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NewtonFault:
    """Evidence: a reply that failed the re-check (the node attaches the channel's signature)."""

    job_id: bytes
    worker: int
    reason: str
    reply: NewtonReply


@dataclass
class _Open:
    job: NewtonJob
    tol: float
    shape: tuple[int, int, int]
    attempt: int = 0
    reassignments: int = 0
    assigned: list[int] = field(default_factory=list)
    tried: set[int] = field(default_factory=set)
    unchecked: dict[int, NewtonReply] = field(default_factory=dict)


class NewtonCoordinator:
    """One coordinator, n workers (spec 2, 5.9). Pure: `now` and messages in, actions out."""

    def __init__(self, workers: Sequence[int], *, reassign_max: int = 2,
                 max_job_elems: int = MAX_JOB_ELEMS_DEFAULT) -> None:
        if not workers:
            raise ValueError("a coordinator needs at least one worker")
        self.workers = list(workers)
        self.reassign_max = reassign_max
        self.max_job_elems = max_job_elems
        self._next = 0
        self._open: dict[bytes, _Open] = {}
        self._done: set[bytes] = set()
        self.rejected_by_worker: dict[int, int] = {w: 0 for w in self.workers}
        self.rejects_received: dict[int, int] = {w: 0 for w in self.workers}

    # -- the core contract ------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        return []

    def submit(self, job: NewtonJob, now: float) -> list[Action]:
        """Validate (spec 7) and assign; a bad job is delivered as failed at once."""
        if job.job_id in self._open or job.job_id in self._done:
            return []
        try:
            checked = check_job(job, max_job_elems=self.max_job_elems)
        except JobRejected as rejected:
            self._done.add(job.job_id)
            return [Deliver(NewtonOutcome(job.job_id, False, None, None, None, rejected.reason))]
        B, T, _ = checked.inputs.shape
        state = _Open(job=job, tol=checked.tol, shape=(int(B), int(T), int(checked.s0.shape[0])))
        self._open[job.job_id] = state
        copies = 1 if job.return_states else 2
        actions: list[Action] = []
        for _ in range(min(copies, len(self.workers))):
            actions += self._assign(state, now)
        return actions

    def resume(self, open_jobs: Sequence[NewtonJob], delivered: Sequence[bytes], now: float) -> list[Action]:
        """After a restart (spec 4): jobs with a persisted `ResultRecord` stay delivered; every other
        persisted job is re-issued from scratch (its old worker's late reply is then ignored)."""
        self._done.update(delivered)
        actions: list[Action] = []
        for job in open_jobs:
            if job.job_id not in self._done:
                actions += self.submit(job, now)
        return actions

    def on_message(self, sender: int, message: Any, now: float) -> list[Action]:
        if isinstance(message, NewtonReject):
            return self._on_reject(sender, message, now)
        if isinstance(message, NewtonReply):
            return self._on_reply(sender, message, now)
        return []

    def on_timer(self, timer: Any, now: float) -> list[Action]:
        if not (isinstance(timer, tuple) and len(timer) == 3 and timer[0] == "newton"):
            return []
        _, job_id, attempt = timer
        state = self._open.get(job_id)
        if state is None or attempt != state.attempt:
            return []
        return self._reassign(state, now, reason="deadline")

    # -- internals --------------------------------------------------------------------------

    def _pick(self, state: _Open) -> int:
        for _ in range(len(self.workers)):
            worker = self.workers[self._next % len(self.workers)]
            self._next += 1
            if worker not in state.tried:
                return worker
        worker = self.workers[self._next % len(self.workers)]
        self._next += 1
        return worker

    def _assign(self, state: _Open, now: float) -> list[Action]:
        worker = self._pick(state)
        state.attempt += 1
        state.assigned.append(worker)
        state.tried.add(worker)
        deadline = now + state.job.deadline_ms / 1000.0
        record = JobRecord(state.job.job_id, _inputs_digest(state.job), worker, state.attempt, deadline)
        return [Persist(record), Send(worker, state.job),
                SetTimer(("newton", state.job.job_id, state.attempt), deadline)]

    def _reassign(self, state: _Open, now: float, *, reason: str) -> list[Action]:
        if state.reassignments >= self.reassign_max:
            del self._open[state.job.job_id]
            self._done.add(state.job.job_id)
            return [Deliver(NewtonOutcome(state.job.job_id, False, None, None, None,
                                          f"failed after {state.reassignments} reassignments ({reason})"))]
        state.reassignments += 1
        return self._assign(state, now)

    def _on_reject(self, sender: int, message: NewtonReject, now: float) -> list[Action]:
        state = self._open.get(message.job_id)
        if state is None or sender not in state.assigned:
            return []
        self.rejects_received[sender] = self.rejects_received.get(sender, 0) + 1
        state.assigned.remove(sender)
        return self._reassign(state, now, reason=f"worker {sender} rejected: {message.reason}")

    def _on_reply(self, sender: int, reply: NewtonReply, now: float) -> list[Action]:
        state = self._open.get(reply.job_id)
        if state is None or sender not in state.assigned:
            return []
        state.assigned.remove(sender)
        fault, max_r = self.check_reply(state, reply)
        if fault is not None:
            self.rejected_by_worker[sender] = self.rejected_by_worker.get(sender, 0) + 1
            evidence = Evidence(NewtonFault(reply.job_id, sender, fault, reply))
            return [evidence, *self._reassign(state, now, reason=f"worker {sender}: {fault}")]
        if reply.states is None:
            return self._on_unverifiable(state, sender, reply, now)
        return self._accept(state, sender, reply, max_r)

    def _accept(self, state: _Open, sender: int, reply: NewtonReply, max_r: float | None) -> list[Action]:
        job_id = reply.job_id
        del self._open[job_id]
        self._done.add(job_id)
        return [Persist(ResultRecord(job_id, sender, reply.states_digest)),
                Deliver(NewtonOutcome(job_id, True, reply, sender, max_r))]

    def _on_unverifiable(self, state: _Open, sender: int, reply: NewtonReply, now: float) -> list[Action]:
        for other, earlier in state.unchecked.items():
            if other != sender and _agree(earlier, reply):
                return self._accept(state, sender, reply, None)
        state.unchecked[sender] = reply
        if len(state.unchecked) >= 2:  # two (or more) replies that disagree: ask another worker
            return self._reassign(state, now, reason="replies disagree")
        if not state.assigned:
            return self._assign(state, now)
        return []

    def check_reply(self, state: _Open, reply: NewtonReply) -> tuple[str | None, float | None]:
        """(fault, recomputed max residual): the residual re-check of spec 5.9 step 3."""
        B, T, D = state.shape
        if len(reply.iterations) != B or len(reply.max_residual) != B:
            return "per-sequence metrics of the wrong length", None
        if reply.last_state.shape != (B, D):
            return f"last_state shape {list(reply.last_state.shape)} != {[B, D]}", None
        if reply.states is None:
            return None, None
        if reply.states.shape != (B, T, D) or reply.states.dtype != state.job.s0.dtype:
            return f"states {reply.states.dtype}{list(reply.states.shape)} != {[B, T, D]}", None
        states = from_wire_tensor(reply.states)
        if not bool(torch.isfinite(states).all()):
            return "non-finite states", None
        if states_digest(states) != reply.states_digest:
            return "states_digest does not match the states", None
        checked = check_job(state.job, max_job_elems=self.max_job_elems)
        r = residual(checked.system.f, checked.s0, states, checked.inputs)
        max_r = float(r.abs().max()) if r.numel() else 0.0
        if not max_r <= RESIDUAL_SLACK * state.tol:
            return f"residual {max_r:.3g} exceeds {RESIDUAL_SLACK:g} x tol {state.tol:g}", max_r
        return None, max_r


def _inputs_digest(job: NewtonJob) -> bytes:
    return hashlib.sha256(job.inputs.data).digest()


def _agree(a: NewtonReply, b: NewtonReply) -> bool:
    if a.states_digest == b.states_digest:
        return True
    if a.last_state.shape != b.last_state.shape:
        return False
    x, y = from_wire_tensor(a.last_state), from_wire_tensor(b.last_state)
    if x.dtype != y.dtype:
        return False
    scale = float(torch.maximum(x.abs(), y.abs()).max()) if x.numel() else 0.0
    return bool(float((x - y).abs().max()) <= AGREE_REL * max(scale, 1e-30)) if x.numel() else True
