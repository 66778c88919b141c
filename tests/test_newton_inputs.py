"""Bad input and faults (spec section 7): one test per row of the table."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from newton_helpers import gru, gru_numpy, run

from hedgerow.compute.newton import NewtonConfig, NewtonReject, residual, serve, solve
from hedgerow.compute.newton.coordinator import NewtonCoordinator, NewtonOutcome
from hedgerow.compute.newton.jobs import JobConfig, make_job, to_wire_tensor
from hedgerow.compute.newton.systems import solver_kwargs
from hedgerow.protocols.actions import Deliver

WORKER = b"w" * 32


def _solve(problem, **kw):  # type: ignore[no-untyped-def]
    args = {"config": NewtonConfig(method="deer"), **solver_kwargs(problem.system), **kw}
    return solve(problem.system.f, args.pop("s0", problem.s0), args.pop("inputs", problem.inputs), **args)


def test_shapes_disagree_name_argument_and_shapes() -> None:
    problem = gru(10)
    with pytest.raises(ValueError, match=r"s0 must have shape \[D\], got \[1, 4\]"):
        _solve(problem, s0=problem.s0[None])
    with pytest.raises(ValueError, match=r"inputs must have shape .*got \[1, 1, 10, 2\] \(s0 \[4\]\)"):
        _solve(problem, inputs=problem.inputs[None, None])
    with pytest.raises(ValueError, match=r"init must have shape \[10, 4\], got \[10, 3\]"):
        _solve(problem, init=torch.zeros((10, 3), dtype=torch.float64))
    batch = gru(10, B=2)
    with pytest.raises(ValueError, match=r"init must have shape \[2, 10, 4\], got \[10, 4\]"):
        _solve(batch, init=torch.zeros((10, 4), dtype=torch.float64))


def test_f_returning_wrong_shape_or_dtype() -> None:
    problem = gru(10)
    for bad in (lambda S, U: S[:, :2], lambda S, U: S.float()):
        with pytest.raises(ValueError, match="f returned shape"):
            solve(bad, problem.s0, problem.inputs, config=NewtonConfig(method="jacobi"))
    with pytest.raises(ValueError, match="f returned shape"):
        solve(lambda S, U: S[:, :1], problem.s0, problem.inputs, config=NewtonConfig(method="sequential"))


@pytest.mark.parametrize("where", ["s0", "inputs", "init"])
def test_non_finite_inputs_rejected(where: str) -> None:
    problem = gru(10)
    s0, inputs, init = problem.s0.clone(), problem.inputs.clone(), torch.zeros((10, 4), dtype=torch.float64)
    {"s0": s0, "inputs": inputs, "init": init}[where][0] = math.nan
    with pytest.raises(ValueError, match=f"{where} contains non-finite"):
        _solve(problem, s0=s0, inputs=inputs, init=init)
    bad_inputs = problem.inputs.clone()[None]
    bad_inputs[0, 3, 1] = math.inf
    job = make_job(b"j" * 16, problem.system, problem.s0, bad_inputs, NewtonConfig())
    reject = NewtonReject(job_id=b"j" * 16, reason="non_finite_input")
    assert serve(job, worker=WORKER, device="cpu") == reject


def test_zero_length_sequence() -> None:
    problem = gru(0)
    for method in ("deer", "quasi_elk", "sequential"):
        result = _solve(problem, config=NewtonConfig(method=method))  # type: ignore[arg-type]
        assert result.states.shape == (0, 4)
        assert result.status == "converged" and result.iterations == 0


def test_dtype_not_float32_or_float64() -> None:
    problem = gru(10)
    with pytest.raises(TypeError, match="only float32 and float64"):
        _solve(problem, s0=problem.s0.half(), inputs=problem.inputs.half())
    with pytest.raises(TypeError, match="only float32 and float64"):
        solve(lambda S, U: S, np.zeros(2, dtype=np.int64), np.zeros((3, 1)), config=NewtonConfig())
    with pytest.raises(TypeError, match="differs from s0"):
        _solve(problem, inputs=problem.inputs.float())


@pytest.mark.parametrize("bad", [
    {"method": "newton"}, {"elk_pass": "both"}, {"lam_schedule": "cosine"}, {"tol": 0.0},
    {"tol": -1.0}, {"lam": -1e-3}, {"damping_k": 1.0}, {"damping_k": -0.1}, {"max_iter": 0},
    {"scan": "tree"}, {"n_probes": 0},
])
def test_bad_config_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NewtonConfig(**bad)  # type: ignore[arg-type]
    problem = gru(10)
    job = make_job(b"c" * 16, problem.system, problem.s0, problem.inputs, NewtonConfig())
    values = {k: getattr(job.config, k) for k in job.config.__dataclass_fields__} | bad
    bad_job = replace(job, config=JobConfig(**values))  # type: ignore[arg-type]
    assert serve(bad_job, worker=WORKER, device="cpu") == NewtonReject(job_id=b"c" * 16, reason="bad_config")


def test_numpy_backend_needs_its_jacobian() -> None:
    problem = gru(10)
    f, jac, _ = gru_numpy(problem)
    s0, inputs = problem.s0.numpy(), problem.inputs.numpy()
    with pytest.raises(ValueError, match="needs jac="):
        solve(f, s0, inputs, config=NewtonConfig(method="deer"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs jac_diag="):
        solve(f, s0, inputs, config=NewtonConfig(method="quasi_deer"))  # type: ignore[arg-type]
    assert solve(f, s0, inputs, config=NewtonConfig(method="jacobi")).status == "converged"  # type: ignore[arg-type]
    assert solve(f, s0, inputs, config=NewtonConfig(method="quasi_deer"), jac=jac).status == "converged"  # type: ignore[arg-type]


def test_f_producing_nan_is_guarded_never_raised() -> None:
    problem = gru(64)
    system = problem.system

    def fragile(S: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        out = system.f(S, U)
        return torch.where(S.abs().amax(dim=-1, keepdim=True) > 0.5, math.nan, out)

    guess = torch.full((64, 4), 3.0, dtype=torch.float64)  # far off: f is NaN on every row but row 1
    result = solve(fragile, problem.s0, problem.inputs, config=NewtonConfig(method="deer"), init=guess)
    assert result.status in ("converged", "non_finite", "max_iter")
    assert result.iterations <= 65

    def broken(S: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        out = system.f(S, U)
        return torch.where(U[:, :1] > 1.5, math.inf, out)  # the true trajectory itself is broken

    for method in ("deer", "quasi_deer", "elk", "jacobi"):
        result = solve(broken, problem.s0, problem.inputs, config=NewtonConfig(method=method))  # type: ignore[arg-type]
        assert result.status == "non_finite", method
        r = residual(broken, problem.s0, result.states, problem.inputs)
        assert not math.isfinite(float(r.abs().max()))


def test_job_too_large_or_unknown_system_rejected_and_counted() -> None:
    problem = gru(50)
    job = make_job(b"t" * 16, problem.system, problem.s0, problem.inputs, NewtonConfig())
    assert serve(job, worker=WORKER, device="cpu", max_job_elems=100) == NewtonReject(b"t" * 16, "too_large")
    unknown = replace(job, system="lorenz")
    assert serve(unknown, worker=WORKER, device="cpu") == NewtonReject(b"t" * 16, "unknown_system")
    bad_shape = replace(job, s0=to_wire_tensor(torch.zeros((2, 4), dtype=torch.float64)))
    assert serve(bad_shape, worker=WORKER, device="cpu") == NewtonReject(b"t" * 16, "bad_shape")
    coordinator = NewtonCoordinator([0, 1, 2, 3], max_job_elems=100)
    (deliver,) = coordinator.submit(job, 0.0)
    assert isinstance(deliver, Deliver) and deliver.value == NewtonOutcome(b"t" * 16, False, None, None, None,
                                                                          "too_large")
    # a worker refusing a job is counted against that peer and the job moves on
    coordinator = NewtonCoordinator([0, 1, 2, 3])
    coordinator.submit(job, 0.0)
    actions = coordinator.on_message(0, NewtonReject(b"t" * 16, "too_large"), 1.0)
    assert coordinator.rejects_received[0] == 1
    assert [type(a).__name__ for a in actions] == ["Persist", "Send", "SetTimer"]


def test_run_helper_matches_direct_solve() -> None:
    problem = gru(20)
    assert run(problem, "deer").iterations == _solve(problem).iterations
