"""Scenarios S1-S7 under the simulator (`hedgerow sim --protocol heardof`) and `hedgerow rounds --sim`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hedgerow.node.cli import main
from hedgerow.testnet.sim.heardof_campaign import SCENARIOS


def sim(capsys: pytest.CaptureFixture[str], scenario: str, seeds: str = "0-2") -> tuple[int, dict[str, Any]]:
    code = main(["sim", "--protocol", "heardof", "--scenario", scenario, "--seeds", seeds, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


def test_scenario_list() -> None:
    assert {"s1-amp-rounds", "s2-ho-oracle", "s3-colorless", "s4-separation", "s4-unsafe", "s5-equivalence",
            "s6-restart", "s7-approx"} <= set(SCENARIOS)


def test_s1_amp_rounds_realize_hof_and_decide(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s1-amp-rounds", "0-9")
    assert code == 0 and out["violations"] == [] and out["undecided"] == []
    assert {r["label"] for r in out["runs"]} == {"otr", "uv", "lv", "floodmin"}
    crashed = [r for r in out["runs"] if r["crashed"]]
    assert len(crashed) >= len(out["runs"]) // 2           # most runs lose a node mid-broadcast
    assert all(r["info"]["mean_ho"] >= 3 for r in out["runs"])   # realized |HO| >= n - f


def test_s2_oracle_runs_and_the_uv_split_bites(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s2-ho-oracle", "0-4")
    assert code == 0 and out["violations"] == []
    split = [r for r in out["runs"] if r["label"] == "uv-split"]
    assert split and all(len(set(r["decisions"].values())) == 2 for r in split)
    assert all(r["decisions"] == {"0": 1, "1": 1, "2": 0} for r in split)


def test_s3_colorless_needs_c1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s3-colorless")
    assert code == 0 and out["violations"] == []
    by_label = {r["label"]: r for r in out["runs"] if r["seed"] == 0}
    assert by_label["c1-off"]["undecided"] == [3, 4]
    assert by_label["c1-on"]["decided"] == [0, 1, 2, 3, 4]
    assert len(set(by_label["c1-on"]["decisions"].values())) <= 3


def test_s4_separation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s4-separation", "0-1")
    assert code == 0 and out["violations"] == []
    assert out["decided"] == [0, 1, 2] and out["undecided"] == [3, 4]
    by_label = {r["label"]: r for r in out["runs"] if r["seed"] == 0}
    assert by_label["ho2-silenced"]["info"]["rounds"] == 200
    assert by_label["amp2-slow"]["decided"] == [0, 1, 2, 3, 4]
    assert by_label["amp2-crashed"]["decided"] == [0, 1, 2] and by_label["amp2-crashed"]["crashed"] == [3, 4]


def test_s4_unsafe_extension_breaks_comparability(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s4-unsafe", "0")
    assert code == 1
    assert out["violations"] and "comparability" in out["violations"][0]["what"]
    run = out["runs"][0]
    assert 13 in run["decisions"]["3"] and 14 not in run["decisions"]["3"]
    assert 14 in run["decisions"]["4"] and 13 not in run["decisions"]["4"]


def test_s5_equivalence_f1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s5-equivalence")
    assert code == 0 and out["violations"] == [] and out["undecided"] == []
    assert any("c2" in r["info"]["how"] for r in out["runs"])


def test_s6_restart_simulated(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s6-restart", "0-9")
    assert code == 0 and out["violations"] == []
    assert all(r["info"]["restarts"] == 1 and r["info"]["conflicting_duplicates"] == 0 for r in out["runs"])


def test_s7_approx(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = sim(capsys, "s7-approx", "0-9")
    assert code == 0 and out["violations"] == [] and out["decided"] == [0, 1, 2, 3]
    for r in out["runs"]:
        values = list(r["decisions"].values())
        assert max(values) - min(values) <= 1 and r["info"]["rounds"] == 10


def test_rounds_sim_cli(capsys: pytest.CaptureFixture[str]) -> None:
    for mode, predicate in (("ho_f", "hof"), ("timeout", "lv")):
        code = main(["rounds", "--algorithm", "lv", "--predicate", predicate, "--mode", mode,
                     "--inputs", "0,1,1,0", "--sim", "--seeds", "0-2", "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and out["violations"] == []
        assert all(r["undecided"] == [] for r in out["runs"])
    assert main(["rounds", "--algorithm", "otr", "--inputs", "0,1", "--sim"]) == 2      # n <= 2f
    assert main(["rounds", "--algorithm", "otr", "--inputs", "0,1,1,0"]) == 2           # needs --sim


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["s1-amp-rounds", "s2-ho-oracle", "s3-colorless", "s4-separation",
                                      "s5-equivalence", "s6-restart", "s7-approx"])
def test_scenario_campaigns_200_seeds(capsys: pytest.CaptureFixture[str], scenario: str) -> None:
    code, out = sim(capsys, scenario, "0-199")
    assert code == 0 and out["violations"] == []
