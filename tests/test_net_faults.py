"""The seeded fault layer: replayable, statistically honest, and partitions cut exactly what they say."""

from __future__ import annotations

import math

import pytest

from hedgerow.net import ANY, FaultLayer, LinkFaults

NODES = [bytes([i]) * 20 for i in range(5)]
A, B, C = NODES[0], NODES[1], NODES[2]


def plans(layer: FaultLayer, src: bytes, dst: bytes, count: int) -> list[tuple[float, ...]]:
    return [layer.plan(src, dst) for _ in range(count)]


def within(observed: int, trials: int, p: float, sigmas: float = 5.0) -> bool:
    """|observed - np| within `sigmas` binomial standard deviations."""
    return abs(observed - trials * p) <= sigmas * math.sqrt(trials * p * (1 - p))


def lossy(seed: int) -> FaultLayer:
    layer = FaultLayer(seed=seed)
    layer.set_link(ANY, ANY, LinkFaults(drop=0.2, duplicate=0.1, delay_s=0.01, jitter_s=0.02, reorder=0.05))
    return layer


def test_same_seed_same_plans_whatever_the_interleaving() -> None:
    first, second = lossy(7), lossy(7)
    run_first = [plans(first, A, B, 500), plans(first, B, C, 500)]
    run_second_c = plans(second, B, C, 500)  # other link first: each link has its own stream
    run_second_b = plans(second, A, B, 500)
    assert run_first == [run_second_b, run_second_c]
    assert plans(lossy(8), A, B, 500) != run_first[0]


def test_drop_and_duplicate_rates_within_statistical_bounds() -> None:
    layer = lossy(3)
    trials = 20_000
    outcomes = plans(layer, A, B, trials)
    dropped = sum(1 for plan in outcomes if not plan)
    duplicated = sum(1 for plan in outcomes if len(plan) == 2)
    assert within(dropped, trials, 0.2)
    assert within(duplicated, trials - dropped, 0.1)  # drawn only for messages that survive
    assert layer.counters["drop"] == dropped and layer.counters["duplicate"] == duplicated
    delays = [delay for plan in outcomes for delay in plan]
    assert min(delays) >= 0.01 and max(delays) <= 0.01 + 0.02 + 0.05


def test_delay_is_fixed_plus_jitter_and_reorder_overtakes() -> None:
    layer = FaultLayer(seed=1)
    layer.set_link(A, B, LinkFaults(delay_s=0.5, jitter_s=0.1))
    delays = [plan[0] for plan in plans(layer, A, B, 2000)]
    assert all(0.5 <= d <= 0.6 for d in delays)
    assert abs(sum(delays) / len(delays) - 0.55) < 0.01
    layer.set_link(A, B, LinkFaults(reorder=0.3, reorder_window_s=1.0))
    arrival = [i * 0.01 + plan[0] for i, plan in enumerate(plans(layer, A, B, 1000))]
    overtaken = sum(1 for i in range(1, len(arrival)) if arrival[i] < arrival[i - 1])
    assert overtaken > 50  # later messages arrive first


@pytest.mark.parametrize("symmetric", [True, False])
def test_partitions_cut_exactly_the_configured_links(symmetric: bool) -> None:
    layer = FaultLayer(seed=0)
    side_a, side_b = NODES[:2], NODES[2:]
    layer.partition(side_a, side_b, symmetric=symmetric)
    for src in NODES:
        for dst in NODES:
            if src == dst:
                continue
            cut = (src in side_a and dst in side_b) or (symmetric and src in side_b and dst in side_a)
            assert (layer.plan(src, dst) == ()) == cut, (src[0], dst[0])
            assert layer.allows(src, dst) == (not cut)
    layer.heal()
    assert all(layer.plan(s, d) == (0.0,) for s in NODES for d in NODES if s != d)
    assert not layer.enabled


def test_exact_rules_win_over_wildcards_and_noop_removes() -> None:
    layer = FaultLayer(seed=0)
    layer.set_link(ANY, ANY, LinkFaults(drop=1.0))
    layer.set_link(A, B, LinkFaults(delay_s=2.0))
    assert layer.plan(A, B) == (2.0,) and layer.plan(A, C) == ()
    layer.set_link(ANY, ANY, LinkFaults())
    assert layer.plan(A, C) == (0.0,)
    layer.clear()
    assert not layer.enabled


def test_from_config() -> None:
    table = {
        "seed": 11,
        "link": [{"src": A.hex(), "dst": "*", "drop": 0.5, "delay_s": 0.1}],
        "partition": [{"a": [B.hex()], "b": [C.hex()], "symmetric": False}],
    }
    layer = FaultLayer.from_config(table)
    assert layer.seed == 11 and layer.rule(A, C) == LinkFaults(drop=0.5, delay_s=0.1)
    assert not layer.allows(B, C) and layer.allows(C, B)
    assert not FaultLayer.from_config({**table, "enabled": False}).enabled
    with pytest.raises(ValueError, match="unknown"):
        FaultLayer.from_config({"seed": 1, "drops": 0.1})
    with pytest.raises(ValueError, match="unknown"):
        FaultLayer.from_config({"link": [{"drop": 0.1, "lag": 3}]})
    with pytest.raises(ValueError, match="probability"):
        LinkFaults(drop=1.5)
