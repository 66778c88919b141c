"""The GLP plays and the village market: end balances and ratios exactly as tabled in spec 9."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hedgerow.node.cli import main
from hedgerow.testnet.sim.grassroots_campaign import SCENARIOS, run_scenario


def parse(text: str) -> dict[str, int]:
    """'B0 5, C0 11' -> {"B0": 5, "C0": 11}; '-' -> {}."""
    if text.strip() in ("", "-"):
        return {}
    return {label: int(amount) for label, amount in (item.split() for item in text.split(","))}


def balances(report: dict[str, Any]) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    return {x: (view["holds"], view["treasury"]) for x, view in report["agents"].items()}


def table(**rows: tuple[str, str]) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    return {x: (parse(holds), parse(treasury)) for x, (holds, treasury) in rows.items()}


PLAYS = {
    "play-2": table(A=("B0 3", "-"), B=("A0 3", "-")),
    "play-3": table(A=("B0 1", "-"), B=("A0 3", "B0 2")),
    "play-4": table(A=("B0 1", "A0 2"), B=("A0 1", "B0 2")),
    "play-4b": table(A=("B0 1, B20 5", "A0 2, A20 2"), B=("A0 3, A20 3", "B0 4")),
    "play-5": table(A=("B5 10", "-"), B=("A0 9", "-")),
    "play-6": table(A=("B100 1, B200 1, B300 11", "-"), B=("A0 10", "-")),
    "play-8": table(A=("B0 5", "A0 2"), B=("A0 3, A10 3", "-")),
    "play-9": table(A=("B50 3", "-"), B=("A50 3", "-")),
    "play-10": table(A=("B0 2", "-"), B=("A0 5", "B0 3")),
    "play-11": table(A=("B0 5", "-"), B=("A0 5", "-")),
}


@pytest.mark.parametrize("play", sorted(PLAYS))
def test_glp_play_end_balances(play: str) -> None:
    report = run_scenario(play)
    assert balances(report) == PLAYS[play]
    assert report["violations"] == []


VILLAGE_DAY16 = table(
    A=("B0 5, C0 15, F0 4", "A0 8"),
    B=("A0 10, D0 20", "-"),
    C=("A0 10, E0 10", "C0 6"),
    D=("B25 24, F28 13", "D0 8"),
    E=("A0 2, B0 10, C0 4, F0 1", "-"),
    F=("D0 7, E0 10", "F0 5, F28 5"),
)
VILLAGE_FINAL = table(
    A=("B0 5, C0 11, F0 4", "A0 8"),
    B=("-", "B0 10, B25 24"),
    C=("A0 10, E0 10", "C0 6"),
    D=("A0 4, E0 6", "D0 35"),
    E=("A0 8, C0 8, F0 1", "-"),
    F=("E0 4", "F0 5, F28 18"),
)
VILLAGE_CL = {"A": 22, "B": 5, "C": 19, "D": 0, "E": 20, "F": 5}
VILLAGE_RATIO = {"A": "10/11", "B": "0", "C": "20/19", "D": None, "E": "17/20", "F": "4/5"}
VILLAGE_SUPPLY = parse("A0 30, B0 15, B25 24, C0 25, D0 35, E0 20, F0 10, F28 18")


def test_village_market_final_state_matches_the_spec() -> None:
    report = run_scenario("village")
    assert balances(report) == VILLAGE_FINAL
    for agent, view in report["agents"].items():
        assert view["current_liabilities"] == VILLAGE_CL[agent]
        expected = VILLAGE_RATIO[agent]
        assert view["ratios"] == {"cash": expected, "quick": expected, "current": expected}
    assert report["supply"] == VILLAGE_SUPPLY
    assert report["violations"] == []
    assert report["now"] == 140


def test_village_market_day16_and_day2_checkpoints() -> None:
    checkpoints = run_scenario("village")["checkpoints"]
    assert {x: (v["holds"], v["treasury"]) for x, v in checkpoints["day16"].items()} == VILLAGE_DAY16
    assert checkpoints["day2"]["B"] == {"cash": "10/13", "quick": "10/13", "current": "10/13"}
    assert checkpoints["day2"]["D"] == {"cash": "0", "quick": "0", "current": "21/16"}


def test_sim_cli_prints_the_end_state_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--protocol", "grassroots", "--scenario", "village", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agents"]["A"]["ratios"] == {"cash": "10/11", "quick": "10/11", "current": "10/11"}
    assert report["agents"]["D"]["ratios"]["cash"] is None
    assert report["violations"] == []


def test_sim_cli_tables_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--protocol", "grassroots", "--scenario", "play-4b"]) == 0
    assert "B0 1, B20 5" in capsys.readouterr().out
    assert main(["sim", "--protocol", "grassroots", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["scenarios"]
    assert set(listed) == set(SCENARIOS) and {"village", "play-2", "play-11", "random"} <= set(listed)


def test_sim_cli_random_load_is_seeded_and_clean(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "sim",
        "--protocol",
        "grassroots",
        "--scenario",
        "random",
        "--seeds",
        "3-4",
        "--steps",
        "40",
        "--json",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["failed_seeds"] == [] and all(run["codes"].get("OK", 0) > 0 for run in first["runs"])
