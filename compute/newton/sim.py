"""Seeded simulation of Newton jobs: one coordinator, n workers, virtual time (spec 9).

Workers run the real worker function (`serve`); faulty ones misbehave after computing: `crash`
(never replies), `perturb` (adds 1e-3 to one state and re-digests, so only the residual check can
catch it), `forge` (honest states, wrong digest), `silent_metrics` (lies about its metrics only:
harmless, since metrics are not trusted). Messages take a seeded latency; timers fire in virtual
time. Everything is deterministic in the seed.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field, replace
from typing import Any

from hedgerow.compute.newton.config import NewtonConfig
from hedgerow.compute.newton.coordinator import NewtonCoordinator, NewtonFault, NewtonOutcome
from hedgerow.compute.newton.jobs import (
    NewtonJob,
    NewtonReject,
    NewtonReply,
    from_wire_tensor,
    make_job,
    serve,
    states_digest,
    to_wire_tensor,
)
from hedgerow.compute.newton.systems import make
from hedgerow.protocols.actions import Deliver, Evidence, Persist, Send, SetTimer

SCENARIOS: dict[str, str] = {
    "happy": "four honest workers",
    "crash": "the first worker crashes mid-job; the job is reassigned and delivered once",
    "perturbed": "the first worker adds 1e-3 to one state; rejected by the residual check",
    "forged": "the first worker forges its states digest; rejected",
    "unverified": "return_states=false: two workers must agree",
}
COORDINATOR = -1


@dataclass
class SimReport:
    seed: int
    scenario: str
    delivered: list[NewtonOutcome] = field(default_factory=list)
    evidence: list[NewtonFault] = field(default_factory=list)
    persisted: list[Any] = field(default_factory=list)
    sends: list[tuple[float, int]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    end_time: float = 0.0


def _misbehave(kind: str, reply: NewtonReply, rng: random.Random) -> NewtonReply | None:
    if kind == "crash":
        return None
    if kind == "perturb" and reply.states is not None:
        states = from_wire_tensor(reply.states).clone()
        b = rng.randrange(states.shape[0])
        t = rng.randrange(states.shape[1])
        states[b, t, 0] += 1e-3
        return replace(reply, states=to_wire_tensor(states), states_digest=states_digest(states))
    if kind == "forge":
        return replace(reply, states_digest=bytes(rng.randrange(256) for _ in range(32)))
    if kind == "silent_metrics":
        return replace(reply, iterations=tuple(1 for _ in reply.iterations))
    return reply


def default_job(seed: int, *, return_states: bool = True, T: int = 64, B: int = 2) -> NewtonJob:
    problem = make("gru", T=T, B=B, seed=seed)
    config = NewtonConfig(method="deer")
    job_id = random.Random(seed).randbytes(16)
    return make_job(job_id, problem.system, problem.s0, problem.inputs, config, deadline_ms=10_000,
                    return_states=return_states)


def run(scenario: str, seed: int, *, n_workers: int = 4, compute_s: float = 1.0,
        latency_s: float = 0.05, time_max_s: float = 600.0) -> SimReport:
    """Run one scenario under seed; the coordinator is told nothing but messages and timers."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    rng = random.Random(seed)
    faults = {0: {"crash": "crash", "perturbed": "perturb", "forged": "forge"}.get(scenario, "honest")}
    job = default_job(seed, return_states=scenario != "unverified")
    coordinator = NewtonCoordinator(list(range(n_workers)))
    report = SimReport(seed=seed, scenario=scenario)
    queue: list[tuple[float, int, str, Any, Any]] = []
    counter = 0
    timers: dict[Any, float] = {}

    def push(at: float, kind: str, a: Any, b: Any) -> None:
        nonlocal counter
        heapq.heappush(queue, (at, counter, kind, a, b))
        counter += 1

    def execute(actions: list[Any], now: float) -> None:
        for action in actions:
            if isinstance(action, Persist):
                report.persisted.append(action.record)
            elif isinstance(action, Send):
                report.sends.append((now, action.to))
                push(now + latency_s * (1 + rng.random()), "job", action.to, action.message)
            elif isinstance(action, SetTimer):
                timers[action.timer] = action.at
                push(action.at, "timer", action.timer, action.at)
            elif isinstance(action, Deliver):
                report.delivered.append(action.value)
                report.log.append(f"t={now:.3f} deliver ok={action.value.ok} worker={action.value.worker}")
            elif isinstance(action, Evidence):
                report.evidence.append(action.proof)
                report.log.append(f"t={now:.3f} evidence worker={action.proof.worker} {action.proof.reason}")

    execute(coordinator.start(0.0), 0.0)
    execute(coordinator.submit(job, 0.0), 0.0)
    while queue:
        now, _, kind, a, b = heapq.heappop(queue)
        if now > time_max_s:
            break
        report.end_time = now
        if kind == "timer":
            if timers.get(a) == b:
                execute(coordinator.on_timer(a, now), now)
        elif kind == "job":
            worker, message = a, b
            answer = serve(message, worker=bytes([worker]) * 32, device="cpu")
            reply: NewtonReply | NewtonReject | None = answer
            if isinstance(answer, NewtonReply):
                reply = _misbehave(faults.get(worker, "honest"), answer, rng)
            if reply is not None:
                push(now + compute_s + latency_s * (1 + rng.random()), "reply", worker, reply)
        else:
            execute(coordinator.on_message(a, b, now), now)
    return report
