"""Newton jobs: wire messages, the worker function, and the seeded coordinator scenarios (spec 5.9, 9)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgerow.compute.newton import NewtonConfig, NewtonReply, serve, solve
from hedgerow.compute.newton.coordinator import JobRecord, NewtonCoordinator, ResultRecord
from hedgerow.compute.newton.jobs import (
    NewtonJob,
    NewtonReject,
    WireTensor,
    from_wire_tensor,
    make_job,
    states_digest,
    to_wire_tensor,
)
from hedgerow.compute.newton.sim import default_job, run
from hedgerow.compute.newton.systems import make, solver_kwargs
from hedgerow.protocols.actions import Deliver, Evidence, Persist, Send, SetTimer
from hedgerow.protocols.wire import DecodeError, decode, encode, tag_of

FRAME = 1 << 24


def test_message_tags_in_the_newton_range() -> None:
    for cls in (WireTensor, NewtonJob, NewtonReply, NewtonReject):
        assert 90 <= tag_of(cls) <= 99


def test_job_and_reply_round_trip() -> None:
    job = default_job(5)
    assert decode(encode(job), frame_bytes_max=FRAME) == job
    reply = serve(job, worker=b"a" * 32, device="cpu")
    assert isinstance(reply, NewtonReply) and reply.status == "converged"
    assert decode(encode(reply), frame_bytes_max=FRAME) == reply
    reject = NewtonReject(job.job_id, "too_large")
    assert decode(encode(reject)) == reject


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 4), max_size=3), f32=st.booleans(), seed=st.integers(0, 1000))
def test_tensor_round_trip(shape: list[int], f32: bool, seed: int) -> None:
    dtype = torch.float32 if f32 else torch.float64
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    wire = to_wire_tensor(x)
    back = from_wire_tensor(decode(encode(wire)))
    assert back.dtype == dtype and torch.equal(back, x)


def test_bad_tensor_and_reject_reason_refused_by_decoder() -> None:
    with pytest.raises(DecodeError):
        decode(encode(WireTensor("float64", (2, 2), b"\x00" * 8)))
    with pytest.raises(DecodeError):
        decode(encode(WireTensor("int8", (1,), b"\x00")))
    with pytest.raises(DecodeError):
        decode(encode(NewtonReject(b"x" * 16, "tired")))


def test_worker_reply_matches_library_and_digest() -> None:
    problem = make("gru", T=80, B=2, seed=3)
    config = NewtonConfig(method="quasi_deer")
    job = make_job(b"q" * 16, problem.system, problem.s0, problem.inputs, config)
    ticks = iter([10.0, 10.25])
    reply = serve(job, worker=b"b" * 32, device="cpu", clock=lambda: next(ticks))
    assert isinstance(reply, NewtonReply)
    direct = solve(problem.system.f, problem.s0, problem.inputs, config=config,
                   **solver_kwargs(problem.system))
    assert reply.states is not None
    states = from_wire_tensor(reply.states)
    assert torch.equal(states, direct.states)
    assert reply.states_digest == states_digest(direct.states)
    assert reply.iterations == tuple(int(i) for i in direct.iterations)
    assert torch.equal(from_wire_tensor(reply.last_state), direct.states[:, -1])
    assert reply.wall_ms == 250


# ---------------------------------------------------------------------------------------------
# Coordinator, driven directly


def _coordinator_with_job(return_states: bool = True) -> tuple[NewtonCoordinator, NewtonJob, list[object]]:
    coordinator = NewtonCoordinator([0, 1, 2, 3])
    job = default_job(1, return_states=return_states)
    return coordinator, job, coordinator.submit(job, 0.0)


def test_submit_persists_before_send_and_arms_deadline() -> None:
    _, job, actions = _coordinator_with_job()
    persist, send, timer = actions
    assert isinstance(persist, Persist) and isinstance(persist.record, JobRecord)
    assert isinstance(send, Send) and send.message is job and send.to == 0
    assert isinstance(timer, SetTimer) and timer.at == job.deadline_ms / 1000


def test_accepted_result_persisted_before_delivery() -> None:
    coordinator, job, _ = _coordinator_with_job()
    reply = serve(job, worker=b"0" * 32, device="cpu")
    persist, deliver = coordinator.on_message(0, reply, 1.0)
    assert isinstance(persist, Persist) and isinstance(persist.record, ResultRecord)
    assert isinstance(deliver, Deliver) and deliver.value.ok and deliver.value.reply == reply
    assert coordinator.on_message(0, reply, 1.5) == []  # delivered once
    assert coordinator.on_timer(("newton", job.job_id, 1), 10.0) == []


def test_reply_from_unassigned_worker_ignored() -> None:
    coordinator, job, _ = _coordinator_with_job()
    reply = serve(job, worker=b"2" * 32, device="cpu")
    assert coordinator.on_message(2, reply, 1.0) == []


def test_silent_workers_reassigned_twice_then_failed() -> None:
    coordinator, job, _ = _coordinator_with_job()
    sent_to = []
    now = 0.0
    for attempt in (1, 2, 3):
        now += 10.0
        actions = coordinator.on_timer(("newton", job.job_id, attempt), now)
        sent_to += [a.to for a in actions if isinstance(a, Send)]
        if attempt == 3:
            (deliver,) = actions
            assert isinstance(deliver, Deliver) and not deliver.value.ok
    assert sent_to == [1, 2]


def test_unverifiable_job_needs_two_agreeing_workers() -> None:
    coordinator, job, actions = _coordinator_with_job(return_states=False)
    targets = [a.to for a in actions if isinstance(a, Send)]
    assert targets == [0, 1]
    first = serve(job, worker=b"0" * 32, device="cpu")
    assert isinstance(first, NewtonReply) and first.states is None
    assert coordinator.on_message(0, first, 1.0) == []
    second = serve(job, worker=b"1" * 32, device="cpu")
    persist, deliver = coordinator.on_message(1, second, 1.1)
    assert isinstance(deliver, Deliver) and deliver.value.ok


# ---------------------------------------------------------------------------------------------
# Seeded simulation: coordinator + 4 workers in virtual time


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sim_worker_crash_reassigned_and_delivered_once(seed: int) -> None:
    report = run("crash", seed)
    assert len(report.delivered) == 1 and report.delivered[0].ok
    assert report.delivered[0].worker != 0
    assert report.end_time >= 10.0  # the deadline had to pass
    assert report.evidence == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sim_perturbed_result_rejected_with_evidence(seed: int) -> None:
    report = run("perturbed", seed)
    assert [e.worker for e in report.evidence] == [0]
    assert "residual" in report.evidence[0].reason
    assert len(report.delivered) == 1 and report.delivered[0].ok and report.delivered[0].worker == 1
    assert report.delivered[0].max_residual is not None and report.delivered[0].max_residual <= 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sim_forged_digest_rejected(seed: int) -> None:
    report = run("forged", seed)
    assert [e.worker for e in report.evidence] == [0] and "digest" in report.evidence[0].reason
    assert len(report.delivered) == 1 and report.delivered[0].worker == 1


def test_sim_is_deterministic_in_the_seed() -> None:
    assert run("perturbed", 7).log == run("perturbed", 7).log
    happy = run("happy", 7)
    assert len(happy.delivered) == 1 and happy.delivered[0].ok and happy.evidence == []


def test_evidence_precedes_reassignment() -> None:
    coordinator, job, _ = _coordinator_with_job()
    reply = serve(job, worker=b"0" * 32, device="cpu")
    assert isinstance(reply, NewtonReply)
    forged = NewtonReply(**{**{k: getattr(reply, k) for k in reply.__dataclass_fields__},
                            "states_digest": b"\x00" * 32})
    actions = coordinator.on_message(0, forged, 1.0)
    assert isinstance(actions[0], Evidence) and isinstance(actions[2], Send) and actions[2].to == 1
    assert coordinator.rejected_by_worker[0] == 1


def test_restarted_coordinator_reissues_open_jobs_only() -> None:
    done, open_job = default_job(1), default_job(2)
    coordinator = NewtonCoordinator([0, 1, 2, 3])
    actions = coordinator.resume([done, open_job], [done.job_id], 100.0)
    sends = [a for a in actions if isinstance(a, Send)]
    assert [s.message.job_id for s in sends] == [open_job.job_id]
    assert isinstance(actions[0], Persist)  # persisted before it leaves again
    reply = serve(open_job, worker=b"0" * 32, device="cpu")
    after = coordinator.on_message(sends[0].to, reply, 101.0)
    assert any(isinstance(a, Deliver) and a.value.ok for a in after)
