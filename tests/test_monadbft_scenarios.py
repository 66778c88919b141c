"""Scenarios S1-S21, Twins T1-T6 and the Byzantine families at n = 4 and 7: each must produce
what spec §9 says, with the invariant checker green after every step (except the T6 control)."""

from __future__ import annotations

import pytest

from hedgerow.testnet.sim import monadbft_scenarios_adv as adv
from hedgerow.testnet.sim.monadbft_campaign import CATALOGUE, run_one

PLAIN = [
    name
    for name in CATALOGUE
    if name.startswith(("s", "t"))
    and name not in ("t6-negative-control", "s11-larger", "s18-round-jump", "s21-unequal-stake")
]


def show(outcome: object) -> str:
    return f"failed={outcome.failed} violations={outcome.violations[:5]}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", PLAIN)
def test_scenario_produces_what_the_spec_says(name: str) -> None:
    outcome = run_one(name, 0)
    assert outcome.ok, show(outcome)


@pytest.mark.parametrize("name", ["s18-round-jump", "s21-unequal-stake"])
def test_bounded_twins_of_the_thousand_round_scenarios(name: str) -> None:
    runner = {"s18-round-jump": adv.s18_round_jump, "s21-unequal-stake": adv.s21_unequal_stake}[name]
    outcome = runner(0, None, None, rounds=300)
    assert outcome.ok, show(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["s18-round-jump", "s21-unequal-stake"])
def test_thousand_round_scenarios(name: str) -> None:
    outcome = run_one(name, 0)
    assert outcome.ok, show(outcome)


@pytest.mark.parametrize("n", [7, 10])
def test_s11_larger_validator_sets(n: int) -> None:
    outcome = run_one("s11-larger", 0, nodes=n)
    assert outcome.ok, show(outcome)


@pytest.mark.slow
def test_s11_sixteen_validators() -> None:
    outcome = run_one("s11-larger", 0, nodes=16)
    assert outcome.ok, show(outcome)


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize(
    "name", ["byz-crashed-leader", "byz-silent", "byz-equivocation", "byz-tail-fork", "byz-double-vote"]
)
def test_byzantine_family_with_f_faulty_of_3f_plus_1(name: str, n: int) -> None:
    for seed in (0, 1):
        outcome = run_one(name, seed, nodes=n)
        assert outcome.ok, f"seed {seed}: " + show(outcome)


def test_t6_negative_control_reports_an_agreement_violation_between_c_and_d() -> None:
    outcome = run_one("t6-negative-control", 0)
    agreement = [v for v in outcome.violations if v["invariant"] == "agreement"]
    assert agreement and not outcome.failed
    assert {"C", "D"} <= {agreement[0]["node"]} | set(agreement[0]["detail"].split())


def test_s1_reports_the_spec_latencies() -> None:
    notes = run_one("s1-happy", 1).notes
    assert notes["voted_latency_ms"] == [(20, 20, 30, 30)]
    assert notes["final_latency_ms"] == [(40, 40, 50, 50)]
    assert notes["round_interval_ms"] == [20]
    assert notes["messages_per_round"] <= 15


def test_t5_generated_twins_stay_safe_on_honest_nodes() -> None:
    for seed in range(25):
        outcome = run_one("t5-generated", seed)
        assert outcome.ok, f"seed {seed}: " + show(outcome)
