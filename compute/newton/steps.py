"""One linear solve of each method (spec 5.2, 5.6): from the iterate S and f, Ã at it, to S^(i+1).

All tensors are batched and time-major: S, S_prev, F `[T,B,D]`; Ã dense `[T,B,D,D]` or diagonal
`[T,B,D]`; `lam` is per sequence `[B]` (adaptive ELK). Ã_1 = 0 is applied here (in place on the
evaluation's fresh Jacobian buffer), so s0 enters only through F.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hedgerow.compute.newton.config import DENSE_METHODS, NewtonConfig
from hedgerow.compute.newton.scan import KalmanElements, kalman_scan, solve_recurrence


def transition(method: str, A: Tensor | None, S: Tensor, config: NewtonConfig) -> Tensor | None:
    """Ã of the method at the iterate: damped by (1 - k), clipped (quasi), Ã_1 = 0."""
    if method == "jacobi":
        return None
    if method == "picard":
        At = torch.full_like(S, 1.0 - config.damping_k)
    else:
        if A is None:
            raise ValueError(f"method {method} needs a Jacobian")
        At = A if config.damping_k == 0.0 else A * (1.0 - config.damping_k)
        if config.jac_clip is not None and method not in DENSE_METHODS:
            At = torch.clamp(At, -config.jac_clip, config.jac_clip)
    At[0] = 0.0
    return At


def offsets(At: Tensor, F: Tensor, S_prev: Tensor, *, diag: bool) -> Tensor:
    """b_t = f(s_{t-1}, u_t) - Ã_t s_{t-1} (Ã_1 = 0 makes b_1 = f(s0, u_1))."""
    if diag:
        return torch.addcmul(F, At, S_prev, value=-1.0)
    return F - torch.matmul(At, S_prev.unsqueeze(-1)).squeeze(-1)


def linear_step(method: str, S: Tensor, S_prev: Tensor, F: Tensor, A: Tensor | None,
                lam: Tensor, config: NewtonConfig) -> Tensor:
    """S^(i+1) for every sequence of the batch (no guards)."""
    if method == "jacobi":
        return F.clone()
    At = transition(method, A, S, config)
    if At is None:
        raise ValueError(f"method {method} needs a transition")
    diag = method not in DENSE_METHODS
    if not diag and At.shape[-1] == 1:  # D = 1: a 1x1 matrix is its diagonal (same math, no matmuls)
        At, diag = At[..., 0], True
    b = offsets(At, F, S_prev, diag=diag)
    parallel = config.scan == "parallel"
    if method == "picard" and config.damping_k == 0.0 and parallel:
        return torch.cumsum(b, dim=0)
    if method in ("elk", "quasi_elk") and bool((lam > 0).all()):
        return elk_step(At, b, S, lam, diag=diag, smoother=config.elk_pass == "smoother",
                        parallel=parallel)
    return solve_recurrence(At, b, diag=diag, parallel=parallel)


def _kappa(lam: Tensor, like: Tensor, *, diag: bool) -> Tensor:
    kappa = lam / (1.0 + lam)
    shape = (1, -1, 1) if diag else (1, -1, 1, 1)
    return kappa.to(dtype=like.dtype, device=like.device).reshape(shape)


def elk_elements(At: Tensor, b: Tensor, y: Tensor, lam: Tensor, *, diag: bool) -> KalmanElements:
    """Filter elements of the LM-damped linearization (spec 5.6; Ã_1 = 0 gives the t = 1 row)."""
    k = _kappa(lam, b, diag=True)
    innovation = y - b
    mean = b + k * innovation
    if diag:
        return KalmanElements(A=(1.0 - k) * At, b=mean, C=(1.0 - k).expand_as(b).clone(),
                              eta=k * At * innovation, J=k * At * At)
    km = _kappa(lam, b, diag=False)
    D = b.shape[-1]
    eye = torch.eye(D, dtype=b.dtype, device=b.device)
    AtT = At.mT
    return KalmanElements(
        A=(1.0 - km) * At,
        b=mean,
        C=((1.0 - km) * eye).expand_as(At).clone(),
        eta=k * torch.matmul(AtT, innovation.unsqueeze(-1)).squeeze(-1),
        J=km * (AtT @ At),
    )


def elk_step(At: Tensor, b: Tensor, y: Tensor, lam: Tensor, *, diag: bool, smoother: bool,
             parallel: bool) -> Tensor:
    """The exact LM step (smoother) or the filtered means (filter) of the ELK model."""
    elements = elk_elements(At, b, y, lam, diag=diag)
    mean_f, cov_f = kalman_scan(elements, diag=diag, parallel=parallel)
    del elements
    if not smoother or b.shape[0] == 1:
        return mean_f
    A_next = At[1:]
    mean_f_head = mean_f[:-1]
    cov_f_head = cov_f[:-1]
    if diag:
        cov_p = A_next * cov_f_head * A_next + 1.0
        mean_p = A_next * mean_f_head + b[1:]
        gain = cov_f_head * A_next / cov_p
        g_head = mean_f_head - gain * mean_p
    else:
        D = b.shape[-1]
        eye = torch.eye(D, dtype=b.dtype, device=b.device)
        cov_p = A_next @ cov_f_head @ A_next.mT + eye
        cov_p = 0.5 * (cov_p + cov_p.mT)
        mean_p = torch.matmul(A_next, mean_f_head.unsqueeze(-1)).squeeze(-1) + b[1:]
        gain = torch.linalg.solve(cov_p, A_next @ cov_f_head).mT
        g_head = mean_f_head - torch.matmul(gain, mean_p.unsqueeze(-1)).squeeze(-1)
    E = torch.cat([gain, torch.zeros_like(gain[:1])], dim=0)
    g = torch.cat([g_head, mean_f[-1:]], dim=0)
    return solve_recurrence(E, g, diag=diag, parallel=parallel, reverse=True)
