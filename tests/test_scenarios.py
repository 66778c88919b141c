"""Every shipped scenario on a real 4-validator grassroots testnet, in a bounded form (timelines
scaled down), and the >f Byzantine scenario making the checker report the break.

One module-scoped testnet serves every scenario (each run restores the testnet: heals faults, starts
killed nodes, restarts Byzantine ones honest), in file order; the scenario that breaks liveness runs
last. Waits are conditions with deadlines inside the runner; no test sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgerow.node.errors import ConfigError
from hedgerow.testnet.launcher import Testnet
from hedgerow.testnet.scenario import ScenarioResult, create_for, run_scenario
from hedgerow.testnet.scenario_file import load_scenario, parse_scenario

pytestmark = pytest.mark.multiprocess
SCENARIOS = Path(__file__).resolve().parent.parent / "testnet" / "scenarios"
SCALE = 0.6  # bounded form: every timeline at 60 %


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    directory = tmp_path_factory.mktemp("scenarios")
    net = create_for(directory, load_scenario(SCENARIOS / "crash-leader.toml"))
    try:
        yield net
    finally:
        net.kill_all()


def _run(testnet: Testnet, name: str, scale: float = SCALE) -> ScenarioResult:
    result = run_scenario(testnet, load_scenario(SCENARIOS / f"{name}.toml").scaled(scale))
    assert all(p.ok for p in result.perturbations), [p.to_json() for p in result.perturbations]
    return result


def _passes(result: ScenarioResult) -> None:
    assert result.violations == [], [v.to_dict() for v in result.violations]
    assert result.acknowledged > 0 and result.committed >= result.acknowledged
    assert result.liveness_resumed_s is not None


def test_shipped_scenario_files_parse() -> None:
    names = {path.stem for path in SCENARIOS.glob("*.toml")}
    assert {
        "crash-leader",
        "rolling-restarts",
        "minority-partition",
        "majority-partition-heals",
        "flaky-links",
        "byzantine-equivocation",
        "byzantine-tail-fork",
        "garbage-peer",
        "byzantine-beyond-f",
    } <= names
    for path in SCENARIOS.glob("*.toml"):
        scenario = load_scenario(path)
        assert scenario.name == path.stem and scenario.steps


def test_a_typo_in_a_scenario_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_scenario({"perturb": [{"at_s": 1, "action": "kill", "nod": "v1"}]})
    with pytest.raises(ConfigError, match="unknown action"):
        parse_scenario({"perturb": [{"at_s": 1, "action": "explode"}]})


def test_crash_leader(testnet: Testnet) -> None:
    result = _run(testnet, "crash-leader")
    _passes(result)
    assert [p.action for p in result.perturbations] == ["kill", "restart"]


def test_rolling_restarts(testnet: Testnet) -> None:
    result = _run(testnet, "rolling-restarts", scale=0.5)
    _passes(result)
    assert len(result.perturbations) == 8


def test_minority_partition(testnet: Testnet) -> None:
    _passes(_run(testnet, "minority-partition"))


def test_majority_partition_heals(testnet: Testnet) -> None:
    result = _run(testnet, "majority-partition-heals")
    _passes(result)
    assert result.max_commit_gap_s >= 0.5  # a 2 | 2 split stops commits until the heal


def test_flaky_links_and_clock_skew(testnet: Testnet) -> None:
    _passes(_run(testnet, "flaky-links"))


def test_garbage_peer(testnet: Testnet) -> None:
    result = _run(testnet, "garbage-peer")
    _passes(result)
    assert any("closed_malformed" in line for line in result.observed), result.observed


def test_byzantine_equivocation(testnet: Testnet) -> None:
    result = _run(testnet, "byzantine-equivocation")
    _passes(result)
    assert result.byzantine == ["v3"] and result.observed


def test_byzantine_tail_fork(testnet: Testnet) -> None:
    result = _run(testnet, "byzantine-tail-fork")
    _passes(result)
    assert any("v2 double-voted" in line for line in result.observed), result.observed


def _cli(testnet: Testnet, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on the fixture's testnet; then reload the pids it may have changed (cleanup needs them)."""
    try:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "hedgerow.node.cli",
                "testnet",
                "scenario",
                *args,
                "--dir",
                str(testnet.dir),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        testnet.nodes = Testnet.open(testnet.dir).nodes


def test_cli_json_report(testnet: Testnet) -> None:
    done = _cli(testnet, str(SCENARIOS / "minority-partition.toml"), "--scale", "0.5")
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    report = json.loads(done.stdout)
    assert report["violations"] == [] and report["verdict"] == "pass"
    assert report["acknowledged"] > 0 and report["committed"] >= report["acknowledged"]
    assert [p["action"] for p in report["perturbations"]] == ["partition", "heal"]
    assert isinstance(report["max_commit_gap_s"], float)


def test_more_byzantine_than_f_makes_the_checker_report_the_break(testnet: Testnet) -> None:
    """Two of four validators withhold every vote: the CLI exits 1 and names the broken invariant."""
    done = _cli(testnet, str(SCENARIOS / "byzantine-beyond-f.toml"))
    assert done.returncode == 1, done.stderr + done.stdout[-2000:]
    report = json.loads(done.stdout)
    assert report["verdict"] == "fail" and report["as_expected"] is True
    assert report["byzantine"] == ["v2", "v3"]
    assert any(v["invariant"] == "liveness" for v in report["violations"]), report["violations"]
    assert "violations in byzantine-beyond-f" in done.stderr
    assert any(line.startswith("every validator committing again") for line in report["restored"]), report
    # restored afterwards: every validator honest again and committing
    heights = testnet.heights()
    try:
        testnet.wait_for_height(max(heights.values()) + 3, deadline_s=60)
    except Exception:
        print([s.to_json() for s in testnet.status()], report["restored"])
        raise
