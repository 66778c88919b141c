"""Compressors, wire formats, bit counts and error feedback (spec 5.6, 5.7, properties 5, 6, 8)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hedgerow.compute.gradcoding import (
    CompressedVector,
    CompressorSpec,
    compress,
    decompress,
    ef_step,
    nominal_bits,
)
from hedgerow.compute.gradcoding.compress import check_vector, k_of
from hedgerow.protocols import wire

FLOATS = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
VECTORS = st.integers(1, 512).flatmap(lambda d: arrays(np.float64, d, elements=FLOATS))
TOPK = CompressorSpec("topk", 0.05)
SIGN = CompressorSpec("sign")


def roundtrip(cv: CompressedVector) -> CompressedVector:
    decoded: CompressedVector = wire.decode(wire.encode(cv))
    return decoded


@given(VECTORS, st.floats(0.001, 1.0))
def test_topk_contract(u: np.ndarray, ratio: float) -> None:
    spec = CompressorSpec("topk", ratio)
    cv = compress(spec, u, None, "f64")
    c = decompress(roundtrip(cv))
    dim, k = u.size, k_of(spec, u.size)
    assert np.sum((c - u) ** 2) <= (1 - k / dim) * np.sum(u ** 2) + 1e-12 * max(1.0, float(np.sum(u ** 2)))
    if np.count_nonzero(u) >= k:
        assert np.count_nonzero(c) == min(k, dim)
    np.testing.assert_array_equal(decompress(compress(spec, c, None, "f64")), c)  # idempotent


@given(VECTORS)
def test_sign_contract(u: np.ndarray) -> None:
    c = decompress(roundtrip(compress(SIGN, u, None, "f64")))
    err = float(np.sum((c - u) ** 2))
    expected = float(np.sum(u ** 2) - np.sum(np.abs(u)) ** 2 / u.size)
    assert abs(err - expected) <= 1e-10 * max(1.0, float(np.sum(u ** 2)))
    np.testing.assert_allclose(decompress(compress(SIGN, c, None, "f64")), c, rtol=1e-14, atol=0)
    assert np.all(c[u == 0] >= 0)  # sgn(0) = +1


@settings(max_examples=4)
@given(st.integers(1, 64), st.integers(0, 2 ** 32 - 1))
def test_randk_is_unbiased(dim: int, seed: int) -> None:
    u = np.random.default_rng(seed).standard_normal(dim)
    spec = CompressorSpec("randk", 0.25, shared_seed=False)
    draws = 20000
    rng = np.random.default_rng(seed)
    samples = np.empty((draws, dim))
    for t in range(draws):
        samples[t] = decompress(compress(spec, u, rng, "f64"))
    mean = samples.mean(axis=0)
    stderr = samples.std(axis=0) / math.sqrt(draws)
    assert np.all(np.abs(mean - u) <= 4 * stderr + 1e-12)


def test_nominal_bits_and_wire_formats() -> None:
    u = np.random.default_rng(0).standard_normal(100)
    dense = compress(CompressorSpec("identity", 1.0), u, None, "f32")
    assert nominal_bits(dense) == 3200 and len(dense.values) == 400
    assert nominal_bits(compress(CompressorSpec("identity", 1.0), u, None, "f64")) == 6400
    top = compress(TOPK, u, None, "f32")
    assert nominal_bits(top) == 5 * (32 + 7) == 195
    idx = np.frombuffer(top.indices, dtype="<u4")
    assert np.all(np.diff(idx) > 0) and set(idx.tolist()) == set(np.argsort(-np.abs(u))[:5].tolist())
    sign = compress(SIGN, u, None, "f32")
    assert nominal_bits(sign) == 132 and len(sign.signbits) == 13 and not sign.values
    shared = compress(CompressorSpec("randk", 0.06), u, np.random.default_rng(1), "f32")
    assert nominal_bits(shared) == 32 * 6 and not shared.indices
    explicit = compress(CompressorSpec("randk", 0.06, shared_seed=False), u, np.random.default_rng(1), "f32")
    assert nominal_bits(explicit) == 6 * 39 and len(explicit.indices) == 24
    np.testing.assert_array_equal(decompress(explicit), decompress(shared, np.random.default_rng(1)))


def test_topk_ties_go_to_the_lower_index() -> None:
    cv = compress(CompressorSpec("topk", 0.5), np.array([1.0, -2.0, 2.0, 1.0]), None, "f64")
    np.testing.assert_array_equal(decompress(cv), [0.0, -2.0, 2.0, 0.0])
    cv = compress(CompressorSpec("topk", 0.25), np.array([1.0, -1.0, 1.0, 1.0]), None, "f64")
    np.testing.assert_array_equal(decompress(cv), [1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("name", ["topk", "sign", "randk", "identity"])
@pytest.mark.parametrize("wire_dtype", ["f32", "f64"])
@settings(max_examples=25)
@given(data=st.data())
def test_ef_conservation(name: str, wire_dtype: str, data: st.DataObject) -> None:
    """Properties 5 and 8: sum_accepted c + e_T == sum_accepted v; rejected rounds leave e bitwise
    unchanged; c is the value decoded from the wire (f32 or f64)."""
    dim = data.draw(st.integers(1, 40))
    rounds = data.draw(st.integers(1, 25))
    accepted = data.draw(st.lists(st.booleans(), min_size=rounds, max_size=rounds))
    seed = data.draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    spec = CompressorSpec(name, 0.2)
    e = np.zeros(dim)
    sent, total_v, norm = np.zeros(dim), np.zeros(dim), 0.0
    for t in range(rounds):
        v = rng.standard_normal(dim) * 10.0 ** rng.integers(-3, 3)
        cv, e_new = ef_step(e, v, spec, np.random.default_rng([seed, t]), wire_dtype)
        c = decompress(wire.decode(wire.encode(cv)), np.random.default_rng([seed, t]))
        np.testing.assert_array_equal(e_new, (v + e) - c)  # residual against the wire value
        if accepted[t]:
            sent, total_v, norm, e = sent + c, total_v + v, norm + float(np.sum(np.abs(v))), e_new
        else:
            before = e.copy()
            np.testing.assert_array_equal(e, before)
    np.testing.assert_allclose(sent + e, total_v, rtol=0, atol=1e-12 * max(norm, 1e-300))


@given(st.lists(st.lists(st.integers(-1000, 1000), min_size=8, max_size=8), min_size=1, max_size=30),
       st.lists(st.booleans(), min_size=30, max_size=30))
def test_ef_conservation_topk_bitwise_on_exact_arithmetic(vs: list[list[int]], accepted: list[bool]) -> None:
    """Top-k moves values without rounding: on integer gradients the balance is bitwise."""
    e = np.zeros(8)
    sent, total = np.zeros(8), np.zeros(8)
    for v_list, ok in zip(vs, accepted, strict=False):
        v = np.array(v_list, dtype=np.float64)
        cv, e_new = ef_step(e, v, CompressorSpec("topk", 0.25), None, "f64")
        if ok:
            sent, total, e = sent + decompress(cv), total + v, e_new
    np.testing.assert_array_equal(sent + e, total)


def test_f32_wire_residual_is_taken_against_the_decoded_value() -> None:
    """The wire rule: taking e from the float64 C(u) would leak the f32 rounding error."""
    u = np.array([0.1, 1e-9 + 1.0, -0.3, 2.0 / 3.0])
    cv, e_new = ef_step(np.zeros(4), u, CompressorSpec("identity", 1.0), None, "f32")
    assert np.any(e_new != 0.0)  # the f32 rounding error is kept, not lost
    np.testing.assert_array_equal(decompress(cv) + e_new, u)


def test_check_vector_flags_malformed_payloads() -> None:
    u = np.random.default_rng(2).standard_normal(50)
    good = compress(TOPK, u, None, "f32")
    assert check_vector(good, TOPK, 50, "f32") is None
    idx = np.frombuffer(good.indices, dtype="<u4")
    bad = {
        "dim": replace(good, dim=49),
        "kind": replace(good, kind="sign"),
        "unsorted": replace(good, indices=idx[::-1].astype("<u4").tobytes()),
        "range": replace(good, indices=np.array([1, 2, 50], dtype="<u4").tobytes()[: len(good.indices)]),
        "k > D": compress(CompressorSpec("topk", 1.0), np.ones(60), None, "f32"),
        "lengths": replace(good, values=good.values[:-1]),
        "nan": replace(good, values=np.full(3, np.nan, dtype="<f4").tobytes()),
        "dtype": replace(good, wire_dtype="f64"),
    }
    for label, cv in bad.items():
        assert check_vector(cv, TOPK, 50, "f32") is not None, label
    sign = compress(SIGN, u, None, "f32")
    assert check_vector(sign, SIGN, 50, "f32") is None
    assert check_vector(replace(sign, signbits=sign.signbits[:-1]), SIGN, 50, "f32") is not None
    assert check_vector(replace(sign, scale=math.inf), SIGN, 50, "f32") is not None
