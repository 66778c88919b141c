"""Gradient codes: assignment, encoding matrices, exact/approximate/stochastic decoding (spec 5.1-5.5,
properties 1-4)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hedgerow.compute.gradcoding import (
    ConfigError,
    DecodeError,
    aggregate,
    approx_decode_weights,
    assignment,
    decode_weights,
    encode,
    encoding_matrix,
    stochastic_weights,
)
from hedgerow.compute.gradcoding.codes import build_code, clear_decode_cache, mds_coefficients

EXACT_SCHEMES = ("frac", "cyclic_random", "cyclic_mds")


def valid(scheme: str, n: int, s: int) -> bool:
    if scheme == "frac":
        return n % (s + 1) == 0
    if scheme == "cyclic_mds":
        return (n + s) % 2 == 1
    return True


def cases(n_max: int = 12, s_max: int = 3) -> list[tuple[str, int, int]]:
    return [(scheme, n, s) for n in range(2, n_max + 1) for s in range(0, min(s_max, n - 1) + 1)
            for scheme in EXACT_SCHEMES if valid(scheme, n, s)]


def decoded(b: np.ndarray, grads: np.ndarray, responders: list[int]) -> np.ndarray:
    n = b.shape[0]
    support = [tuple(int(j) for j in np.flatnonzero(b[i])) for i in range(n)]
    msgs = {i: encode(b[i], support[i], [grads[j] for j in support[i]]) for i in responders}
    return aggregate(msgs, decode_weights(b, responders) / n)


@pytest.mark.parametrize("scheme", ["frac", "cyclic_random", "cyclic_mds", "cyclic_ones"])
def test_every_partition_covered_exactly_s_plus_1_times(scheme: str) -> None:
    for n in range(2, 13):
        for s in range(n):
            if not valid(scheme, n, s):
                with pytest.raises(ConfigError):
                    assignment(n, s, scheme) if scheme == "frac" else mds_coefficients(n, s)
                continue
            support = assignment(n, s, scheme)
            counts = np.zeros(n, dtype=int)
            for row in support:
                assert len(row) == len(set(row)) == s + 1
                counts[list(row)] += 1
            assert np.all(counts == s + 1)


def test_frac_groups_are_full_copies() -> None:
    support = assignment(6, 2, "frac")
    groups = 6 // 3
    for c in range(3):
        members = range(c * groups, (c + 1) * groups)
        assert sorted(j for i in members for j in support[i]) == list(range(6))


def test_exact_decode_every_straggler_set_recovers_full_gradient() -> None:
    """Property 1: n <= 12, s <= 3, every straggler set of size <= s, 1e-10 relative."""
    rng = np.random.default_rng(1)
    for scheme, n, s in cases():
        b = encoding_matrix(scheme, n, s, code_seed=0)
        grads = rng.standard_normal((n, 50))
        target = grads.mean(axis=0)
        tol = 1e-10 * max(1.0, float(np.max(np.abs(target))))
        for size in range(s + 1):
            for stragglers in itertools.combinations(range(n), size):
                responders = [i for i in range(n) if i not in stragglers]
                err = float(np.max(np.abs(decoded(b, grads, responders) - target)))
                assert err <= tol, (scheme, n, s, stragglers, err)


@pytest.mark.parametrize("scheme", EXACT_SCHEMES)
def test_decode_refuses_when_a_partition_has_no_live_holder(scheme: str) -> None:
    """Property 2: removing all s+1 holders of some partition raises DecodeError, never a vector."""
    for _, n, s in [c for c in cases(9, 3) if c[0] == scheme]:
        b = encoding_matrix(scheme, n, s)
        support = assignment(n, s, scheme)
        for j in range(n):
            holders = {i for i in range(n) if j in support[i]}
            assert len(holders) == s + 1
            responders = [i for i in range(n) if i not in holders]
            with pytest.raises(DecodeError) as info:
                decode_weights(b, responders)
            assert "no live holder" in str(info.value) and str(j) in str(info.value)


def test_approximate_decode_residual_small_and_monotone() -> None:
    """Property 3: residual < 1e-18 with <= s stragglers; adding a responder never raises it."""
    rng = np.random.default_rng(3)
    for scheme, n, s in cases(10, 3):
        b = encoding_matrix(scheme, n, s)
        for stragglers in itertools.combinations(range(n), s):
            _, residual = approx_decode_weights(b, [i for i in range(n) if i not in stragglers])
            assert residual < 1e-18, (scheme, n, s, stragglers, residual)
        for _ in range(10):
            order = rng.permutation(n).tolist()
            previous = float("inf")
            for size in range(n + 1):
                _, residual = approx_decode_weights(b, order[:size])
                assert residual <= previous + 1e-12
                previous = residual


@pytest.mark.parametrize("scheme", ["cyclic_ones", "frac"])
def test_stochastic_aggregation_is_unbiased_by_exact_enumeration(scheme: str) -> None:
    """Property 4: n=8, s=2 (frac: s=3), p=0.3; sum over all 2^8 responder sets of P(R) g_hat(R) = g."""
    n, s, p = 8, 2 if scheme == "cyclic_ones" else 3, 0.3
    b = encoding_matrix(scheme, n, s)
    support = assignment(n, s, scheme)
    grads = np.random.default_rng(4).standard_normal((n, 20))
    msgs = {i: encode(b[i], support[i], [grads[j] for j in support[i]]) for i in range(n)}
    expected = np.zeros(20)
    for mask in range(1 << n):
        responders = [i for i in range(n) if mask >> i & 1]
        prob = p ** (n - len(responders)) * (1 - p) ** len(responders)
        if responders:
            expected += prob * aggregate({i: msgs[i] for i in responders},
                                         stochastic_weights(b, responders, p))
    np.testing.assert_allclose(expected, grads.mean(axis=0), rtol=0, atol=1e-12)


def test_frac_closed_form_matches_least_squares() -> None:
    rng = np.random.default_rng(5)
    b = encoding_matrix("frac", 8, 1)
    grads = rng.standard_normal((8, 30))
    support = assignment(8, 1, "frac")
    msgs = {i: encode(b[i], support[i], [grads[j] for j in support[i]]) for i in range(8)}
    for stragglers in itertools.combinations(range(8), 1):
        live = [i for i in range(8) if i not in stragglers]
        closed = decode_weights(b, live)
        assert set(np.unique(closed)) <= {0.0, 1.0}  # one responder per block, weight 1
        lsq, _ = approx_decode_weights(b, live)
        assert not np.array_equal(closed, lsq)  # least squares spreads weight across a block
        g_closed = aggregate({i: msgs[i] for i in live}, closed / 8)
        g_lsq = aggregate({i: msgs[i] for i in live}, lsq / 8)
        np.testing.assert_allclose(g_closed, g_lsq, atol=1e-12)
        np.testing.assert_array_equal(g_closed, aggregate({i: msgs[i] for i in live}, closed / 8))


def test_frac_decodes_some_sets_larger_than_s() -> None:
    b = encoding_matrix("frac", 6, 1)  # blocks {0,1,2}-> workers (0,3), (1,4), (2,5)
    a = decode_weights(b, [0, 1, 2])  # three stragglers > s = 1, every block still live
    np.testing.assert_array_equal(a @ b, np.ones(6))


def test_mds_coefficients_positive_palindromic_and_examples() -> None:
    np.testing.assert_allclose(mds_coefficients(5, 2), [1, (1 + 5 ** 0.5) / 2, 1], atol=1e-12)
    np.testing.assert_allclose(mds_coefficients(8, 3), [1, 1 + 2 ** 0.5, 1 + 2 ** 0.5, 1], atol=1e-12)
    for n in range(2, 26):
        for s in range(n):
            if (n + s) % 2 == 1:
                c = mds_coefficients(n, s)
                assert len(c) == s + 1 and np.all(c > 0)
                np.testing.assert_allclose(c, c[::-1], rtol=1e-12)


def test_cyclic_rows_in_null_space_and_validation() -> None:
    b, seed = build_code("cyclic_random", 7, 2, 0)
    assert seed == 0
    assert np.all(np.diag(b) == 1.0)
    assert np.count_nonzero(b) == 7 * 3


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="s:"):
        assignment(4, 4, "cyclic_ones")
    with pytest.raises(ConfigError, match="frac"):
        assignment(5, 1, "frac")
    with pytest.raises(ConfigError, match="n\\+s odd"):
        encoding_matrix("cyclic_mds", 4, 2)
    with pytest.raises(ConfigError, match="scheme"):
        assignment(4, 1, "lagrange")


def test_decode_cache_hits_and_returns_copies() -> None:
    from hedgerow.compute.gradcoding.codes import _CACHE_STATS

    clear_decode_cache()
    b = encoding_matrix("cyclic_mds", 5, 2)
    first = decode_weights(b, [0, 1, 2])
    first[:] = 99.0  # mutating a returned vector must not poison the cache
    second = decode_weights(b, [2, 1, 0])
    assert _CACHE_STATS == {"hits": 1, "misses": 1}
    np.testing.assert_allclose(second @ b, np.ones(5), atol=1e-12)
    np.testing.assert_array_equal(second, decode_weights(b, [0, 1, 2], cache=False))


def test_cyclic_random_retries_the_next_code_seed_when_ill_conditioned() -> None:
    """Spec 5.2.2: code_seed 0 reaches residual ~1e-8 at n=21, s=3; construction moves to seed 1."""
    from hedgerow.compute.gradcoding.codes import _cyclic_random_matrix, code_residual_max

    assert code_residual_max(_cyclic_random_matrix(21, 3, 0), 3) > 1e-9
    b, seed = build_code("cyclic_random", 21, 3, 0)
    assert seed >= 1 and code_residual_max(b, 3) <= 1e-9


@pytest.mark.slow
def test_cyclic_mds_well_conditioned_up_to_n25() -> None:
    """Spec 5.2.3: residual max|a^T B_F - 1| <= 3e-11 up to n=25 (measured 1.6e-12, s <= 6)."""
    from hedgerow.compute.gradcoding.codes import code_residual_max

    for n in range(4, 26):
        for s in range(1, min(n - 1, 6) + 1):
            if (n + s) % 2 == 1:
                assert code_residual_max(encoding_matrix("cyclic_mds", n, s), s) <= 3e-11, (n, s)
