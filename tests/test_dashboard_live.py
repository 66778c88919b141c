"""The dashboard on a live 4-node grassroots testnet, through its HTTP API: the ledger panel's data
(supply per issuer, open offers) after real transactions; partition and heal: the cut-off node stops
committing while the other three go on, and catches up once healed; a paused validator's rounds end by
timeout certificates, which the nodes report and the timeline shows as such."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import log_tails
from starlette.testclient import TestClient

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.testnet import launcher
from hedgerow.testnet.dashboard.collector import Collector
from hedgerow.testnet.dashboard.server import TOKEN_HEADER, build_app
from hedgerow.testnet.dashboard.server import testnet_token as token_of
from hedgerow.testnet.manifest import default_manifest

pytestmark = pytest.mark.multiprocess
DEADLINE_S = 30.0


@pytest.fixture
def live_net(tmp_path: Path) -> Iterator[launcher.Testnet]:
    try:
        result = launcher.up(tmp_path / "net", default_manifest(4, app="grassroots"), deadline_s=60.0)
    except launcher.WaitTimeout as error:
        pytest.fail(f"testnet up: {error}\n{log_tails(tmp_path / 'net')}")
    try:
        yield result.testnet
    finally:
        launcher.Testnet.open(result.testnet.dir).kill_all()


def test_partition_and_heal_a_live_node_from_the_api(live_net: launcher.Testnet) -> None:
    directory = live_net.dir
    headers = {TOKEN_HEADER: token_of(directory)}
    reader = launcher.Testnet.open(directory)  # the collector and its worker threads own their own

    def heights(*names: str) -> dict[str, int]:
        return reader.heights(list(names) or None)

    alice = SigningKey.from_label("dashboard-alice").public.raw.hex()
    app = build_app(Collector(directory, accounts=[alice]), token_of(directory))  # alice's ratios only
    with TestClient(app, base_url="http://127.0.0.1", backend="trio", client=("127.0.0.1", 50000)) as client:
        pids = {name: rec.pid for name, rec in reader.nodes.items()}
        reply = client.post("/api/partition", json={"a": ["v3"]}, headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.json()["partition"]["synced"] == ["v0", "v1", "v2", "v3"]  # live, no restart
        assert {name: rec.pid for name, rec in launcher.Testnet.open(directory).nodes.items()} == pids
        cut = heights()
        launcher.wait_until(lambda: all(h >= cut[n] + 5 for n, h in heights("v0", "v1", "v2").items()),
                            DEADLINE_S, "v0..v2 to commit 5 blocks while v3 is cut off")
        assert heights("v3")["v3"] <= cut["v3"] + 2, "the cut-off node kept committing"
        status = client.get("/api/status").json()
        assert_ledger_shown(client, reader)
        assert [n["alive"] for n in status["nodes"]] == [True] * 4

        assert client.post("/api/heal", headers=headers).status_code == 200
        top = max(heights("v0", "v1", "v2").values())
        launcher.wait_until(lambda: heights("v3")["v3"] > top, DEADLINE_S, "v3 to catch up after heal")


def assert_ledger_shown(client: TestClient, reader: launcher.Testnet) -> None:
    """Two issuers mint, one offers coins to the other; the snapshot's ledger shows both."""
    alice = Client(SigningKey.from_label("dashboard-alice"), reader.chain_id)
    bob = Client(SigningKey.from_label("dashboard-bob"), reader.chain_id)
    def submit(tx: bytes) -> int:
        reply = reader.call("v0", "submit", timeout_s=20.0, tx=tx, wait="final")
        assert reply["status"] == "final" and reply["tx_result"][1] == "OK", reply
        return int(reply["height"])

    submit(alice.mint(0, 1000))
    height = submit(bob.mint(0, 500))  # the ledger's clock is the height (offer deadlines in heights)
    give, want = [(alice.account, 0, 10)], [(bob.account, 0, 5)]
    submit(alice.offer(bob.account, give, want, expires_at=height + 5000))

    def ledger() -> dict[str, Any] | None:
        snapshot = client.get("/api/snapshot").json()
        found = snapshot.get("ledger")
        return found if found and len(found["supply"]) == 2 and found["open_counts"] else None

    shown = launcher.wait_until(ledger, DEADLINE_S, "the ledger in the dashboard's snapshot")
    assert {row["issuer"] for row in shown["supply"]} == {alice.account.hex(), bob.account.hex()}
    assert shown["open_counts"] == {"offer": 1}
    assert [a["agent"] for a in shown["accounts"]] == [alice.account.hex()]


def test_a_paused_leader_shows_as_timeouts_and_a_tc(live_net: launcher.Testnet) -> None:
    """Pause v3 (round-robin leader of every 4th round): the other three time out its rounds and form
    TCs, log them, count them in /metrics, and the timeline shows "timeout r=R" and "TC r=R" entries
    instead of an inferred "view change"."""
    directory = live_net.dir
    headers = {TOKEN_HEADER: token_of(directory)}
    collector = Collector(directory, interval_s=0.2)
    with TestClient(build_app(collector, token_of(directory)), base_url="http://127.0.0.1", backend="trio",
                    client=("127.0.0.1", 50000)) as client:
        launcher.wait_until(lambda: client.get("/api/snapshot").status_code == 200, DEADLINE_S,
                            "the dashboard's first snapshot")  # its log tails start from here
        reply = client.post("/api/nodes/v3/pause", headers=headers)
        assert reply.status_code == 200, reply.text

        def tcs() -> list[dict[str, Any]]:
            return [e for e in collector.events_after(0) if e["name"].startswith("TC r=")]

        tc = launcher.wait_until(tcs, DEADLINE_S, "a TC entry in the timeline")[0]
        assert tc["kind"] == "view" and set(tc["node"].split(",")) <= {"v0", "v1", "v2"}, tc
        round_ = tc["name"].removeprefix("TC r=")
        names = {e["name"] for e in collector.events_after(0)}
        assert f"timeout r={round_}" in names, names  # a TC is made of the live nodes' timeouts

        def counted() -> bool:
            nodes = client.get("/api/snapshot").json()["nodes"]
            return any((n.get("tcs") or 0) >= 1 and (n.get("round_timeouts") or 0) >= 1 for n in nodes)

        launcher.wait_until(counted, DEADLINE_S, "hedgerow_tcs_total >= 1 in a snapshot")
        assert "view change" not in {e["name"] for e in collector.events_after(0)}
        assert client.post("/api/nodes/v3/resume", headers=headers).status_code == 200
