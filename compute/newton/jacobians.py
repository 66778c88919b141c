"""How an iteration gets f and its Jacobian at the current iterate (spec 3, 5.2).

An `Evaluator` turns `(S_prev[N,D], U[N,m])` into `(F[N,D], A)` with A dense `[N,D,D]`, diagonal
`[N,D]` or None, from (in order of preference) a fused f-and-Jacobian, a separate Jacobian, or
`torch.func` (vmap + jacrev; jvp with Rademacher probes for the Hutchinson diagonal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Fn = Callable[[Tensor, Tensor], Tensor]
FusedFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
JacKind = Literal["dense", "diag", "none"]


def torch_func_jac(f: Fn) -> Fn:
    """Dense per-row Jacobians of a row-wise f through torch.func (vmap over rows of jacrev)."""

    def one_row(s: Tensor, u: Tensor) -> Tensor:
        return f(s.unsqueeze(0), u.unsqueeze(0)).squeeze(0)

    batched = torch.func.vmap(torch.func.jacrev(one_row, argnums=0))

    def jac(S: Tensor, U: Tensor) -> Tensor:
        out: Tensor = batched(S, U)
        return out

    return jac


def hutchinson_diag(f: Fn, S: Tensor, U: Tensor, *, n_probes: int, generator: torch.Generator) -> Tensor:
    """diag(A) ~ mean_k z_k * (A z_k), Rademacher z_k, one jvp per probe (f is row-wise)."""
    total = torch.zeros_like(S)
    for _ in range(n_probes):
        bits = torch.randint(0, 2, S.shape, generator=generator, device="cpu")
        z = (2 * bits - 1).to(dtype=S.dtype, device=S.device)
        Az = torch.func.jvp(lambda s: f(s, U), (S,), (z,))[1]
        total += z * Az
    return total / n_probes


@dataclass
class Evaluator:
    """f and the Jacobian kind an iteration needs; counts nothing, reads no clock."""

    f: Fn
    kind: JacKind
    jac: Fn | None = None
    jac_diag: Fn | None = None
    f_and_jac: FusedFn | None = None
    f_and_jac_diag: FusedFn | None = None
    hutchinson: bool = False
    n_probes: int = 1
    generator: torch.Generator | None = None

    def __call__(self, S_prev: Tensor, U: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.kind == "none":
            return self.f(S_prev, U), None
        if self.kind == "dense":
            if self.f_and_jac is not None:
                return self.f_and_jac(S_prev, U)
            jac = self.jac if self.jac is not None else torch_func_jac(self.f)
            return self.f(S_prev, U), jac(S_prev, U)
        return self.f_and_diag(S_prev, U)

    def _diag(self, S_prev: Tensor, U: Tensor) -> Tensor:
        if self.hutchinson:
            if self.generator is None:
                raise ValueError("the Hutchinson estimator needs a seeded generator")
            return hutchinson_diag(self.f, S_prev, U, n_probes=self.n_probes, generator=self.generator)
        if self.jac_diag is not None:
            return self.jac_diag(S_prev, U)
        jac = self.jac if self.jac is not None else torch_func_jac(self.f)
        return torch.diagonal(jac(S_prev, U), dim1=-2, dim2=-1)

    def f_and_diag(self, S_prev: Tensor, U: Tensor) -> tuple[Tensor, Tensor]:
        """Fused fast path for the diagonal, when the caller supplied one."""
        if self.f_and_jac_diag is not None and not self.hutchinson:
            return self.f_and_jac_diag(S_prev, U)
        return self.f(S_prev, U), self._diag(S_prev, U)
