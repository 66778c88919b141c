"""The village-market month on a real 4-validator grassroots testnet: `hedgerow testnet scenario
village --dir DIR` runs the script live (days mapped onto heights, each act's txs in waves) and its
end state must equal the direct run's (`hedgerow sim --protocol grassroots --scenario village`, the
spec 9 table). About 55 s on 2 cores; every wait inside the runner is a condition with a deadline."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgerow.node.cli import main
from hedgerow.node.errors import ConfigError
from hedgerow.testnet.scenario import create_for
from hedgerow.testnet.scenario_cli import load
from hedgerow.testnet.scenario_file import parse_scenario, script_scenario
from hedgerow.testnet.sim.grassroots_campaign import compare_end_states, run_scenario


@pytest.fixture(scope="module")
def testnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("village") / "net"
    net = create_for(directory, script_scenario("village"))
    try:
        yield directory
    finally:
        net.kill_all()


@pytest.mark.multiprocess
@pytest.mark.timeout(150)
def test_village_live_end_state_equals_the_direct_run(
    testnet_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["testnet", "scenario", "village", "--dir", str(testnet_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "pass" and result["violations"] == []
    script = result["script"]
    assert script["matches_direct"] and script["mismatches"] == []
    direct = run_scenario("village")
    live = script["end_state"]
    assert live["agents"] == direct["agents"]
    assert live["supply"] == direct["supply"]
    assert live["checkpoints"] == direct["checkpoints"]
    assert live["violations"] == []
    # every scripted tx (34) acknowledged and on the chain once; one act needed 3 waves (day 25:
    # Diana's redemption, then Eve's that defaults Bob, then Bob's mint refused)
    assert result["acknowledged"] == result["committed"] == 34 and result["duplicates"] == 0
    assert max(script["waves"]) == 3 and script["day_slack_heights"] > 0
    # a second month on the same chain would start from the first's balances: refused, exit 1
    assert main(["testnet", "scenario", "village", "--dir", str(testnet_dir), "--json"]) == 1
    again = json.loads(capsys.readouterr().out)
    assert [v["invariant"] for v in again["violations"]] == ["script"]
    assert "needs a fresh testnet" in again["violations"][0]["detail"]


def test_a_live_end_state_that_differs_is_reported() -> None:
    direct = run_scenario("village")
    live = copy.deepcopy(direct)
    live["agents"]["B"]["treasury"]["B0"] = 11
    live["agents"]["E"]["ratios"]["cash"] = "1/2"
    live["supply"]["B0"] = 16
    found = compare_end_states(live, direct)
    assert len(found) == 3 and found[0].startswith("B treasury:") and found[2].startswith("supply:")
    assert compare_end_states(copy.deepcopy(direct), direct) == []


def test_script_scenarios_by_name_and_in_files(tmp_path: Path) -> None:
    village = load(Path("village"))
    assert (village.name, village.script, village.stretch, village.steps) == ("village", "village", 4, ())
    assert parse_scenario({"script": "village", "stretch": 3}).stretch == 3
    with pytest.raises(ConfigError, match="unknown script"):
        parse_scenario({"script": "villages"})
    with pytest.raises(ConfigError, match="no \\[load\\]"):
        parse_scenario({"script": "village", "load": {"rate_tps": 5}})
    with pytest.raises(ConfigError, match="stretch"):
        parse_scenario({"script": "village", "stretch": 0})
