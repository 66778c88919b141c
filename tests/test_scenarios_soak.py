"""The 10-minute soak (slow): testnet/scenarios/soak.toml, 20 cycles of a kill/restart, a
pause/resume, a minority partition and flaky links under grassroots load, on a fresh testnet.
Its bounded twins are the scenarios of tests/test_scenarios.py. Run with:
    .venv/bin/pytest -m slow tests/test_scenarios_soak.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hedgerow.testnet.scenario import create_for, run_scenario
from hedgerow.testnet.scenario_file import load_scenario

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
SOAK = Path(__file__).resolve().parent.parent / "testnet" / "scenarios" / "soak.toml"


@pytest.mark.timeout(1500)  # ten minutes of load by design, past the suite's 600 s per-test limit
def test_soak_ten_minutes_of_rolling_perturbations(tmp_path: Path) -> None:
    scenario = load_scenario(SOAK)
    assert scenario.duration_s >= 600 and len(scenario.steps) >= 100
    testnet = create_for(tmp_path / "soak", scenario)
    try:
        result = run_scenario(testnet, scenario)
    finally:
        testnet.kill_all()
    assert all(p.ok for p in result.perturbations), [p.to_json() for p in result.perturbations if not p.ok]
    assert result.violations == [], [v.to_dict() for v in result.violations]
    assert result.acknowledged > 1000
