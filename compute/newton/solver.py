"""`solve`, `newton_step`, `residual`: the iteration, its stopping rule and its guards (spec 5.4, 5.5).

Internally everything is batched `[B,T,D]` torch; f is always called on flattened rows `[N,D]`,
`[N,m]` (the sequential loop calls it on one time step of the whole batch, `[B,D]`). Pure: no clock,
no global RNG (the Hutchinson probes come from a `torch.Generator` seeded by `seed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hedgerow.compute.newton.config import (
    DENSE_METHODS,
    ELK_METHODS,
    LAM_MAX,
    LAM_MIN,
    QUASI_METHODS,
    NewtonConfig,
    NewtonResult,
    Status,
)
from hedgerow.compute.newton.jacobians import Evaluator, Fn, FusedFn, JacKind
from hedgerow.compute.newton.steps import linear_step
from hedgerow.compute.newton.validate import Problem, check_f_output, prepare

ProgressFn = Callable[[int, float], None]


def _jac_kind(method: str) -> JacKind:
    if method in DENSE_METHODS:
        return "dense"
    if method in QUASI_METHODS:
        return "diag"
    return "none"


def workspace_bytes(method: str, B: int, T: int, D: int, itemsize: int) -> int:
    """Analytic size of the largest live solver buffers (documented in the README section).

    vectors [B,T,D]: iterate, f values / offsets, scan pair levels (sum over levels ~ T), output;
    dense: Ã, its strided odd/even copies and the pair products (~3 T D^2); ELK adds the Kalman
    tuple (C, J), their pair levels, the filtered covariances and the smoother gains.
    """
    v = B * T * D * itemsize
    m = v * D
    table = {
        "sequential": v,
        "jacobi": 3 * v,
        "picard": 4 * v,
        "quasi_deer": 6 * v,
        "deer": 3 * m + 4 * v,
        "quasi_elk": 16 * v,
        "elk": 9 * m + 8 * v,
    }
    return int(table[method])


def residual(f: Fn, s0: Any, states: Any, inputs: Any) -> Any:
    """r_t = s_t - f(s_{t-1}, u_t), s_0 = s0, in the backend and shape of `states`."""
    problem = prepare(s0, inputs, states, need="none", method="residual")
    S = problem.init
    assert S is not None  # prepare returns the states it was given
    ev = Evaluator(f=problem.f_wrap(f), kind="none")
    cur = _evaluate(ev, problem.s0, S, problem.U)
    return problem.export(S - cur.F)


def _chunk_rows(N: int, D: int, kind: JacKind, device: torch.device) -> int:
    """Rows per f call: on CPU small enough that the intermediates stay in cache (and the
    allocator reuses them), which is several times faster than one huge call; on GPU all rows."""
    if device.type != "cpu":
        return max(N, 1)
    per_row = D * D if kind == "dense" else D
    return max(256, (1 << 17) // max(per_row, 1))


def _shifted(s0: Tensor, S: Tensor) -> Tensor:
    """S_prev (time-major): row block 0 is s0, then S[:-1]."""
    S_prev = torch.empty_like(S)
    S_prev[0] = s0
    S_prev[1:] = S[:-1]
    return S_prev


@dataclass
class _Eval:
    """f (and Ã's source) at one iterate, time-major, plus the per-row max residual [T,B]."""

    S_prev: Tensor
    F: Tensor
    A: Tensor | None
    rows: Tensor


def _evaluate(ev: Evaluator, s0: Tensor, S: Tensor, U: Tensor, reuse: _Eval | None = None) -> _Eval:
    """f, Ã's source and the row residuals at S; `reuse` donates the buffers of a spent evaluation
    (fresh multi-GB allocations page-fault on every iteration otherwise)."""
    T, B, D = S.shape
    N = T * B
    a_shape = (N, D, D) if ev.kind == "dense" else (N, D)
    if reuse is not None and reuse.F.shape == S.shape:
        S_prev, F, rows = reuse.S_prev, reuse.F.view(N, D), reuse.rows.view(N)
        S_prev[0] = s0
        S_prev[1:] = S[:-1]
        A = reuse.A.view(a_shape) if reuse.A is not None and reuse.A.numel() == math.prod(a_shape) else None
    else:
        S_prev, F, rows, A = _shifted(s0, S), S.new_empty((N, D)), S.new_empty((N,)), None
    if A is None and ev.kind != "none":
        A = S.new_empty(a_shape)
    Sp, Sf, Uf = S_prev.reshape(N, D), S.reshape(N, D), U.reshape(N, -1)
    step = _chunk_rows(N, D, ev.kind, S.device)
    for i in range(0, N, step):
        j = min(N, i + step)
        Fi, Ai = ev(Sp[i:j], Uf[i:j])
        if i == 0:
            check_f_output(Fi, (j - i, D), S.dtype)
        F[i:j] = Fi
        if A is not None and Ai is not None:
            A[i:j] = Ai
        torch.amax(torch.sub(Sf[i:j], Fi).abs_(), dim=-1, out=rows[i:j])
    rows = torch.nan_to_num_(rows, nan=float("inf")).reshape(T, B)
    if A is not None:
        A = A.reshape(T, B, D, D) if ev.kind == "dense" else A.reshape(T, B, D)
    return _Eval(S_prev, F.reshape(T, B, D), A, rows)


def newton_step(f: Fn, s0: Any, inputs: Any, states: Any, *, config: NewtonConfig | None = None,
                jac: Fn | None = None, jac_diag: Fn | None = None, f_and_jac: FusedFn | None = None,
                f_and_jac_diag: FusedFn | None = None, seed: int = 0) -> Any:
    """One linear solve of `config.method` from `states`, with no guards."""
    config = config or NewtonConfig()
    method: str = "deer" if config.method == "sequential" else config.method
    problem = prepare(s0, inputs, states, need=_jac_kind(method), method=method, jac=jac,
                      jac_diag=jac_diag, f_and_jac=f_and_jac, f_and_jac_diag=f_and_jac_diag, config=config)
    S = problem.init
    assert S is not None
    ev = problem.evaluator(f, _jac_kind(method), config, seed)
    cur = _evaluate(ev, problem.s0, S, problem.U)
    lam = torch.full((S.shape[1],), float(config.lam), dtype=torch.float64)
    method = _effective(method, config)
    return problem.export(linear_step(method, S, cur.S_prev, cur.F, cur.A, lam, config))


def _effective(method: str, config: NewtonConfig) -> str:
    """ELK with λ = 0 (fixed) is exactly DEER / quasi-DEER (spec 3)."""
    if method in ELK_METHODS and config.lam == 0.0 and config.lam_schedule == "fixed":
        return "deer" if method == "elk" else "quasi_deer"
    return method


def _prefix(rows: Tensor, tol: float) -> Tensor:
    """Converged prefix per sequence [B] from the per-row max residual [T,B]."""
    T = rows.shape[0]
    bad = ~(rows <= tol)
    first_bad = bad.to(torch.uint8).argmax(dim=0)  # index of the first row above tol
    return torch.where(bad.any(dim=0), first_bad, torch.full_like(first_bad, T)).to(torch.int64).cpu()


def solve(f: Fn, s0: Any, inputs: Any, *, config: NewtonConfig | None = None, init: Any = None,
          jac: Fn | None = None, jac_diag: Fn | None = None, seed: int = 0,
          f_and_jac: FusedFn | None = None, f_and_jac_diag: FusedFn | None = None,
          on_iteration: ProgressFn | None = None) -> NewtonResult:
    """Solve s_t = f(s_{t-1}, u_t) for the whole trajectory (spec 3). Never raises on NaN/inf in f."""
    config = config or NewtonConfig()
    method = config.method
    problem = prepare(s0, inputs, init, need=_jac_kind(method), method=method, jac=jac,
                      jac_diag=jac_diag, f_and_jac=f_and_jac, f_and_jac_diag=f_and_jac_diag, config=config)
    fw = problem.f_wrap(f)
    if problem.T == 0:
        return _empty_result(problem, method)
    if method == "sequential":
        return _sequential(fw, problem)
    ev = problem.evaluator(f, _jac_kind(method), config, seed)
    return _iterate(ev, problem, config, _effective(method, config), on_iteration)


def _empty_result(problem: Problem, method: str) -> NewtonResult:
    B, D = problem.B, problem.D
    states = torch.empty((0, B, D), dtype=problem.dtype, device=problem.s0.device)
    zeros = np.zeros(B, dtype=np.int64)
    return _result(problem, states, ["converged"] * B, zeros, np.zeros(B), zeros, 0, [0.0], method, [])


def _sequential(f: Fn, problem: Problem) -> NewtonResult:
    """The reference loop: f once per time step on that step's rows of the whole batch [B,D]."""
    B, T, D = problem.B, problem.T, problem.D
    states = torch.empty((T, B, D), dtype=problem.dtype, device=problem.s0.device)
    s = problem.s0.reshape(1, D).expand(B, D)
    U = problem.U
    for t in range(T):
        s = f(s, U[t])
        if t == 0:
            check_f_output(s, (B, D), problem.dtype)
        states[t] = s
    rows = _evaluate(Evaluator(f=f, kind="none"), problem.s0, states, U).rows
    max_r = rows.amax(dim=0).cpu().numpy()
    tol = problem.tol
    statuses: list[Status] = ["converged" if m <= tol else ("non_finite" if not np.isfinite(m) else
                              "max_iter") for m in max_r]
    return _result(problem, states, statuses, np.zeros(B, dtype=np.int64), max_r, _prefix(rows, tol).numpy(),
                   0, [float(max_r.max())], "sequential", [])


@dataclass
class _Previous:
    """What the guards need of the previous iterate."""

    S: Tensor
    prefix: Tensor      # [B] converged prefix k
    jacobi: Tensor      # [B,D] f(s_k, u_{k+1}): the Jacobi value of row k+1
    merit: Tensor       # [B] ½ Σ r² (adaptive λ only)


def _merit(S: Tensor, F: Tensor) -> Tensor:
    return (0.5 * torch.nan_to_num((S - F).square().sum(dim=(0, 2)), nan=float("inf"))).cpu()


def _iterate(ev: Evaluator, problem: Problem, config: NewtonConfig, method: str,
             on_iteration: ProgressFn | None) -> NewtonResult:
    B, T = problem.B, problem.T
    tol, max_iter = problem.tol, config.resolved_max_iter(T)
    s0, U = problem.s0, problem.U
    S = problem.initial_guess()
    clip = float(config.state_clip)
    adaptive = method in ELK_METHODS and config.lam_schedule == "adaptive"
    lam = torch.full((B,), float(config.lam), dtype=torch.float64)
    iterations = torch.zeros(B, dtype=torch.int64)
    active = torch.ones(B, dtype=torch.bool)
    broken = torch.zeros(B, dtype=torch.bool)
    stepped = torch.zeros(B, dtype=torch.bool)
    resets = 0
    history: list[float] = []
    trace: list[Tensor] = [S.clone()] if config.record_trace else []
    prev: _Previous | None = None
    cur = _evaluate(ev, s0, S, U)
    while True:
        if prev is not None and bool(stepped.any()):
            S, cur, lam = _accept_or_revert(ev, problem, S, cur, prev, stepped, lam, adaptive)
            if config.prefix_guard:
                S, cur = _prefix_guard(ev, problem, S, cur, prev, stepped, tol)
        prefix = _prefix(cur.rows, tol)
        max_r = cur.rows.amax(dim=0).cpu()
        history.append(float(max_r.max()))
        active &= ~(max_r <= tol)
        broken |= active & _unrecoverable(cur.F, prefix)
        active &= ~broken
        active &= iterations < max_iter
        if on_iteration is not None:
            on_iteration(int(iterations.max()), history[-1])
        if not bool(active.any()):
            break
        prev = _Previous(S, prefix, _jacobi_rows(cur.F, prefix), _merit(S, cur.F) if adaptive else prefix)
        new = linear_step(method, S, cur.S_prev, cur.F, cur.A, lam, config)
        spent = cur
        S, n_reset = _guard_non_finite(S, new, active, clip)
        resets += n_reset
        iterations += active.to(torch.int64)
        stepped = active.clone()
        if config.record_trace:
            trace.append(S.clone())
        cur = _evaluate(ev, s0, S, U, reuse=spent)
        del spent
    statuses = _statuses(max_r, tol, broken)
    return _result(problem, S, statuses, iterations.numpy(), max_r.numpy(), prefix.numpy(), resets,
                   history, method, trace)


def _guard_non_finite(S: Tensor, new: Tensor, active: Tensor, clip: float) -> tuple[Tensor, int]:
    """Guard 1 (spec 5.5): rows with a non-finite entry or |s| > clip keep the previous iterate."""
    row_ok = new.abs().amax(dim=-1) <= clip   # NaN compares False
    mask = active.to(S.device)
    all_active = bool(active.all())
    if not all_active:
        row_ok |= ~mask[None, :]
    if bool(row_ok.all()):
        return (new if all_active else torch.where(mask[None, :, None], new, S)), 0
    n_bad = int((~row_ok).sum())
    new = torch.where(row_ok[..., None], new, S)
    return (new if all_active else torch.where(mask[None, :, None], new, S)), n_bad


def _jacobi_rows(F: Tensor, prefix: Tensor) -> Tensor:
    """f(s_k, u_{k+1}) per sequence: row k+1's value under the prefix guard."""
    T, B, _ = F.shape
    idx = prefix.clamp(max=T - 1).to(F.device)
    return F[idx, torch.arange(B, device=F.device)].clone()


def _unrecoverable(F: Tensor, prefix: Tensor) -> Tensor:
    """f at the last exact row is non-finite: the true trajectory itself is broken (guard 3)."""
    T = F.shape[0]
    return (~torch.isfinite(_jacobi_rows(F, prefix)).all(dim=-1)).cpu() & (prefix < T)


def _accept_or_revert(ev: Evaluator, problem: Problem, S: Tensor, cur: _Eval, prev: _Previous,
                      stepped: Tensor, lam: Tensor, adaptive: bool) -> tuple[Tensor, _Eval, Tensor]:
    """Adaptive λ (spec 5.6): keep S^(i) when the merit increased, and move λ."""
    if not adaptive:
        return S, cur, lam
    worse = stepped & (_merit(S, cur.F) > prev.merit)
    better = stepped & ~worse
    lam = torch.where(worse, (lam * 10).clamp(max=LAM_MAX), lam)
    lam = torch.where(better, (lam / 10).clamp(min=LAM_MIN), lam)
    if bool(worse.any()):
        S = torch.where(worse.to(S.device)[None, :, None], prev.S, S)
        cur = _evaluate(ev, problem.s0, S, problem.U, reuse=cur)
    return S, cur, lam


def _prefix_guard(ev: Evaluator, problem: Problem, S: Tensor, cur: _Eval, prev: _Previous,
                  stepped: Tensor, tol: float) -> tuple[Tensor, _Eval]:
    """Lazy prefix guard (spec 5.5 rule 2): ensure one more exact row than the previous iterate."""
    T = S.shape[0]
    need = stepped & (_prefix(cur.rows, tol) < prev.prefix + 1) & (prev.prefix < T)
    if not bool(need.any()):
        return S, cur
    S = S.clone()
    for b in torch.nonzero(need).flatten().tolist():
        k = int(prev.prefix[b])
        S[:k, b] = prev.S[:k, b]
        S[k, b] = prev.jacobi[b]
    return S, _evaluate(ev, problem.s0, S, problem.U, reuse=cur)


def _statuses(max_r: Tensor, tol: float, broken: Tensor) -> list[Status]:
    out: list[Status] = []
    for m, bad in zip(max_r.tolist(), broken.tolist(), strict=True):
        if m <= tol:
            out.append("converged")
        elif bad or not np.isfinite(m):
            out.append("non_finite")
        else:
            out.append("max_iter")
    return out


def _result(problem: Problem, states: Tensor, statuses: list[Status], iterations: np.ndarray,
            max_r: np.ndarray, prefix: np.ndarray, resets: int, history: list[float], method: str,
            trace: list[Tensor], rows_done: bool = False) -> NewtonResult:
    worst: Status = "converged"
    if "max_iter" in statuses:
        worst = "max_iter"
    if "non_finite" in statuses:
        worst = "non_finite"
    ws = workspace_bytes(method, problem.B, problem.T, problem.D, problem.itemsize)
    if problem.batched:
        return NewtonResult(states=problem.export(states), status=worst, iterations=iterations,
                            max_residual=max_r, converged_prefix=prefix, resets=resets,
                            residual_history=history, workspace_bytes=ws,
                            trace=[problem.export(t) for t in trace], statuses=tuple(statuses))
    return NewtonResult(states=problem.export(states), status=worst, iterations=int(iterations[0]),
                        max_residual=float(max_r[0]), converged_prefix=int(prefix[0]), resets=resets,
                        residual_history=history, workspace_bytes=ws,
                        trace=[problem.export(t) for t in trace], statuses=tuple(statuses))
