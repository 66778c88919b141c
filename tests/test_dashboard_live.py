"""The dashboard on a live 4-node grassroots testnet, through its HTTP API: the ledger panel's data
(supply per issuer, open offers) after real transactions; partition and heal: the cut-off node stops
committing while the other three go on, and catches up once healed."""

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
