"""Reproduction of the qualitative COCO-EF claim (spec section 9): it beats the compressed baselines.

Every run goes through the cores in the seeded simulator with Bernoulli stragglers drawn as
`default_rng([seed, round]).random(n) < p`. CI runs straggler seeds 0-2 (the spec's measured worst
3-seed windows: 2.61x, 7.2x, 89x against the asserted 2x, 5x, 50x); the full 5-seed reproduction,
scaled sign, T=400 and the MLP are `slow`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hedgerow.compute.gradcoding import CompressorSpec, SimConfig
from hedgerow.compute.gradcoding.driver import TrainSetup, method_setup, reproduction_base, run_method, train

BASELINES = {"ef_nogc": 2.0, "gc_randk": 5.0, "gc_biased": 50.0}


def gaps(method: str, p: float, seeds: range, biased: CompressorSpec | None = None,
         base: TrainSetup | None = None) -> list[float]:
    out = []
    for seed in seeds:
        gap = run_method(method, p, seed, base=base, biased=biased).final_gap
        assert gap is not None and gap > 0
        out.append(gap)
    return out


def check_cocoef_wins(p: float, seeds: range) -> None:
    ours = gaps("cocoef", p, seeds)
    for method, ratio_min in BASELINES.items():
        theirs = gaps(method, p, seeds)
        for seed, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert a < b, f"p={p} seed={seeds[seed]}: COCO-EF {a:.3e} !< {method} {b:.3e}"
        ratio = float(np.mean(theirs) / np.mean(ours))
        assert ratio >= ratio_min, f"p={p}: mean-gap ratio vs {method} {ratio:.2f} < {ratio_min}"


@pytest.mark.parametrize("p", [0.2, 0.4])
def test_cocoef_beats_compressed_baselines_three_seeds(p: float) -> None:
    check_cocoef_wins(p, range(3))


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.2, 0.4])
def test_cocoef_beats_compressed_baselines_five_seeds(p: float) -> None:
    check_cocoef_wins(p, range(5))


def test_redundancy_helps_even_without_stragglers() -> None:
    ours, theirs = gaps("cocoef", 0.0, range(1)), gaps("ef_nogc", 0.0, range(1))
    assert ours[0] < theirs[0] / 2  # measured 3.5e-5 vs 1.5e-4


@pytest.mark.slow
def test_scaled_sign_cocoef_beats_baselines() -> None:
    sign = CompressorSpec("sign")
    ours = gaps("cocoef", 0.2, range(3), biased=sign)
    for method in ("ef_nogc", "gc_biased"):
        theirs = gaps(method, 0.2, range(3), biased=sign)
        assert all(a < b for a, b in zip(ours, theirs, strict=True)), (method, ours, theirs)
    assert np.mean(ours) < 6e-5


@pytest.mark.slow
def test_topk_cocoef_matches_uncompressed_uncoded_at_p_half() -> None:
    base = reproduction_base(rounds=400)
    ours, theirs = gaps("cocoef", 0.5, range(5), base=base), gaps("uncoded", 0.5, range(5), base=base)
    assert np.mean(ours) <= 1.5 * np.mean(theirs)  # 195 bits per message against 3200


def mlp_losses(method: str, seeds: range, rounds: int) -> list[float]:
    """Training loss (mean of the last 20 rounds) of the 64-32-10 ReLU MLP (torch) on the seeded
    10-class Gaussian mixture, partitions sorted by label; n=8, s=2, p=0.3, top-k 2%, eta=0.1."""
    base = TrainSetup(n=8, s=2, problem="mlp", data_dim=64, m=200, l2=0.0, eta=0.1, rounds=rounds, p=0.3,
                      compressor=CompressorSpec("topk", 0.02))
    out = []
    for seed in seeds:
        setup = replace(method_setup(method, base), p=0.3, job_seed=seed)
        result = train(setup, SimConfig(straggler="bernoulli", p=0.3, straggler_seed=seed), with_gap=False)
        out.append(float(np.mean(result.losses[-20:])))
    return out


def check_mlp(seeds: range, rounds: int, no_ef_ratio: float) -> None:
    """What holds on this MLP (measured, 3 seeds, T=500): COCO-EF 0.0745-0.0764 beats GC + top-k
    without EF (0.59-0.63) by ~8x and ties EF without GC (0.0756-0.0770, within 2%). The spec's full
    order does not hold here: GC + rand-k at equal bits reaches 0.055 (reported, not asserted)."""
    ours = mlp_losses("cocoef", seeds, rounds)
    no_ef = mlp_losses("gc_biased", seeds, rounds)
    no_gc = mlp_losses("ef_nogc", seeds, rounds)
    assert all(no_ef_ratio * a < b for a, b in zip(ours, no_ef, strict=True)), (ours, no_ef)
    assert all(a < 1.05 * b for a, b in zip(ours, no_gc, strict=True)), (ours, no_gc)


@pytest.mark.slow
def test_mlp_cocoef_training_loss() -> None:
    check_mlp(range(3), 500, no_ef_ratio=5.0)


def test_mlp_cocoef_training_loss_bounded() -> None:
    check_mlp(range(1), 100, no_ef_ratio=2.0)  # measured 0.415 vs 1.21 at T=100
