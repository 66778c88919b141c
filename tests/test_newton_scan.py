"""Scan properties (spec 6.1, 6.2) and ELK exactness (6.7) of compute/newton."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from newton_helpers import devices

from hedgerow.compute.newton import NewtonConfig, linear_recurrence, newton_step
from hedgerow.compute.newton.scan import KalmanElements, kalman_combine, kalman_scan
from hedgerow.compute.newton.steps import elk_elements, elk_step, linear_step
from hedgerow.compute.newton.systems import make, solver_kwargs


def _elements(T: int, D: int, *, diag: bool, seed: int, dtype: torch.dtype,
              device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if diag:
        A = torch.rand((T, D), generator=g, dtype=torch.float64) * 2.2 - 1.1
    else:
        A = torch.randn((T, D, D), generator=g, dtype=torch.float64)
        A = 1.05 * A / torch.linalg.matrix_norm(A, ord=2)[:, None, None]
    b = torch.randn((T, D), generator=g, dtype=torch.float64)
    return A.to(dtype=dtype, device=device), b.to(dtype=dtype, device=device)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 1100), D=st.sampled_from([1, 3, 8]), diag=st.booleans(), reverse=st.booleans(),
       f32=st.booleans(), seed=st.integers(0, 2**16))
@example(T=1, D=1, diag=True, reverse=False, f32=False, seed=0)
@example(T=2, D=3, diag=False, reverse=False, f32=False, seed=1)
@example(T=3, D=3, diag=True, reverse=True, f32=False, seed=2)
@example(T=1023, D=8, diag=False, reverse=True, f32=True, seed=3)
@example(T=1024, D=3, diag=True, reverse=False, f32=True, seed=4)
@example(T=1025, D=8, diag=False, reverse=False, f32=False, seed=5)
@example(T=794, D=1, diag=False, reverse=False, f32=True, seed=0)  # |A| = 1.05: grows to 4e16
def test_scan_equals_loop(T: int, D: int, diag: bool, reverse: bool, f32: bool, seed: int) -> None:
    dtype = torch.float32 if f32 else torch.float64
    A, b = _elements(T, D, diag=diag, seed=seed, dtype=dtype)
    par = linear_recurrence(A, b, diag=diag, parallel=True, reverse=reverse)
    seq = linear_recurrence(A, b, diag=diag, parallel=False, reverse=reverse)
    scale = 1.0 + float(seq.abs().max())
    # Each state is a product of up to T factors, rounded in a different order by the scan and by
    # the loop: the relative gap grows with T (f32 at T = 794 under 1.05x growth: 1.3e-5).
    tolerance = max(1e-5 if f32 else 1e-12, 2 * T * torch.finfo(dtype).eps)
    assert float((par - seq).abs().max()) <= tolerance * scale


@pytest.mark.parametrize("T", [1, 2, 3, 1023, 1024, 1025])
@pytest.mark.parametrize("device", devices())
def test_scan_edge_lengths_batched(T: int, device: str) -> None:
    for diag in (True, False):
        A, b = _elements(3 * T, 3, diag=diag, seed=T, dtype=torch.float64, device=device)
        A = A.reshape(3, T, *A.shape[1:])
        b = b.reshape(3, T, 3)
        par = linear_recurrence(A, b, diag=diag)
        seq = linear_recurrence(A, b, diag=diag, parallel=False)
        assert par.shape == b.shape and par.device == b.device
        assert float((par - seq).abs().max()) <= 1e-12 * (1 + float(seq.abs().max()))
        assert torch.equal(par[:, 0], b[:, 0])  # x_1 = b_1: s0 is absorbed by A_1 = 0


def test_scan_numpy_in_numpy_out() -> None:
    A, b = _elements(37, 3, diag=False, seed=9, dtype=torch.float64)
    x_np = linear_recurrence(A.numpy(), b.numpy(), diag=False)
    assert isinstance(x_np, np.ndarray)
    np.testing.assert_allclose(x_np, linear_recurrence(A, b, diag=False).numpy(), rtol=0, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(D=st.sampled_from([1, 2, 4]), diag=st.booleans(), seed=st.integers(0, 2**16))
def test_operator_associative(D: int, diag: bool, seed: int) -> None:
    """(e3 o e2) o e1 == e3 o (e2 o e1) for the affine pair and the Kalman 5-tuple."""
    g = torch.Generator().manual_seed(seed)

    Pair = tuple[torch.Tensor, torch.Tensor]

    def pair() -> Pair:
        shape = (D,) if diag else (D, D)
        f64 = torch.float64
        return torch.randn(shape, generator=g, dtype=f64), torch.randn(D, generator=g, dtype=f64)

    def comp(e2: Pair, e1: Pair) -> Pair:
        if diag:
            return e2[0] * e1[0], e2[0] * e1[1] + e2[1]
        return e2[0] @ e1[0], e2[0] @ e1[1] + e2[1]

    e1, e2, e3 = pair(), pair(), pair()
    left, right = comp(comp(e3, e2), e1), comp(e3, comp(e2, e1))
    for x, y in zip(left, right, strict=True):
        assert float((x - y).abs().max()) <= 1e-12 * (1 + float(x.abs().max()))

    def kalman() -> KalmanElements:
        if diag:
            a = torch.randn((1, D), generator=g, dtype=torch.float64)
            return KalmanElements(a, torch.randn((1, D), generator=g, dtype=torch.float64),
                                  torch.rand((1, D), generator=g, dtype=torch.float64) + 0.1,
                                  torch.randn((1, D), generator=g, dtype=torch.float64),
                                  torch.rand((1, D), generator=g, dtype=torch.float64))
        a = torch.randn((1, D, D), generator=g, dtype=torch.float64)
        m = torch.randn((1, D, D), generator=g, dtype=torch.float64)
        n = torch.randn((1, D, D), generator=g, dtype=torch.float64)
        return KalmanElements(a, torch.randn((1, D), generator=g, dtype=torch.float64),
                              m @ m.mT + 0.1 * torch.eye(D, dtype=torch.float64),
                              torch.randn((1, D), generator=g, dtype=torch.float64), n @ n.mT)

    k1, k2, k3 = kalman(), kalman(), kalman()
    kl = kalman_combine(kalman_combine(k1, k2, diag=diag), k3, diag=diag)
    kr = kalman_combine(k1, kalman_combine(k2, k3, diag=diag), diag=diag)
    for x, y in zip(kl, kr, strict=True):
        assert float((x - y).abs().max()) <= 1e-10 * (1 + float(x.abs().max()))


def test_kalman_scan_parallel_equals_sequential() -> None:
    S = torch.randn((77, 1, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for diag in (True, False):
        method = "quasi_elk" if diag else "elk"
        At = torch.randn((77, 1, 3) if diag else (77, 1, 3, 3), dtype=torch.float64,
                         generator=torch.Generator().manual_seed(1))
        At[0] = 0
        b = torch.randn((77, 1, 3), dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        lam = torch.tensor([0.5], dtype=torch.float64)
        e = elk_elements(At, b, S, lam, diag=diag)
        mp, cp = kalman_scan(e, diag=diag, parallel=True)
        ms, cs = kalman_scan(e, diag=diag, parallel=False)
        assert float((mp - ms).abs().max()) <= 1e-10, method
        assert float((cp - cs).abs().max()) <= 1e-10, method


# ---------------------------------------------------------------------------------------------
# 6.7: the smoother step is the exact Levenberg-Marquardt step


def _dense_lm(A: torch.Tensor, S: torch.Tensor, F: torch.Tensor, lam: float) -> torch.Tensor:
    """S + Δ with Δ = -(JᵀJ + λI)^{-1} Jᵀ r, J = I - shift(A) built densely (T·D × T·D)."""
    T, D = S.shape
    J = torch.eye(T * D, dtype=torch.float64)
    for t in range(1, T):
        J[t * D : (t + 1) * D, (t - 1) * D : t * D] = -A[t]
    r = (S - F).reshape(-1)
    delta = -torch.linalg.solve(J.T @ J + lam * torch.eye(T * D, dtype=torch.float64), J.T @ r)
    return S + delta.reshape(T, D)


@pytest.mark.parametrize("lam", [1e-3, 1.0, 10.0])
@pytest.mark.parametrize("method", ["elk", "quasi_elk"])
def test_elk_smoother_step_is_dense_lm_solve(lam: float, method: str) -> None:
    problem = make("gru", T=7, D=3, seed=2)
    system = problem.system
    S = torch.randn((7, 3), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    S_prev = torch.cat([problem.s0[None], S[:-1]])
    F, A = system.f_and_jac(S_prev, problem.inputs)
    if method == "quasi_elk":
        A = torch.diag_embed(torch.diagonal(A, dim1=-2, dim2=-1))
    expected = _dense_lm(A, S, F, lam)
    got = newton_step(system.f, problem.s0, problem.inputs, S, config=NewtonConfig(method=method, lam=lam),  # type: ignore[arg-type]
                      **solver_kwargs(system))
    assert float((got - expected).abs().max()) <= 1e-10
    filtered = newton_step(system.f, problem.s0, problem.inputs, S,
                           config=NewtonConfig(method=method, lam=lam, elk_pass="filter"),  # type: ignore[arg-type]
                           **solver_kwargs(system))
    assert float((filtered[-1] - got[-1]).abs().max()) <= 1e-10  # same row T


@pytest.mark.parametrize("diag", [True, False])
def test_elk_tiny_lambda_is_deer_step(diag: bool) -> None:
    """Time-major internals: Ã, b, y are [T,B,...]."""
    g = torch.Generator().manual_seed(11)
    T, D = 50, 4
    if diag:
        At = 0.9 * (torch.rand((T, 1, D), generator=g, dtype=torch.float64) * 2 - 1)
    else:
        At = torch.randn((T, 1, D, D), generator=g, dtype=torch.float64)
        At = 0.9 * At / torch.linalg.matrix_norm(At, ord=2)[..., None, None]
    At[0] = 0
    b = torch.randn((T, 1, D), generator=g, dtype=torch.float64)
    y = torch.randn((T, 1, D), generator=g, dtype=torch.float64)
    lam = torch.tensor([1e-12], dtype=torch.float64)
    elk = elk_step(At, b, y, lam, diag=diag, smoother=True, parallel=True)
    deer = linear_recurrence(At.movedim(0, -2 if diag else -3), b.movedim(0, -2), diag=diag).movedim(-2, 0)
    assert float((elk - deer).abs().max()) <= 1e-8
    # and the step function routes λ = 0 to DEER exactly
    S_prev = torch.cat([torch.zeros((1, 1, D), dtype=torch.float64), y[:-1]], dim=0)
    F = b + (At * S_prev if diag else (At @ S_prev[..., None])[..., 0])
    zero = torch.zeros(1, dtype=torch.float64)
    method = "quasi_deer" if diag else "deer"
    step = linear_step(method, y, S_prev, F, At.clone(), zero, NewtonConfig(method=method))  # type: ignore[arg-type]
    assert float((step - deer).abs().max()) <= 1e-12
