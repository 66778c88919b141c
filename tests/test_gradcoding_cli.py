"""`hedgerow job train --sim`, the torch MLP problem, and a stateful check of the coordinator core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hedgerow.compute.gradcoding import (
    CompressedVector,
    CompressorSpec,
    GcConfig,
    GcCoordinator,
    GcWorker,
    GradReply,
    GradRequest,
)
from hedgerow.compute.gradcoding.driver import TrainSetup
from hedgerow.compute.gradcoding.models import TorchMLP, gaussian_mixture, mlp_dim
from hedgerow.node.cli import main
from hedgerow.protocols.actions import Persist, Send


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["job", "train", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "loss.png"
    code, out, _ = run_cli(capsys, "--code", "cyclic", "--n-workers", "4", "--stragglers", "1",
                           "--compressor", "topk:0.05", "--rounds", "30", "--sim", "--seed", "2", "--json",
                           "--plot", str(png))
    assert code == 0
    summary = json.loads(out)
    for key in ("method", "rounds", "final_gap", "bits_uplink", "stragglers_seen", "late_replies"):
        assert key in summary
    assert summary["rounds"] == 30 and summary["final_gap"] > 0 and summary["bits_uplink"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = json.loads(run_cli(capsys, "--rounds", "30", "--sim", "--seed", "2", "--json")[1])
    assert again["final_loss"] == summary["final_loss"]  # same seed, same run


def test_train_table_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--method", "gc_randk", "--rounds", "10", "--sim", "--seed", "1")
    assert code == 0 and "bits_uplink" in out and "gc_randk" in out
    assert "stragglers" in err and "round 10" in err


@pytest.mark.parametrize("args,needle", [
    (["--compressor", "topk:0"], "RATIO"),
    (["--compressor", "zip"], "--compressor"),
    (["--n-workers", "1"], "--n-workers"),
    (["--stragglers", "4"], "--stragglers"),
    (["--rounds", "0"], "--rounds"),
    (["--p", "1.0"], "--p"),
    (["--kill", "9"], "--kill"),
    (["--code", "frac", "--n-workers", "5"], "frac"),
    (["--code", "cyclic_mds", "--stragglers", "2"], "n+s odd"),
])
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str],
                                      needle: str) -> None:
    code, out, err = run_cli(capsys, *args, "--sim")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("hedgerow: error:") and needle in err


def test_real_nodes_not_available_yet(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--rounds", "5")
    assert code == 2 and "--sim" in err


def test_torch_mlp_gradient_matches_finite_differences() -> None:
    parts = gaussian_mixture(2, 12, 5, seed=3, classes=3)
    mlp = TorchMLP(parts, (5, 4, 3), l2=1e-3, seed=0)
    assert mlp.dim == mlp_dim((5, 4, 3)) == 5 * 4 + 4 + 4 * 3 + 3
    w = mlp.initial_weights()
    grad = mlp.partition_grad(1, w)
    x, y = mlp.parts[1]

    def f(v: np.ndarray) -> float:
        mlp._load(v)
        with torch.no_grad():
            return float(mlp._partition_objective(1))

    eps = 1e-6
    fd = np.array([(f(w + eps * e) - f(w - eps * e)) / (2 * eps) for e in np.eye(mlp.dim)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
    assert str(x.device) == ("cuda:0" if torch.cuda.is_available() else "cpu") and x.dtype == torch.float64


class CoordinatorMachine(RuleBasedStateMachine):
    """Arbitrary interleavings of replies (fresh, late, duplicate, malformed) and deadlines."""

    def __init__(self) -> None:
        super().__init__()
        setup = TrainSetup(n=4, s=1, m=20, data_dim=6, compressor=CompressorSpec("topk", 0.5))
        self.job = setup.job_spec()
        self.coord = GcCoordinator(self.job, GcConfig(rounds=1000, deadline_s=1.0, checkpoint_every=3,
                                                      max_empty_rounds=1000), np.zeros(6))
        self.workers = [GcWorker(i) for i in range(4)]
        for worker in self.workers:
            worker.on_message(4, self.job, 0.0)
        self.now = 0.0
        self.requests: dict[int, GradRequest] = {}
        self.sent: list[GradReply] = []
        self._apply(self.coord.start(0.0))

    def _apply(self, actions: list[object]) -> None:
        kinds = [type(a) for a in actions]
        request_at = [k for k, a in enumerate(actions) if isinstance(a, Send)
                      and isinstance(a.message, GradRequest)]
        if Persist in kinds and request_at:  # a checkpoint goes out before the round's first request
            assert kinds.index(Persist) < request_at[0]
        for action in actions:
            if isinstance(action, Send) and isinstance(action.message, GradRequest):
                self.requests[action.to] = action.message

    @precondition(lambda self: not self.coord.done)
    @rule(i=st.integers(0, 3))
    def reply(self, i: int) -> None:
        request = self.requests.get(i)
        if request is None:
            return
        (send,) = self.workers[i].on_message(4, request, self.now)
        assert isinstance(send, Send)
        self.sent.append(send.message)
        self._apply(self.coord.on_message(i, send.message, self.now))

    @precondition(lambda self: bool(self.sent))
    @rule(k=st.integers(0, 50))
    def replay_old_reply(self, k: int) -> None:
        old = self.sent[k % len(self.sent)]
        before = dict(self.coord.counters)
        self._apply(self.coord.on_message(old.worker, old, self.now))
        after = self.coord.counters
        assert sum(after.values()) > sum(before.values()) or old.round == self.coord.round

    @rule(i=st.integers(0, 3))
    def malformed(self, i: int) -> None:
        request = self.requests.get(i)
        if request is None:
            return
        bad = GradReply(self.job.job_id, request.round, i, _bad_payload(), 3, 0.0, 0)
        before = dict(self.coord.counters)
        self._apply(self.coord.on_message(i, bad, self.now))
        changed = {key for key, value in before.items() if self.coord.counters[key] != value}
        assert changed & {"malformed", "duplicate", "late", "quarantined_dropped"}

    @rule()
    def deadline(self) -> None:
        self.now += 1.0
        self._apply(self.coord.on_timer(("gc_deadline", self.job.job_id, self.coord.round), self.now))

    @invariant()
    def consistent(self) -> None:
        coord = self.coord
        assert len(coord.history) == coord.round
        assert all(-1 <= a < coord.round for a in coord.accepted_round)
        assert all(r.round == t for t, r in enumerate(coord.history))
        assert all(set(r.responders) <= set(range(4)) for r in coord.history)
        assert all(value >= 0 for value in coord.counters.values())
        assert np.all(np.isfinite(coord.w))


def _bad_payload() -> CompressedVector:
    return CompressedVector("topk", 6, b"\x00" * 4, b"\x07\x00\x00\x00", 0.0, b"", "f32")


TestCoordinatorMachine = CoordinatorMachine.TestCase
TestCoordinatorMachine.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["identity", "topk", "randk", "sign"])
@pytest.mark.parametrize("wire_dtype", ["f32", "f64"])
def test_torch_api_matches_numpy(device: str, name: str, wire_dtype: str) -> None:
    from hedgerow.compute.gradcoding import compress as np_compress
    from hedgerow.compute.gradcoding import decompress, torch_api
    from hedgerow.compute.gradcoding import ef_step as np_ef_step

    rng = np.random.default_rng(7)
    spec = CompressorSpec(name, 0.1)
    e, v = rng.standard_normal(300), rng.standard_normal(300)
    cv_t, e_t = torch_api.ef_step(torch.tensor(e, device=device), torch.tensor(v, device=device), spec,
                                  np.random.default_rng(1), wire_dtype)
    cv_n, e_n = np_ef_step(e, v, spec, np.random.default_rng(1), wire_dtype)
    if name == "sign":
        assert cv_t.signbits == cv_n.signbits and cv_t.scale == pytest.approx(cv_n.scale, rel=1e-6)
    else:
        assert cv_t == cv_n
    c = decompress(cv_t, np.random.default_rng(1))
    np.testing.assert_allclose(e_t.cpu().numpy() + c, e + v, rtol=0, atol=1e-12)
    if name != "sign":
        np.testing.assert_array_equal(e_t.cpu().numpy(), e_n)
    grads = [torch.tensor(rng.standard_normal(5), device=device) for _ in range(2)]
    b_row = np.array([0.5, 0.0, 2.0])
    np.testing.assert_allclose(torch_api.encode(b_row, (0, 2), grads).cpu().numpy(),
                               0.5 * grads[0].cpu().numpy() + 2.0 * grads[1].cpu().numpy())
    assert np_compress(spec, v, np.random.default_rng(1), wire_dtype).dim == 300


@pytest.mark.parametrize("name", ["topk", "randk", "identity"])
def test_device_resident_worker_matches_numpy_worker(name: str) -> None:
    """A torch problem's worker with gradients and EF memory on the device sends the same replies."""
    from hedgerow.compute.gradcoding.compress import to_wire_values
    from hedgerow.compute.gradcoding.driver import build_problem

    setup = TrainSetup(n=4, s=1, problem="mlp", data_dim=8, m=15, mlp_sizes=(8, 6, 3), l2=0.0,
                       compressor=CompressorSpec(name, 0.1), error_feedback=name != "identity")
    job = setup.job_spec()
    problem = build_problem(setup)
    plain, resident = GcWorker(2, problem=problem), GcWorker(2, problem=problem, device_resident=True)
    for worker in (plain, resident):
        worker.on_message(4, job, 0.0)
    assert not isinstance(resident.memory, np.ndarray)
    rng = np.random.default_rng(0)
    accepted = -1
    for t in range(6):
        w = to_wire_values(problem.initial_weights() + 0.1 * rng.standard_normal(problem.dim), "f32")
        request = GradRequest(job.job_id, t, w, accepted)
        (a,), (b,) = plain.on_message(4, request, 0.0), resident.on_message(4, request, 0.0)
        assert isinstance(a, Send) and isinstance(b, Send) and a.message == b.message, t
        accepted = t if t % 3 else accepted  # some rounds accepted, some rolled back
    np.testing.assert_array_equal(resident.memory.cpu().numpy(), plain.memory)
