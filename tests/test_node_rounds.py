"""Heard-Of instances over a real loopback testnet (4 validator processes, the nodes' rounds actors):

- `hedgerow rounds ... --dir` runs library algorithms in `ho_f` mode on every node: all decide one
  input value, every realized HO set has >= n - f members;
- S6 (spec heardof.md §9): a node is SIGKILLed in the middle of a LastVoting instance (it entered
  round 0, persisted and sent its messages, its peer already heard it); restarted, it resumes from
  its fsynced HoRecord, resends byte-identical round messages (its peer counts a duplicate, never a
  conflicting one), and every node decides the same value; killed again after deciding, it comes
  back with the same decision.

One module-scoped testnet; every wait is a condition with a deadline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from testnet_helpers import fast_testnet

from hedgerow.node.cli import main
from hedgerow.node.job_client import cluster_from_testnet
from hedgerow.testnet.launcher import Testnet, wait_until

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    yield from fast_testnet(tmp_path_factory.mktemp("rounds-net"))


@pytest.mark.parametrize("algorithm", ["otr", "lv", "floodmin"])
def test_rounds_cli_runs_an_instance_on_every_node(testnet: Testnet, capsys: pytest.CaptureFixture[str],
                                                   algorithm: str) -> None:
    verb = ["testnet", "rounds"] if algorithm == "floodmin" else ["rounds"]  # both entry points
    code = main([*verb, "--algorithm", algorithm, "--predicate", "hof", "--mode", "ho_f",
                 "--inputs", "3,1,1,2", "--dir", str(testnet.dir), "--timeout", "30", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert len(summary["decided"]) == 4 and summary["undecided"] == [] and summary["violations"] == []
    values = set(summary["decisions"].values())
    assert len(values) == 1 and values <= {1, 2, 3}
    assert summary["predicate_held"] is True
    for node in summary["nodes"]:
        assert node["trace"] and all(len(ho) >= 3 and node["p"] in ho for ho in node["trace"])
        assert node["counters"].get("conflicting_duplicate", 0) == 0


def _status(testnet: Testnet, name: str, instance: int) -> dict[str, Any] | None:
    status: dict[str, Any] | None = testnet.call(name, "rounds_status", instance=instance)
    return status


def test_s6_restart_mid_last_voting(testnet: Testnet) -> None:
    cluster = cluster_from_testnet(testnet.dir)
    names = [w.name for w in cluster.workers]  # genesis order: p = 0..3
    instance = 6006
    params = {"instance": instance, "algorithm": "lv", "inputs": [5, 7, 5, 9], "f": 1, "mode": "ho_f",
              "amp_grace_s": 0.005}
    first, victim, late = names[0], names[1], names[2:]
    for name in (first, victim):
        testnet.call(name, "rounds_start", timeout_s=10.0, **params)
    # Both entered round 0 (record fsynced, messages sent); with 2 of 4 they cannot end it (n-f = 3).
    wait_until(lambda: (_status(testnet, first, instance) or {}).get("heard") == 2, 20, "p0 to hear p1")
    before = _status(testnet, victim, instance)
    assert before is not None and before["round"] == 0 and before["persists"] >= 1
    testnet.kill(victim)
    testnet.start(victim)
    resumed = wait_until(lambda: _status(testnet, victim, instance), 40, f"{victim} to resume the instance")
    assert resumed["resumed"] is True and resumed["round"] == 0 and not resumed["decided"]
    # Its resent round-0 message is the same bytes: a plain duplicate at p0, never a conflicting one.
    wait_until(lambda: (_status(testnet, first, instance) or {}).get("counters", {}).get("duplicate", 0) >= 1,
               20, "p0 to receive the resent round-0 message")
    for name in late:
        testnet.call(name, "rounds_start", timeout_s=10.0, **params)

    def all_decided() -> list[dict[str, Any]] | None:
        statuses = [_status(testnet, name, instance) or {} for name in names]
        return statuses if all(s.get("decided") for s in statuses) else None

    final = wait_until(all_decided, 30, "every node's decision")
    decisions = {s["decision"] for s in final}
    assert len(final) == 4 and len(decisions) == 1 and decisions <= {5, 7, 9}
    for status in final:
        assert status["counters"].get("conflicting_duplicate", 0) == 0
        assert all(len(ho) >= 3 for ho in status["trace"])
    victim_status = _status(testnet, victim, instance)
    assert victim_status is not None and victim_status["resumed"] is True
    # Killed again after deciding: the decision comes back from its record, unchanged.
    testnet.kill(victim)
    testnet.start(victim)
    again = wait_until(lambda: _status(testnet, victim, instance), 40, f"{victim} to resume again")
    assert again["resumed"] is True and again["decided"] is True and again["decision"] in decisions
