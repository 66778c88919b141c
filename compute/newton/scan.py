"""Associative scans for linear recurrences `x_t = A_t x_{t-1} + b_t`, `x_0 = 0` (spec 5.3).

Shapes: time is axis 0 (time-major, so every odd/even slice is a contiguous block): b is
`[T, ..., D]`; A is `[T, ..., D, D]` (dense) or `[T, ..., D]` (diagonal). The parallel
form is the odd/even recursion of the spec: one batched combine of neighbouring pairs, a recursive
scan of the pairs, one batched fix-up of the odd positions. Only the pairwise products of A are
formed (the prefix products are never needed for the b-part), so the work is O(T) and the depth
O(log T), for any T >= 1. `sequential` is the test reference: a plain loop over t.

The ELK filter scan combines Kalman 5-tuples (A, b, C, eta, J) the same way (spec 5.6).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def _apply(A: Tensor, x: Tensor, *, diag: bool) -> Tensor:
    """A_t x_t for every t (matrix-vector or elementwise)."""
    if diag:
        return A * x
    return torch.matmul(A, x.unsqueeze(-1)).squeeze(-1)


def _compose(A_late: Tensor, A_early: Tensor, *, diag: bool) -> Tensor:
    return A_late * A_early if diag else torch.matmul(A_late, A_early)


def scan_parallel(A: Tensor, b: Tensor, *, diag: bool) -> Tensor:
    """b-part of the inclusive prefixes E_t = e_t o ... o e_1 (time on axis 0), odd/even recursion."""
    T = b.shape[0]
    if T == 1:
        return b.clone()
    n = T // 2
    A_odd, A_even = A[0 : 2 * n : 2], A[1 : 2 * n : 2]  # e_1, e_3, ... and e_2, e_4, ... (1-based)
    pair_A = _compose(A_even, A_odd, diag=diag)
    pair_b = _apply(A_even, b[0 : 2 * n : 2], diag=diag)
    pair_b += b[1 : 2 * n : 2]
    prefix = scan_parallel(pair_A, pair_b, diag=diag)  # prefix_j = E_{2j}
    del pair_A, pair_b
    out = torch.empty_like(b)
    out[0] = b[0]
    out[1 : 2 * n : 2] = prefix
    rest = (T - 1) // 2  # odd positions 2j+1 (1-based), j >= 1
    if rest:
        fix = _apply(A[2:T:2], prefix[:rest], diag=diag)
        torch.add(fix, b[2:T:2], out=out[2:T:2])
    return out


def scan_sequential(A: Tensor, b: Tensor, *, diag: bool) -> Tensor:
    """The reference loop: x_1 = b_1, x_t = A_t x_{t-1} + b_t (time on axis 0)."""
    out = torch.empty_like(b)
    if b.shape[0] == 0:
        return out
    x = b[0]
    out[0] = x
    for t in range(1, b.shape[0]):
        x = _apply(A[t], x, diag=diag) + b[t]
        out[t] = x
    return out


def solve_recurrence(A: Tensor, b: Tensor, *, diag: bool, parallel: bool = True,
                     reverse: bool = False) -> Tensor:
    """x_t = A_t x_{t-1} + b_t (x_0 = 0); reverse: x_t = A_t x_{t+1} + b_t (x_{T+1} = 0). Time on axis 0."""
    if b.shape[0] == 0:
        return torch.empty_like(b)
    if reverse:
        A = torch.flip(A, dims=(0,))
        b = torch.flip(b, dims=(0,))
    x = scan_parallel(A, b, diag=diag) if parallel else scan_sequential(A, b, diag=diag)
    return torch.flip(x, dims=(0,)) if reverse else x


# ---------------------------------------------------------------------------------------------
# ELK: the parallel Kalman filter (Saerkkae & Garcia-Fernandez), dense or per-coordinate


class KalmanElements(NamedTuple):
    """Filter scan elements: dense A, C, J `[T,..,D,D]`, b, eta `[T,..,D]`; diagonal: all `[T,..,D]`."""

    A: Tensor
    b: Tensor
    C: Tensor
    eta: Tensor
    J: Tensor


def _index(e: KalmanElements, sl: slice, *, diag: bool) -> KalmanElements:
    return KalmanElements(e.A[sl], e.b[sl], e.C[sl], e.eta[sl], e.J[sl])


def kalman_combine(e1: KalmanElements, e2: KalmanElements, *, diag: bool) -> KalmanElements:
    """e2 o e1 for an earlier e1 and a later e2 (spec 5.6, with N = M^T for symmetric C, J)."""
    if diag:
        m = 1.0 / (1.0 + e1.C * e2.J)
        A = e2.A * m * e1.A
        b = e2.A * m * (e1.b + e1.C * e2.eta) + e2.b
        C = e2.A * m * e1.C * e2.A + e2.C
        eta = e1.A * m * (e2.eta - e2.J * e1.b) + e1.eta
        J = e1.A * m * e2.J * e1.A + e1.J
        return KalmanElements(A, b, C, eta, J)
    D = e1.b.shape[-1]
    eye = torch.eye(D, dtype=e1.b.dtype, device=e1.b.device)
    lhs = eye + e1.C @ e2.J
    rhs = torch.cat([e1.A, e1.C, (e1.b + _apply(e1.C, e2.eta, diag=False)).unsqueeze(-1)], dim=-1)
    sol = torch.linalg.solve(lhs, rhs)
    MA1, MC1, Mv = sol[..., :D], sol[..., D : 2 * D], sol[..., 2 * D]
    A = e2.A @ MA1
    b = _apply(e2.A, Mv, diag=False) + e2.b
    C = e2.A @ MC1 @ e2.A.mT + e2.C
    C = 0.5 * (C + C.mT)
    MA1_T = MA1.mT
    eta = _apply(MA1_T, e2.eta - _apply(e2.J, e1.b, diag=False), diag=False) + e1.eta
    J = MA1_T @ e2.J @ e1.A + e1.J
    J = 0.5 * (J + J.mT)
    return KalmanElements(A, b, C, eta, J)


def kalman_scan(e: KalmanElements, *, diag: bool, parallel: bool = True) -> tuple[Tensor, Tensor]:
    """Filtered means (b-part) and covariances (C-part) of the inclusive prefixes (time on axis 0)."""
    T = e.b.shape[0]
    if not parallel or T == 1:
        return _kalman_sequential(e, diag=diag)
    n = T // 2
    pairs = kalman_combine(_index(e, slice(0, 2 * n, 2), diag=diag), _index(e, slice(1, 2 * n, 2), diag=diag),
                           diag=diag)
    pb, pC = kalman_scan(pairs, diag=diag, parallel=True)
    del pairs
    mean = torch.empty_like(e.b)
    cov = torch.empty_like(e.C)
    mean[0], cov[0] = e.b[0], e.C[0]
    mean[1 : 2 * n : 2], cov[1 : 2 * n : 2] = pb, pC
    rest = (T - 1) // 2
    if rest:
        # prefixes E_2j have A = 0, eta = 0, J = 0 exactly (e_1 has them), so only (b, C) are carried
        zero_m = torch.zeros_like(pC[:rest])
        prefix = KalmanElements(zero_m, pb[:rest], pC[:rest], torch.zeros_like(pb[:rest]), zero_m)
        combined = kalman_combine(prefix, _index(e, slice(2, T, 2), diag=diag), diag=diag)
        mean[2:T:2], cov[2:T:2] = combined.b, combined.C
    return mean, cov


def _kalman_sequential(e: KalmanElements, *, diag: bool) -> tuple[Tensor, Tensor]:
    T = e.b.shape[0]
    mean = torch.empty_like(e.b)
    cov = torch.empty_like(e.C)
    acc = _index(e, slice(0, 1), diag=diag)
    mean[0:1], cov[0:1] = acc.b, acc.C
    for t in range(1, T):
        acc = kalman_combine(acc, _index(e, slice(t, t + 1), diag=diag), diag=diag)
        mean[t : t + 1], cov[t : t + 1] = acc.b, acc.C
    return mean, cov
