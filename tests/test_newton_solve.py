"""solve / newton_step / residual on the spec's test systems (spec 6.3-6.10, test plan 2-7)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from newton_helpers import devices, gru, gru_numpy, loop, run

from hedgerow.compute.newton import NewtonConfig, estimate_lle, newton_step, residual, solve
from hedgerow.compute.newton.jacobians import torch_func_jac
from hedgerow.compute.newton.systems import SYSTEMS, make, solver_kwargs

METHODS = ["deer", "quasi_deer", "elk", "quasi_elk", "jacobi"]


# ---------------------------------------------------------------------------------------------
# 6.4: every method equals the sequential loop


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("device", devices())
def test_every_method_equals_loop_gru(method: str, dtype: torch.dtype, device: str) -> None:
    problem = gru(1000, dtype=dtype, device=device)
    result = run(problem, method)
    reference = loop(problem)
    assert result.status == "converged"
    assert result.states.dtype == dtype and result.states.device.type == device
    err = float((result.states - reference.states).abs().max())
    assert err <= (1e-8 if dtype == torch.float64 else 1e-4), err


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_picard_equals_loop_ode_euler(dtype: torch.dtype) -> None:
    problem = make("ode_euler", T=100, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else None
    result = run(problem, "picard", tol=tol)
    assert result.status == "converged"
    err = float((result.states - loop(problem).states).abs().max())
    assert err <= (1e-8 if dtype == torch.float64 else 1e-4), err


@pytest.mark.parametrize("method", ["deer", "quasi_deer", "quasi_elk", "jacobi"])
def test_numpy_and_torch_agree(method: str) -> None:
    problem = gru(300)
    f, jac, jac_diag = gru_numpy(problem)
    config = NewtonConfig(method=method)  # type: ignore[arg-type]
    got = solve(f, problem.s0.numpy(), problem.inputs.numpy(), config=config, jac=jac,  # type: ignore[arg-type]
                jac_diag=jac_diag)  # type: ignore[arg-type]
    assert isinstance(got.states, np.ndarray)
    ref = run(problem, method)
    assert got.iterations == ref.iterations
    assert float(np.abs(got.states - ref.states.numpy()).max()) <= 1e-12


def test_cuda_equals_cpu_when_available() -> None:
    for device in devices()[1:]:
        cpu = run(gru(500), "deer")
        gpu = run(gru(500, device=device), "deer")
        assert float((gpu.states.cpu() - cpu.states).abs().max()) <= 1e-10


@pytest.mark.parametrize("name", SYSTEMS)
def test_fused_jacobians_equal_torch_func(name: str) -> None:
    problem = make(name, T=40, D=5 if name in ("gru", "ode_euler") else None)
    system = problem.system
    S = torch.randn((40, system.D), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    U = problem.inputs
    F, A = system.f_and_jac(S, U)
    F2, d = system.f_and_jac_diag(S, U)
    auto = torch_func_jac(system.f)(S, U)
    assert torch.allclose(F, system.f(S, U), rtol=0, atol=1e-14) and torch.equal(F, F2)
    assert float((A - auto).abs().max()) <= 1e-12
    assert float((d - torch.diagonal(auto, dim1=-2, dim2=-1)).abs().max()) <= 1e-12


def test_torch_func_default_path_equals_fused() -> None:
    problem = gru(200)
    for method in ("deer", "quasi_deer"):
        auto = run(problem, method, fused=False)
        fused = run(problem, method)
        assert auto.iterations == fused.iterations
        assert float((auto.states - fused.states).abs().max()) <= 1e-12


def test_hutchinson_diagonal_converges_to_loop() -> None:
    problem = gru(200)
    result = run(problem, "quasi_deer", diag_estimator="hutchinson", n_probes=4, fused=False)
    assert result.status == "converged"
    assert float((result.states - loop(problem).states).abs().max()) <= 1e-8


# ---------------------------------------------------------------------------------------------
# 6.3, 6.5, 6.6, 6.8, 6.9, 6.10


def test_fixed_point() -> None:
    problem = gru(500)
    states = loop(problem).states
    r = residual(problem.system.f, problem.s0, states, problem.inputs)
    eps = torch.finfo(torch.float64).eps
    assert float(r.abs().max()) <= 64 * eps * (1 + float(states.abs().max()))
    again = solve(problem.system.f, problem.s0, problem.inputs, config=NewtonConfig(method="deer"),
                  init=states, **solver_kwargs(problem.system))
    assert again.status == "converged" and again.iterations == 0
    step = newton_step(problem.system.f, problem.s0, problem.inputs, states,
                       config=NewtonConfig(method="deer"), **solver_kwargs(problem.system))
    assert float((step - states).abs().max()) <= 1e-12


@pytest.mark.parametrize("method", ["deer", "quasi_deer", "picard", "jacobi"])
def test_prefix_property(method: str) -> None:
    problem = gru(30)
    exact = loop(problem).states
    S = torch.randn((30, 4), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for i in range(1, 7):
        S = newton_step(problem.system.f, problem.s0, problem.inputs, S,
                        config=NewtonConfig(method=method), **solver_kwargs(problem.system))  # type: ignore[arg-type]
        assert float((S[:i] - exact[:i]).abs().max()) <= 1e-12, (method, i)


@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("method", ["deer", "quasi_deer", "elk", "quasi_elk", "picard", "jacobi"])
def test_termination_within_T_plus_1(name: str, method: str) -> None:
    T = 24
    problem = make(name, T=T, seed=0, g=3.0 if name == "mfrnn" else 0.5)
    result = run(problem, method)
    assert result.iterations <= T + 1
    assert result.status == "converged", (result.status, result.max_residual)


@pytest.mark.parametrize("method", METHODS + ["picard"])
def test_reported_max_residual_is_recomputed(method: str) -> None:
    problem = gru(200)
    result = run(problem, method, max_iter=3 if method != "deer" else None)
    r = residual(problem.system.f, problem.s0, result.states, problem.inputs)
    assert result.max_residual == float(r.abs().max())
    assert result.residual_history[-1] == result.max_residual
    if result.status == "converged":
        assert result.max_residual <= 1e-10
    else:
        assert result.status == "max_iter" and result.iterations == 3


def test_quasi_deer_is_jacobi_when_diagonal_vanishes() -> None:
    problem = make("mfrnn", T=200, seed=1)
    quasi = run(problem, "quasi_deer", record_trace=True)
    jacobi = run(problem, "jacobi", record_trace=True)
    assert quasi.iterations == jacobi.iterations and len(quasi.trace) == len(jacobi.trace)
    for a, b in zip(quasi.trace, jacobi.trace, strict=True):
        assert float((a - b).abs().max()) <= 1e-12


def test_workspace_ratio_dense_over_quasi() -> None:
    problem = make("gru", T=64, D=16, seed=0)
    deer = run(problem, "deer", max_iter=1)
    quasi = run(problem, "quasi_deer", max_iter=1)
    assert deer.workspace_bytes / quasi.workspace_bytes >= 16 / 2


# ---------------------------------------------------------------------------------------------
# The LLE condition (test plan 4, 5)


@pytest.mark.parametrize("name", ["gru", "mfrnn"])
def test_contracting_iterations_flat_in_T(name: str) -> None:
    counts: dict[str, list[int]] = {"deer": [], "quasi_deer": []}
    for T in (100, 10_000):
        problem = make(name, T=T, seed=1, g=0.5)
        for method in counts:
            result = run(problem, method)
            assert result.status == "converged"
            counts[method].append(result.iterations)
    assert max(counts["deer"]) <= 8 and counts["deer"][1] <= counts["deer"][0] + 3, counts
    assert max(counts["quasi_deer"]) <= 40 and counts["quasi_deer"][1] <= counts["quasi_deer"][0] + 3, counts


def test_gru_small_reference_counts() -> None:
    """Spec 9 [M], seed 1, T = 1000: DEER 4, quasi-DEER 13, ELK 8, quasi-ELK 13, Jacobi 34-42."""
    problem = gru(1000)
    got = {m: run(problem, m).iterations for m in METHODS}
    assert got["deer"] == 4 and got["quasi_deer"] == 13 and got["elk"] == 8 and got["quasi_elk"] == 13
    assert 34 <= got["jacobi"] <= 42


@pytest.mark.parametrize("T", [128, 512])
def test_chaotic_logistic_needs_about_T(T: int) -> None:
    problem = make("logistic", T=T)
    result = run(problem, "deer")
    assert result.status == "converged" and result.iterations >= 0.8 * T
    assert result.max_residual <= 1e-10  # residuals only: no state equality on a chaotic map


def _mfrnn_chaotic(T: int) -> None:
    problem = make("mfrnn", T=T, seed=0, g=3.0)
    result = run(problem, "deer")
    assert result.status == "converged" and result.max_residual <= 1e-10
    # the spec's [M] prototype measured 120-125/128 and 499-509/512; this solver takes 101/128 and
    # 485/512 (the lazy guard lets Newton gain a few rows at once): "about T", not O(log T)
    assert result.iterations >= 0.75 * T, result.iterations


def test_chaotic_mfrnn_needs_about_T() -> None:
    _mfrnn_chaotic(128)


@pytest.mark.slow
def test_chaotic_mfrnn_needs_about_T_long() -> None:
    _mfrnn_chaotic(512)


def test_estimate_lle_logistic_and_gru() -> None:
    logistic = make("logistic", T=20_000)
    states = loop(logistic).states
    S_prev = torch.cat([logistic.s0[None], states[:-1]])
    _, J = logistic.system.f_and_jac(S_prev, logistic.inputs)
    lle, overshoot = estimate_lle(J[1:], seed=0)
    assert abs(lle - math.log(2)) <= 0.03 and overshoot >= 1.0
    problem = gru(2000)
    states = loop(problem).states
    _, J = problem.system.f_and_jac(torch.cat([problem.s0[None], states[:-1]]), problem.inputs)
    lle_gru, _ = estimate_lle(J[1:].numpy(), seed=1)
    assert lle_gru < -0.3
    zero = np.zeros((5, 2, 2))
    assert estimate_lle(zero, seed=0)[0] == -math.inf


# ---------------------------------------------------------------------------------------------
# Stability (test plan 6) and batches (7)


def test_unguarded_deer_on_logistic_ends_without_exception() -> None:
    problem = make("logistic", T=512)
    started = time.process_time()  # CPU seconds: the shared CI machine's load does not count
    result = run(problem, "deer", prefix_guard=False, state_clip=math.inf)
    assert time.process_time() - started < 5.0
    assert result.status in ("non_finite", "max_iter")
    assert result.iterations <= 513


def test_guarded_deer_on_logistic_converges_with_resets() -> None:
    result = run(make("logistic", T=512), "deer")
    assert result.status == "converged" and result.resets > 0


def test_quasi_elk_on_logistic_needs_no_resets() -> None:
    result = run(make("logistic", T=512), "quasi_elk", lam=1.0)
    assert result.status == "converged" and result.resets == 0


def test_adaptive_lambda_converges() -> None:
    problem = gru(300)
    result = run(problem, "quasi_elk", lam=1.0, lam_schedule="adaptive")
    assert result.status == "converged"
    assert float((result.states - loop(problem).states).abs().max()) <= 1e-8


def test_jac_clip_and_damping_keep_termination() -> None:
    problem = make("logistic", T=64)
    for extra in ({"jac_clip": 1.0}, {"damping_k": 0.5}):
        result = run(problem, "quasi_deer", **extra)
        assert result.status == "converged" and result.iterations <= 65


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_solo_runs(method: str) -> None:
    batch = gru(300, B=3, seed=2)
    together = run(batch, method)
    assert together.states.shape == (3, 300, 4)
    for b in range(3):
        alone = solve(batch.system.f, batch.s0, batch.inputs[b], config=NewtonConfig(method=method),  # type: ignore[arg-type]
                      **solver_kwargs(batch.system))
        assert int(together.iterations[b]) == alone.iterations
        assert float((together.states[b] - alone.states).abs().max()) <= 1e-12
        assert abs(float(together.max_residual[b]) - alone.max_residual) <= 1e-14
