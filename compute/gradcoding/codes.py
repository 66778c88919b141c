"""Assignments, encoding matrices and decoders (spec 5.1-5.5). Pure numpy, float64."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

DECODE_RESIDUAL_MAX = 1e-9
CACHE_ENTRIES = 256
CODE_RETRIES = 8
EXHAUSTIVE_SETS_MAX = 5000
SAMPLED_SETS = 2000


class ConfigError(ValueError):
    """A job configuration that cannot run; the message names the field. Nothing was sent."""


class DecodeError(Exception):
    """The responders cannot rebuild the full gradient exactly (spec 5.3)."""

    def __init__(self, responders: Iterable[int], residual: float, detail: str = "") -> None:
        self.responders = tuple(sorted(responders))
        self.residual = residual
        text = f"cannot decode from responders {list(self.responders)}: residual {residual:.3g}"
        super().__init__(f"{text} ({detail})" if detail else text)


def _check_ns(n: int, s: int) -> None:
    if n < 2:
        raise ConfigError(f"n: need at least 2 workers, got {n}")
    if not 0 <= s < n:
        raise ConfigError(f"s: straggler budget must be in 0..n-1, got s={s} with n={n}")


def assignment(n: int, s: int, scheme: str) -> list[tuple[int, ...]]:
    """support[i] = the partitions worker i holds; each partition is on exactly s+1 workers."""
    _check_ns(n, s)
    if scheme == "frac":
        if n % (s + 1):
            raise ConfigError(f"scheme: frac needs (s+1) | n, got n={n}, s={s}")
        blocks = n // (s + 1)
        return [tuple(range((i % blocks) * (s + 1), (i % blocks) * (s + 1) + s + 1)) for i in range(n)]
    if scheme in ("cyclic_random", "cyclic_mds", "cyclic_ones"):
        return [tuple((i + t) % n for t in range(s + 1)) for i in range(n)]
    raise ConfigError(f"scheme: unknown {scheme!r} (frac, cyclic_random, cyclic_mds, cyclic_ones)")


def mds_coefficients(n: int, s: int) -> Array:
    """c_0..c_s of prod_{j in J}(x - alpha^j), alpha = exp(2 pi i/n), J centred on n/2 (5.2.3)."""
    if (n + s) % 2 == 0:
        raise ConfigError(f"scheme: cyclic_mds needs n+s odd, got n={n}, s={s}")
    lo = (n - s + 1) // 2
    roots = np.exp(2j * np.pi * np.arange(lo, lo + s) / n)
    poly = np.poly(roots) if s else np.ones(1, dtype=np.complex128)
    if np.max(np.abs(poly.imag)) >= 1e-9:
        raise ConfigError(f"scheme: cyclic_mds coefficients not real for n={n}, s={s}")
    real = np.asarray(poly.real, dtype=np.float64)
    coeffs: Array = np.ascontiguousarray(0.5 * (real + real[::-1]))  # exactly palindromic
    return coeffs


def _cyclic_random_matrix(n: int, s: int, code_seed: int) -> Array:
    rng = np.random.default_rng(code_seed)
    h0 = rng.standard_normal((s, n - 1))
    h = np.concatenate([h0, -h0 @ np.ones((n - 1, 1))], axis=1)
    b = np.zeros((n, n))
    for i in range(n):
        b[i, i] = 1.0
        rest = [(i + t) % n for t in range(1, s + 1)]
        if rest:
            b[i, rest] = np.linalg.solve(h[:, rest], -h[:, i])
    return b


def straggler_sets(n: int, s: int, seed: int = 0) -> list[tuple[int, ...]]:
    """Every straggler set of size s if C(n,s) <= 5000, else 2000 seeded random ones."""
    if math.comb(n, s) <= EXHAUSTIVE_SETS_MAX:
        return list(itertools.combinations(range(n), s))
    rng = np.random.default_rng([seed, n, s])
    return [tuple(sorted(rng.choice(n, size=s, replace=False).tolist())) for _ in range(SAMPLED_SETS)]


def code_residual_max(b: Array, s: int) -> float:
    """Worst exact-decode residual max|a^T B_F - 1| over the straggler sets of size s."""
    n = b.shape[0]
    worst = 0.0
    for stragglers in straggler_sets(n, s):
        responders = [i for i in range(n) if i not in stragglers]
        worst = max(worst, _lstsq_weights(b, responders)[1])
    return worst


def build_code(scheme: str, n: int, s: int, code_seed: int = 0) -> tuple[Array, int]:
    """(B, code_seed actually used); cyclic_random is validated and retried (5.2.2)."""
    support = assignment(n, s, scheme)
    if scheme == "cyclic_random":
        for seed in range(code_seed, code_seed + CODE_RETRIES):
            b = _cyclic_random_matrix(n, s, seed)
            if np.all(np.isfinite(b)) and code_residual_max(b, s) <= DECODE_RESIDUAL_MAX:
                return b, seed
        raise ConfigError(f"scheme: cyclic_random failed validation for n={n}, s={s} after "
                          f"{CODE_RETRIES} code seeds; use cyclic_mds or frac")
    b = np.zeros((n, n))
    coeffs = mds_coefficients(n, s) if scheme == "cyclic_mds" else np.ones(s + 1)
    for i, row in enumerate(support):
        b[i, list(row)] = coeffs
    return b, code_seed


def encoding_matrix(scheme: str, n: int, s: int, code_seed: int = 0) -> Array:
    """B, shape (n, n): row i = worker i, column j = partition j (5.2)."""
    return build_code(scheme, n, s, code_seed)[0]


def encode(b_row: Array, support: Iterable[int], part_grads: Iterable[Array]) -> Array:
    """v_i = sum_{j in support} B[i, j] * g_j, in float64, in support order."""
    total: Array | None = None
    for j, grad in zip(support, part_grads, strict=True):
        term = b_row[j] * np.asarray(grad, dtype=np.float64)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("encode: empty support")
    return total


# ---------------------------------------------------------------------------------------------
# Decoding


def _lstsq_weights(b: Array, responders: list[int]) -> tuple[Array, float]:
    n = b.shape[1]
    a = np.zeros(b.shape[0])
    if responders:
        sol = np.linalg.lstsq(b[responders].T, np.ones(n), rcond=None)[0]
        a[responders] = sol
    residual = float(np.max(np.abs(a @ b - 1.0)))
    return a, residual


def _block_structure(b: Array) -> list[list[int]] | None:
    """Groups of workers holding the same 0/1 block, if B is a fractional-repetition code."""
    if not np.all((b == 0.0) | (b == 1.0)):
        return None
    groups: dict[bytes, list[int]] = {}
    for i in range(b.shape[0]):
        groups.setdefault(b[i].tobytes(), []).append(i)
    rows = np.array([b[members[0]] for members in groups.values()])
    if not np.array_equal(rows.sum(axis=0), np.ones(b.shape[1])):
        return None
    return list(groups.values())


_CACHE: OrderedDict[tuple[bytes, tuple[int, ...], frozenset[int]], Array] = OrderedDict()
_CACHE_STATS = {"hits": 0, "misses": 0}


def clear_decode_cache() -> None:
    _CACHE.clear()
    _CACHE_STATS.update(hits=0, misses=0)


def decode_weights(b: Array, responders: Iterable[int], *, cache: bool = True) -> Array:
    """a (length n, zero off the responders) with a^T B = 1^T exactly; raises DecodeError.

    Fractional repetition uses its closed form (weight 1 on the lowest-id responder of each block),
    every other code least squares with the residual checked against 1e-9. Results are cached in an
    LRU keyed by (B, frozenset(responders)), 256 entries.
    """
    live = frozenset(int(i) for i in responders)
    key = (b.tobytes(), b.shape, live)
    if cache:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            _CACHE_STATS["hits"] += 1
            return hit.copy()
        _CACHE_STATS["misses"] += 1
    a = _decode_uncached(b, sorted(live))
    if cache:
        _CACHE[key] = a
        if len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return a.copy()


def _decode_uncached(b: Array, live: list[int]) -> Array:
    blocks = _block_structure(b)
    if blocks is not None:
        a = np.zeros(b.shape[0])
        for members in blocks:
            present = [i for i in members if i in live]
            if not present:
                missing = [int(j) for j in np.flatnonzero(b[members[0]])]
                raise DecodeError(live, 1.0, f"no live holder of partitions {missing}")
            a[present[0]] = 1.0
        return a
    a, residual = _lstsq_weights(b, live)
    if not residual <= DECODE_RESIDUAL_MAX:
        covered = np.any(b[live] != 0.0, axis=0) if live else np.zeros(b.shape[1], dtype=bool)
        uncovered = [int(j) for j in np.flatnonzero(~covered)]
        detail = f"no live holder of partitions {uncovered}" if uncovered else "ill-conditioned"
        raise DecodeError(live, residual, detail)
    return a


def approx_decode_weights(b: Array, responders: Iterable[int]) -> tuple[Array, float]:
    """a* = argmin ||B_R^T a - 1||_2 and its squared residual (approximate GC, 5.5)."""
    live = sorted({int(i) for i in responders})
    a, _ = _lstsq_weights(b, live)
    residual = float(np.sum((a @ b - 1.0) ** 2))
    return a, residual


def column_load(b: Array) -> float:
    """The common column sum c of B (d for cyclic_ones and frac); ConfigError if columns differ."""
    sums = b.sum(axis=0)
    if not np.allclose(sums, sums[0], rtol=1e-12, atol=0.0):
        raise ConfigError("mode: stochastic aggregation needs equal column sums (cyclic_ones, frac, "
                          "cyclic_mds)")
    return float(sums[0])


def stochastic_weights(b: Array, responders: Iterable[int], p_hat: float, realized: bool = False) -> Array:
    """Fixed weight 1/(n c (1-p_hat)) on every responder (unbiased, 5.4), or 1/(c |R|) realized."""
    n = b.shape[0]
    live = sorted({int(i) for i in responders})
    c = column_load(b)
    weights = np.zeros(n)
    if live:
        weights[live] = 1.0 / (c * len(live)) if realized else 1.0 / (b.shape[1] * c * (1.0 - p_hat))
    return weights


def aggregate(msgs: dict[int, Array], weights: Array) -> Array:
    """g_hat = sum_i weights[i] * msgs[i], summed in increasing worker order."""
    total: Array | None = None
    for i in sorted(msgs):
        term = weights[i] * msgs[i]
        total = term if total is None else total + term
    if total is None:
        raise ValueError("aggregate: no messages")
    return total
