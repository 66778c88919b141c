"""Nodes in their own network namespaces (iproute2 + veth + bridge): a node's link is cut in the
kernel and restored, and the scenario checks pass; `tc netem` delay/loss where the kernel has it.
Skipped, with the reason, where this machine refuses namespaces (not root, no iproute2) or netem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgerow.testnet.netns import NetnsTestnet, netem_available, netns_available, open_testnet
from hedgerow.testnet.scenario import create_for, run_scenario
from hedgerow.testnet.scenario_file import load_scenario, parse_scenario

pytestmark = pytest.mark.multiprocess
SCENARIO = Path(__file__).resolve().parent.parent / "testnet" / "scenarios" / "netns-kernel-cut.toml"
AVAILABLE, WHY_NOT = netns_available()


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsTestnet]:
    if not AVAILABLE:
        pytest.skip(f"network namespaces not allowed here: {WHY_NOT}")
    net = create_for(tmp_path_factory.mktemp("netns"), load_scenario(SCENARIO), netns=True)
    assert isinstance(net, NetnsTestnet)
    try:
        yield net
    finally:
        net.teardown()


def test_nodes_live_in_their_own_namespaces(testnet: NetnsTestnet) -> None:
    status = testnet.call("v1", "status")
    assert status["ports"]["rpc"] and testnet.host("v1").startswith("10.")
    reopened = open_testnet(testnet.dir)
    assert isinstance(reopened, NetnsTestnet) and reopened.host("v2") == testnet.host("v2")


def test_kernel_cut_then_heal_passes_the_checks(testnet: NetnsTestnet) -> None:
    result = run_scenario(testnet, load_scenario(SCENARIO).scaled(0.6))
    assert all(p.ok for p in result.perturbations), [p.to_json() for p in result.perturbations]
    assert result.violations == [], [v.to_dict() for v in result.violations]
    assert result.acknowledged > 0


def test_netem_delay_and_loss(testnet: NetnsTestnet) -> None:
    ok, why = netem_available()
    if not ok:
        pytest.skip(f"tc netem unavailable on this kernel: {why}")
    scenario = parse_scenario(
        {
            "name": "netem",
            "duration_s": 6,
            "perturb": [
                {"at_s": 1, "action": "netem", "node": "v0", "delay_ms": 30, "loss": 0.05},
                {"at_s": 4, "action": "netem", "node": "v0", "delay_ms": 0, "loss": 0},
            ],
        }
    )
    result = run_scenario(testnet, scenario)
    assert result.violations == [], [v.to_dict() for v in result.violations]
