"""GcWorker and GcCoordinator sans-IO cores (spec 5.7, 5.8, section 7)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from hedgerow.compute.gradcoding import (
    CompressorSpec,
    ConfigError,
    GcCheckpoint,
    GcConfig,
    GcCoordinator,
    GcJobResult,
    GcJobSpec,
    GcWorker,
    GradReply,
    GradRequest,
    JobAbort,
    NeedJob,
    compress,
    decompress,
)
from hedgerow.compute.gradcoding.compress import to_wire_values
from hedgerow.compute.gradcoding.driver import TrainSetup
from hedgerow.protocols import wire
from hedgerow.protocols.actions import Deliver, Persist, Send, SetTimer

DIM = 10


def setup(**changes: object) -> TrainSetup:
    base = TrainSetup(n=4, s=1, m=40, data_dim=DIM, rounds=5, compressor=CompressorSpec("topk", 0.2))
    return replace(base, **changes)  # type: ignore[arg-type]


def coordinator(job: GcJobSpec, **cfg: object) -> GcCoordinator:
    return GcCoordinator(job, replace(GcConfig(rounds=5, deadline_s=1.0, checkpoint_every=2), **cfg),
                         np.zeros(job.model.dim))  # type: ignore[arg-type]


def requests(actions: list[object]) -> dict[int, GradRequest]:
    return {a.to: a.message for a in actions if isinstance(a, Send) and isinstance(a.message, GradRequest)}


def started_workers(job: GcJobSpec) -> list[GcWorker]:
    workers = [GcWorker(i) for i in range(job.n)]
    for worker in workers:
        assert worker.on_message(99, job, 0.0) == []
    return workers


def reply_of(worker: GcWorker, request: GradRequest) -> GradReply:
    (action,) = worker.on_message(99, request, 0.0)
    assert isinstance(action, Send) and action.to == 99 and isinstance(action.message, GradReply)
    return action.message


def test_messages_round_trip_through_the_wire_codec() -> None:
    job = setup().job_spec()
    assert wire.decode(wire.encode(job)) == job
    for tag_class in (GcJobSpec, GradRequest, GradReply, JobAbort, NeedJob, GcCheckpoint, GcJobResult):
        assert 100 <= wire.tag_of(tag_class) <= 119


# ------------------------------------------------------------------------------------- worker


def test_worker_commits_only_on_confirmation_and_applies_ef_scale() -> None:
    job = setup().job_spec()
    (worker,) = [w for w in started_workers(job) if w.index == 1]
    w = to_wire_values(np.full(DIM, 0.1), "f32")
    reply0 = reply_of(worker, GradRequest(job.job_id, 0, w, -1))
    assert worker.pending is not None and worker.pending.round == 0
    assert np.all(worker.memory == 0.0)
    pending0 = worker.pending.memory.copy()
    reply_of(worker, GradRequest(job.job_id, 1, w, 0))  # round 0 accepted: commit
    np.testing.assert_array_equal(worker.memory, pending0)
    committed = worker.memory.copy()
    reply_of(worker, GradRequest(job.job_id, 2, w, 0))  # round 1 not accepted: roll back bitwise
    np.testing.assert_array_equal(worker.memory, committed)
    reply_of(worker, GradRequest(job.job_id, 3, w, 2, ef_scale=0.5))  # commit round 2, then scale
    assert worker.counters["commits"] == 2 and worker.counters["rollbacks"] == 1
    assert reply0.bits == 2 * (32 + 4) and reply0.worker == 1 and reply0.memory_epoch == 0


def test_worker_drops_pending_not_below_the_request_round() -> None:
    job = setup().job_spec()
    worker = started_workers(job)[0]
    w = to_wire_values(np.zeros(DIM), "f32")
    reply_of(worker, GradRequest(job.job_id, 7, w, -1))
    reply_of(worker, GradRequest(job.job_id, 5, w, 7))  # coordinator restarted at its checkpoint
    assert np.all(worker.memory == 0.0) and worker.counters["rollbacks"] == 1


def test_worker_without_the_job_asks_for_it_and_abort_drops_state() -> None:
    job = setup().job_spec()
    worker = GcWorker(2, memory_epoch=3)
    (action,) = worker.on_message(9, GradRequest(job.job_id, 0, b"", -1), 0.0)
    assert action == Send(9, NeedJob(job.job_id, 2))
    worker.on_message(9, job, 0.0)
    worker.on_message(9, JobAbort(job.job_id, 0, "test"), 0.0)
    assert worker.job is None and worker.memory is None


def test_worker_persists_memory_before_its_reply_when_asked() -> None:
    job = setup().job_spec()
    worker = GcWorker(0, persist_memory=True)
    worker.on_message(9, job, 0.0)
    actions = worker.on_message(9, GradRequest(job.job_id, 0, to_wire_values(np.ones(DIM), "f32"), -1), 0.0)
    assert [type(a) for a in actions] == [Persist, Send]


# -------------------------------------------------------------------------------- coordinator


def test_start_sends_spec_then_persists_before_the_first_request() -> None:
    job = setup().job_spec()
    actions = coordinator(job).start(0.0)
    kinds = [type(a).__name__ + ":" + type(getattr(a, "message", getattr(a, "record", None))).__name__
             for a in actions]
    assert kinds[0] == "Persist:GcJobSpec"
    assert kinds[1:5] == ["Send:GcJobSpec"] * 4
    assert kinds[5] == "Persist:GcCheckpoint"
    assert kinds[6:10] == ["Send:GradRequest"] * 4
    assert isinstance(actions[10], SetTimer) and actions[10].timer == ("gc_deadline", job.job_id, 0)
    assert actions[10].at == 1.0


def run_round(coord: GcCoordinator, workers: list[GcWorker], reqs: dict[int, GradRequest],
              order: list[int], now: float) -> list[object]:
    out: list[object] = []
    for i in order:
        out += coord.on_message(i, reply_of(workers[i], reqs[i]), now)
    return out


def test_exact_first_k_closes_at_n_minus_s_and_counts_late_duplicate_bad_round() -> None:
    job = setup(scheme="cyclic_mds", mode="exact", s=2, n=5, compressor=CompressorSpec("identity", 1.0),
                error_feedback=False, wire_dtype="f64").job_spec()
    coord = coordinator(job)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    replies = {i: reply_of(workers[i], reqs[i]) for i in range(5)}
    assert coord.on_message(0, replies[0], 0.1) == []
    assert coord.on_message(0, replies[0], 0.1) == []  # duplicate
    assert coord.on_message(3, replace(replies[3], round=4), 0.1) == []  # bad round
    assert coord.on_message(4, replies[4], 0.2) == []
    actions = coord.on_message(2, replies[2], 0.3)  # third reply = n - s: close
    assert coord.round == 1 and set(requests(actions)) == set(range(5))
    assert coord.on_message(1, replies[1], 0.4) == []  # late
    counters = coord.counters
    assert counters["late"] == 1 and counters["duplicate"] == 1 and counters["bad_round"] == 1
    assert coord.history[0].responders == (0, 2, 4)
    assert requests(actions)[1].accepted_round == -1 and requests(actions)[2].accepted_round == 0
    assert coord.on_timer(("gc_deadline", job.job_id, 0), 1.0) == []  # older timer ignored


def test_stochastic_waits_for_all_or_the_deadline() -> None:
    job = setup().job_spec()
    coord = coordinator(job)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    assert run_round(coord, workers, reqs, [0, 1, 2], 0.1) == []
    actions = coord.on_timer(("gc_deadline", job.job_id, 0), 1.0)
    assert coord.round == 1 and coord.history[0].responders == (0, 1, 2)
    assert Persist not in [type(a) for a in actions]  # round 1 is not a checkpoint round
    reqs = requests(actions)
    actions = run_round(coord, workers, reqs, [3, 2, 1, 0], 1.1)  # all four: early close
    assert coord.round == 2 and [type(a) for a in actions][0] is Persist  # round 2 is (every 2)


def test_malformed_replies_are_stragglers_and_quarantine_after_three() -> None:
    job = setup().job_spec()
    coord = coordinator(job, rounds=10)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    for t in range(3):
        bad = replace(reply_of(workers[3], reqs[3]), bits=1)  # wrong bit count
        assert coord.on_message(3, bad, 0.1) == []
        actions = run_round(coord, workers, reqs, [0, 1, 2], 0.2)
        if t < 2:
            assert not actions
            actions = coord.on_timer(("gc_deadline", job.job_id, t), t + 1.0)
        assert coord.history[t].responders == (0, 1, 2)
        reqs = requests(actions)
    assert coord.counters["malformed"] == 3 and coord.quarantined == {3}
    assert set(reqs) == {0, 1, 2}  # never asked again; three replies now close the round
    run_round(coord, workers, reqs, [0, 1, 2], 3.5)
    assert coord.round == 4


def test_exact_mode_aborts_when_more_than_s_quarantined() -> None:
    job = setup(scheme="cyclic_mds", mode="exact", n=5, s=2, compressor=CompressorSpec("identity", 1.0),
                error_feedback=False).job_spec()
    coord = coordinator(job, malformed_max=1)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    out: list[object] = []
    for i in range(3):
        out = coord.on_message(i, replace(reply_of(workers[i], reqs[i]), bits=7), 0.1)
    assert isinstance(coord.result, JobAbort) and "quarantined" in coord.result.reason
    assert [type(a) for a in out] == [Send] * 5 + [Deliver]


def test_unknown_sender_or_job_is_counted_and_dropped() -> None:
    job = setup().job_spec()
    coord = coordinator(job)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    reply = reply_of(workers[0], reqs[0])
    assert coord.on_message(7, reply, 0.1) == []
    assert coord.on_message(1, reply, 0.1) == []  # sender is not the reply's worker
    assert coord.on_message(0, replace(reply, job_id=bytes(16)), 0.1) == []
    assert coord.on_message(0, "garbage", 0.1) == []
    assert coord.counters["unknown"] == 4
    assert coord.on_message(2, NeedJob(job.job_id, 2), 0.1) == [Send(2, job)]


def test_no_replies_for_max_empty_rounds_aborts() -> None:
    job = setup().job_spec()
    coord = coordinator(job, rounds=100, max_empty_rounds=4)
    coord.start(0.0)
    for t in range(4):
        actions = coord.on_timer(("gc_deadline", job.job_id, t), t + 1.0)
    assert isinstance(coord.result, JobAbort) and coord.result.reason.startswith("no workers responding")
    assert coord.result.round == 4 and len(coord.history) == 4
    assert isinstance(actions[-1], Deliver)


def test_job_ends_with_persist_then_deliver() -> None:
    job = setup(rounds=2).job_spec()
    coord = coordinator(job, rounds=2)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    reqs = requests(run_round(coord, workers, reqs, [0, 1, 2, 3], 0.1))
    actions = run_round(coord, workers, reqs, [0, 1, 2, 3], 0.2)
    assert [type(a) for a in actions] == [Persist, Deliver]
    result = actions[1].value
    assert isinstance(result, GcJobResult) and result.rounds == 2 and len(result.history) == 2
    assert wire.decode(wire.encode(result)) == result


def test_divergence_aborts_and_keeps_the_last_finite_weights() -> None:
    job = setup(compressor=CompressorSpec("identity", 1.0), error_feedback=False).job_spec()
    coord = coordinator(job, eta=1e308)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    # a huge but finite gradient value: w - eta*g overflows
    reply = reply_of(workers[0], reqs[0])
    big = compress(CompressorSpec("identity", 1.0), np.full(DIM, 3e38), None, "f32")
    coord.on_message(0, replace(reply, payload=big), 0.1)
    out = coord.on_timer(("gc_deadline", job.job_id, 0), 1.0)
    assert isinstance(coord.result, JobAbort) and coord.result.reason == "diverged at round 0"
    assert np.all(coord.w == 0.0) and isinstance(out[-1], Deliver)
    assert np.all(np.isfinite(decompress(big)))


def test_bad_config_raises_naming_the_field_before_anything_is_sent() -> None:
    job = setup().job_spec()
    with pytest.raises(ConfigError, match="p:"):
        coordinator(job, p=1.0)
    with pytest.raises(ConfigError, match="rounds"):
        coordinator(job, rounds=0)
    with pytest.raises(ConfigError, match="ratio"):
        coordinator(replace(job, compressor=CompressorSpec("topk", 1.5)))
    with pytest.raises(ConfigError, match="stochastic"):
        coordinator(setup(scheme="cyclic_random", mode="stochastic").job_spec())
    with pytest.raises(ConfigError, match="n\\+s odd"):
        setup(scheme="cyclic_mds", s=2).job_spec()


def test_restart_from_checkpoint_resumes_at_its_round() -> None:
    job = setup().job_spec()
    coord = coordinator(job)
    coord.start(0.0)
    coord.w = np.arange(DIM, dtype=np.float64)
    coord.round = 4
    checkpoint = coord.checkpoint()
    restarted = GcCoordinator(job, GcConfig(rounds=5, deadline_s=math.inf), np.zeros(DIM), checkpoint)
    actions = restarted.start(0.0)
    assert not any(isinstance(a, Persist) and isinstance(a.record, GcJobSpec) for a in actions)
    reqs = requests(actions)
    assert restarted.round == 4 and all(r.round == 4 for r in reqs.values())
    np.testing.assert_array_equal(np.frombuffer(reqs[0].weights, "<f4"), np.arange(DIM, dtype=np.float32))


def test_p_hat_estimate_and_realized_weights() -> None:
    job = setup().job_spec()
    coord = coordinator(job, p=0.25, p_mode="estimate", rounds=10)
    workers = started_workers(job)
    reqs = requests(coord.start(0.0))
    run_round(coord, workers, reqs, [0, 1], 0.1)
    coord.on_timer(("gc_deadline", job.job_id, 0), 1.0)
    assert coord.p_hat == pytest.approx(0.95 * 0.25 + 0.05 * 0.5)
    assert coord.counters["bits_downlink"] == 2 * 4 * 32 * DIM  # two rounds opened, four workers
    realized = coordinator(job, weights="realized")
    reqs = requests(realized.start(0.0))
    replies = {i: reply_of(w, reqs[i]) for i, w in enumerate(started_workers(job)) if i < 2}
    for i, reply in replies.items():
        realized.on_message(i, reply, 0.1)
    realized.on_timer(("gc_deadline", job.job_id, 0), 1.0)
    step = -realized.w  # eta = 1: w1 = -g_hat, with g_hat = (1/(d*|R|)) * sum of the two messages
    expected = sum(decompress(r.payload) for r in replies.values()) / (2 * 2)
    np.testing.assert_allclose(step, expected, rtol=1e-12)


def test_worker_drops_jobs_and_requests_it_cannot_run() -> None:
    job = setup().job_spec()
    worker = GcWorker(1)
    bad_model = replace(job, model=replace(job.model, dim=DIM + 1))
    assert worker.on_message(9, bad_model, 0.0) == [] and worker.job is None
    assert GcWorker(7).on_message(9, job, 0.0) == []  # not one of this job's workers
    worker.on_message(9, job, 0.0)
    nan_w = to_wire_values(np.full(DIM, np.nan), "f32")
    assert worker.on_message(9, GradRequest(job.job_id, 0, nan_w, -1), 0.0) == []
    assert worker.on_message(9, GradRequest(job.job_id, 0, b"abc", -1), 0.0) == []
    assert worker.counters["bad_jobs"] == 1 and worker.counters["bad_requests"] == 2
