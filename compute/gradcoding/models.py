"""The training problems: per-partition losses and gradients, rebuilt from a job's specs.

* `synthetic_logreg` + `logreg`: the spec's non-iid logistic regression (section 9), numpy float64.
* `gaussian_mixture` + `mlp`: a seeded 10-class, 64-dimensional Gaussian mixture (scikit-learn's
  digits are not installed) sorted by label into partitions, and a ReLU MLP that is a torch module
  (float64; on CUDA when available).

No files, no network: the data is generated from the spec's seed on every node.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from hedgerow.compute.gradcoding.codes import ConfigError
from hedgerow.compute.gradcoding.messages import DataSpec, ModelSpec

Array = NDArray[np.float64]


class Problem(Protocol):
    n: int
    dim: int

    def partition_grad(self, j: int, w: Array) -> Array: ...

    def loss(self, w: Array) -> float: ...

    def initial_weights(self) -> Array: ...


def synthetic_logreg(n: int, m: int, dim: int, seed: int) -> list[tuple[Array, Array]]:
    """Per partition (X, y), drawn in the spec's order (section 9)."""
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal(dim)
    parts = []
    for _ in range(n):
        mu = 1.5 * rng.standard_normal(dim)
        x = rng.standard_normal((m, dim)) + mu
        wj = w_star + rng.standard_normal(dim)
        y = np.where(x @ wj / np.sqrt(dim) + 0.3 * rng.standard_normal(m) > 0, 1.0, -1.0)
        parts.append((x / np.sqrt(dim), y))
    return parts


class LogReg:
    """f_j(w) = mean_k log(1 + exp(-y_k x_k.w)) + (l2/2)||w||^2."""

    def __init__(self, parts: list[tuple[Array, Array]], l2: float) -> None:
        self.parts = parts
        self.n = len(parts)
        self.dim = int(parts[0][0].shape[1])
        self.l2 = l2

    def partition_grad(self, j: int, w: Array) -> Array:
        x, y = self.parts[j]
        z = y * (x @ w)
        coef = -y * np.exp(-np.logaddexp(0.0, z))  # -y * sigmoid(-z)
        grad: Array = x.T @ coef / x.shape[0] + self.l2 * w
        return grad

    def partition_loss(self, j: int, w: Array) -> float:
        x, y = self.parts[j]
        return float(np.mean(np.logaddexp(0.0, -y * (x @ w))) + 0.5 * self.l2 * float(w @ w))

    def loss(self, w: Array) -> float:
        return sum(self.partition_loss(j, w) for j in range(self.n)) / self.n

    def full_grad(self, w: Array) -> Array:
        total = self.partition_grad(0, w)
        for j in range(1, self.n):
            total = total + self.partition_grad(j, w)
        return total / self.n

    def initial_weights(self) -> Array:
        return np.zeros(self.dim)


def gaussian_mixture(n: int, m: int, dim: int, seed: int, classes: int = 10) -> list[tuple[Array, Array]]:
    """n*m samples of a seeded mixture, sorted by label, split into n partitions (non-iid)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim))
    labels = np.sort(rng.integers(0, classes, size=n * m))
    x = means[labels] + 3.0 * rng.standard_normal((n * m, dim))
    return [(x[j * m:(j + 1) * m], labels[j * m:(j + 1) * m].astype(np.float64)) for j in range(n)]


def mlp_dim(sizes: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


class TorchMLP:
    """A ReLU MLP (torch module, float64) with mean cross-entropy per partition."""

    def __init__(self, parts: list[tuple[Array, Array]], sizes: tuple[int, ...], l2: float,
                 seed: int) -> None:
        import torch

        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        generator = torch.Generator().manual_seed(seed)
        layers: list[Any] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layer = torch.nn.Linear(a, b, dtype=torch.float64)
            bound = 1.0 / np.sqrt(a)
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
            layers += [layer, torch.nn.ReLU()]
        self.module = torch.nn.Sequential(*layers[:-1]).to(self.device)
        self.params = list(self.module.parameters())
        self.parts = [(torch.as_tensor(x, device=self.device),
                       torch.as_tensor(y, device=self.device).long()) for x, y in parts]
        self.n = len(parts)
        self.dim = mlp_dim(sizes)
        self.l2 = l2

    def _load(self, w: Array) -> None:
        vec = self.torch.as_tensor(np.asarray(w, dtype=np.float64), device=self.device)
        self.torch.nn.utils.vector_to_parameters(vec, self.params)

    def _partition_objective(self, j: int) -> Any:
        x, y = self.parts[j]
        loss = self.torch.nn.functional.cross_entropy(self.module(x), y)
        if self.l2:
            loss = loss + 0.5 * self.l2 * sum((p * p).sum() for p in self.params)
        return loss

    def partition_grad_tensor(self, j: int, w: Array) -> Any:
        """grad f_j(w) as a flat float64 tensor on the model's device."""
        self._load(w)
        grads = self.torch.autograd.grad(self._partition_objective(j), self.params)
        return self.torch.cat([g.reshape(-1) for g in grads]).detach()

    def partition_grad(self, j: int, w: Array) -> Array:
        out: Array = self.partition_grad_tensor(j, w).cpu().numpy().astype(np.float64)
        return out

    def loss(self, w: Array) -> float:
        self._load(w)
        with self.torch.no_grad():
            return float(sum(float(self._partition_objective(j)) for j in range(self.n)) / self.n)

    def initial_weights(self) -> Array:
        vec = self.torch.nn.utils.parameters_to_vector(self.params)
        out: Array = vec.detach().cpu().numpy().astype(np.float64).copy()
        return out


def make_problem(data: DataSpec, model: ModelSpec, n: int) -> Problem:
    """Rebuild the problem every node trains on from the job's data and model specs."""
    if data.kind == "synthetic_logreg" and model.kind == "logreg":
        if model.dim != data.dim:
            raise ConfigError(f"model.dim {model.dim} != data.dim {data.dim}")
        return LogReg(synthetic_logreg(n, data.m, data.dim, data.seed), model.l2)
    if data.kind == "gaussian_mixture" and model.kind == "mlp":
        sizes = tuple(model.sizes)
        if len(sizes) < 2 or sizes[0] != data.dim or mlp_dim(sizes) != model.dim:
            raise ConfigError(f"model.sizes {sizes} do not fit data.dim {data.dim} / model.dim {model.dim}")
        parts = gaussian_mixture(n, data.m, data.dim, data.seed, classes=sizes[-1])
        return TorchMLP(parts, sizes, model.l2, data.seed)
    raise ConfigError(f"data/model: unsupported pair {data.kind!r} / {model.kind!r}")


class SharedGradients:
    """A simulator-side wrapper: workers given the same weights share each partition gradient, so a
    round computes n gradients instead of n*d. Results are bitwise the same as the wrapped problem."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.n = problem.n
        self.dim = problem.dim
        self._key = b""
        self._grads: dict[int, Array] = {}

    def partition_grad(self, j: int, w: Array) -> Array:
        key = w.tobytes()
        if key != self._key:
            self._key, self._grads = key, {}
        grad = self._grads.get(j)
        if grad is None:
            grad = self.problem.partition_grad(j, w)
            self._grads[j] = grad
        return grad

    def loss(self, w: Array) -> float:
        return self.problem.loss(w)

    def initial_weights(self) -> Array:
        return self.problem.initial_weights()
