"""`hedgerow tx` against a live single-validator node running the grassroots app: submit and wait
for finality, a failing tx printing its code's name, and queries over the node's RPC."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgerow.node.cli import main
from hedgerow.protocols.crypto import SigningKey
from hedgerow.testnet.launcher import free_ports, wait_until
from hedgerow.testnet.sim.grassroots_campaign import run_live

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def live_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("grassroots-live") / "node"
    assert main(["init", "--home", str(home), "--chain-id", "grassroots-live"]) == 0
    p2p, rpc = free_ports(2)
    genesis_path = home / "config" / "genesis.json"
    genesis = json.loads(genesis_path.read_text())
    genesis["app"] = "grassroots"
    genesis["validators"][0]["address"] = f"127.0.0.1:{p2p}"
    genesis_path.write_text(json.dumps(genesis))
    toml = home / "config" / "node.toml"
    text = toml.read_text().replace("127.0.0.1:26656", f"127.0.0.1:{p2p}")
    toml.write_text(text + f'\n[rpc]\nlisten = "127.0.0.1:{rpc}"\n\n[metrics]\nlisten = ""\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "hedgerow.node.cli", "run", "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: status(home).get("height", 0) >= 2, 60, "the node to commit height 2")
        yield home
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def status(home: Path) -> dict[str, int]:
    from hedgerow.node.rpc_client import client_for_home

    with client_for_home(home) as client:
        answer: dict[str, int] = client.call("status")
        return answer


def test_tx_final_then_failure_code_then_queries(live_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    me = json.loads((live_home / "config" / "key.ed25519").read_text())["public_key"]
    bob = SigningKey.from_label("bob").public.raw.hex()
    capsys.readouterr()
    home = ["--home", str(live_home), "--json"]
    assert main(["tx", "mint", "--amount", "15", "--wait", "final", *home]) == 0
    minted = json.loads(capsys.readouterr().out)
    assert minted["status"] == "final" and minted["tx_result"] == [0, "OK"]
    assert main(["tx", "transfer", "--to", "@bob", "--lot", f"{me}:0:5", "--wait", "final", *home]) == 0
    capsys.readouterr()
    assert main(["tx", "burn", "--amount", "99", "--wait", "final", *home]) == 1
    assert capsys.readouterr().err.strip() == "hedgerow: error: INSUFFICIENT_BALANCE"
    assert main(["tx", "query", "balance", "holder=@bob", *home]) == 0
    assert json.loads(capsys.readouterr().out)["free"] == [{"issuer": me, "maturity": 0, "amount": 5}]
    assert main(["tx", "query", "ratios", f"agent={bob}", *home]) == 0
    assert json.loads(capsys.readouterr().out)["ratios"] == {"cash": None, "quick": None, "current": None}
    assert main(["tx", "query", "nonce", f"account={me}", *home]) == 0
    assert json.loads(capsys.readouterr().out) == 3


def test_glp_plays_against_the_live_node(live_home: Path) -> None:
    report = run_live("play-4b", live_home, stretch=8, deadline_s=60)
    assert report["violations"] == []
    views = {x: (v["holds"], v["treasury"]) for x, v in report["agents"].items()}
    assert views == {"A": ({"B0": 1, "B20": 5}, {"A0": 2, "A20": 2}), "B": ({"A0": 3, "A20": 3}, {"B0": 4})}
    report = run_live("play-11", live_home, stretch=4, deadline_s=60)
    assert report["violations"] == []
    # the plays share the node, so play 11's balances add to play 4b's (A 1 B0 + 5 B0)
    assert report["agents"]["A"]["holds"]["B0"] == 6 and report["agents"]["B"]["treasury"] == {"B0": 4}
