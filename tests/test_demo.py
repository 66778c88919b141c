"""`hedgerow demo --quick` end to end: 4 real validators, the village-market month run live on them
(its end state equal to the direct run's), a leader crash under grassroots load, a Newton job on the
validators' compute workers (the first one it is sent to is killed holding it) and a gradient-coded
job on their GcWorkers (one validator paused for some rounds); exit 0, every part checked, and honest
about where each part ran."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.multiprocess


def test_demo_quick_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hedgerow.node.cli", "demo", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + done.stdout[-3000:]
    report = json.loads(done.stdout)
    assert report["failures"] == []
    chain = report["chain"]
    assert chain["violations"] == [] and chain["acknowledged"] > 0
    assert [p["action"] for p in chain["perturbations"]] == ["kill", "restart"]
    assert all(p["ok"] for p in chain["perturbations"])
    village = report["village"]
    assert village["verdict"] == "pass" and village["violations"] == [] and "error" not in village
    script = village["script"]  # the `hedgerow testnet scenario village` report, on the demo's chain
    assert script["name"] == "village" and script["matches_direct"] and script["mismatches"] == []
    assert script["end_state"]["violations"] == [] and script["day_slack_heights"] > 0
    assert village["acknowledged"] == village["committed"] == 34 and village["duplicates"] == 0
    newton, training = report["newton"], report["gradcoding"]
    assert newton["delivered"] == 1 and newton["status"] == "converged"
    assert newton["max_err_vs_seq"] <= 1e-8 and newton["iterations"] > 0
    assert len(newton["killed"]) == 1 and newton["served_by"] not in newton["killed"]  # reassigned
    assert training["final_loss"] < training["first_loss"] and training["final_gap"] is not None
    assert training["rounds"] > 0 and training["stragglers_seen"] > 0 and training["bits_uplink"] > 0
    assert len(training["paused"]) == 1
    for part in (newton, training):
        assert part["where"].startswith("the validators' compute-worker actors")
        assert "/jobs/" in part["job_log"]  # the dashboard's progress log
    assert village["where"].startswith("the demo's 4 validators")
    assert report["wall_s"] < 180
