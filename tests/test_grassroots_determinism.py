"""Determinism and replay (spec 6.1 #10): equal hash sequences across processes with different
PYTHONHASHSEED, snapshot/restore plus replay reaching the same hashes, and the Application interface."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys

import pytest

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.app import GrassrootsApp
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import Code
from hedgerow.protocols.grassroots.ledger import results_hash
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.queries import QueryError
from hedgerow.protocols.grassroots.state import restore_state, snapshot_bytes
from hedgerow.protocols.grassroots.workload import Workload

HASH_SCRIPT = """
import json, random
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.ledger import Ledger
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import LedgerState
from hedgerow.protocols.grassroots.workload import Workload
params = Params(chain_id="det")
rng = random.Random(7)
clients = [Client(SigningKey.from_label(f"det/{i}"), "det") for i in range(7)]
ledger = Ledger(params, LedgerState())
load = Workload(clients, rng, invalid_rate=0.1)
out = []
for _ in range(60):
    state = ledger.state
    result = ledger.apply_block(state.height + 1, state.now + rng.choice((0, 1, 3)), load.block(state, 12))
    out.append([result.app_hash.hex(), result.results_hash.hex()])
print(json.dumps(out))
"""


def hashes_in_subprocess(hash_seed: str) -> list[list[str]]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run(
        [sys.executable, "-c", HASH_SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    result: list[list[str]] = json.loads(done.stdout)
    return result


def test_same_seed_same_hashes_across_processes_with_different_hash_seeds() -> None:
    first, second = hashes_in_subprocess("0"), hashes_in_subprocess("424242")
    assert len(first) == 60 and first == second
    assert len({pair[0] for pair in first}) > 50  # the state really moves


def load(seed: int = 3, agents: int = 6) -> tuple[Params, Workload, random.Random]:
    params = Params(chain_id="app")
    rng = random.Random(seed)
    clients = [Client(SigningKey.from_label(f"app/{i}"), params.chain_id) for i in range(agents)]
    return params, Workload(clients, rng, invalid_rate=0.1), rng


def test_snapshot_restore_and_replay_reach_the_same_hashes() -> None:
    params, workload, rng = load()
    blocks = []
    app = GrassrootsApp(params)
    snapshot, snapshot_height = b"", 0
    for height in range(1, 41):
        txs = workload.block(app.state, 10)
        blocks.append((height, txs))
        app.execute_block(height, 0, txs)
        if height == 25:
            snapshot, snapshot_height = app.snapshot(), height
            assert hashlib.sha256(snapshot).digest() == app.app_hash() == app.app_hashes[25]
    restored = GrassrootsApp(params)
    restored.restore(snapshot)
    for height, txs in blocks[snapshot_height:]:
        receipts, digest = restored.execute_block(height, 0, txs)
        assert digest == app.app_hashes[height]
    fresh = GrassrootsApp(params)
    for height, txs in blocks:
        receipts, digest = fresh.execute_block(height, 0, txs)
        assert digest == app.app_hashes[height]
    assert fresh.last is not None and app.last is not None
    assert fresh.last.results_hash == app.last.results_hash == results_hash(receipts)


def test_restore_rejects_corrupt_snapshots() -> None:
    params, workload, _ = load()
    app = GrassrootsApp(params)
    for height in range(1, 6):
        app.execute_block(height, 0, workload.block(app.state, 10))
    data = app.snapshot()
    assert snapshot_bytes(restore_state(data)) == data
    for bad in (data[:-1], data + b"\x00", data.replace(b"grassroots-state/v1", b"grassroots-state/v2")):
        with pytest.raises(ValueError):
            restore_state(bad)


def test_timestamp_clock_uses_block_seconds() -> None:
    app = GrassrootsApp(Params(chain_id="ts", clock="timestamp"))
    app.execute_block(1, 1_700_000_000.9, [])
    assert app.state.now == 1_700_000_000


def test_check_tx_verdicts_and_nonce_window() -> None:
    params = Params(chain_id="app", mempool_nonce_window=2)
    app = GrassrootsApp(params)
    alice = Client(SigningKey.from_label("app/alice"), "app")
    assert app.check_tx(b"junk").code == Code.MALFORMED
    assert app.check_tx(Client(alice.key, "other").mint(0, 1)).code == Code.WRONG_CHAIN
    tx = alice.mint(0, 1)
    assert app.check_tx(tx[:-1] + bytes([tx[-1] ^ 1])).code == Code.BAD_SIGNATURE
    assert app.check_tx(tx).ok
    alice.nonce = 2
    assert app.check_tx(alice.mint(0, 1)).ok  # a future nonce inside the window
    alice.nonce = 3
    assert app.check_tx(alice.mint(0, 1)).code == Code.BAD_NONCE
    app.execute_block(1, 0, [tx])
    assert app.check_tx(tx).code == Code.BAD_NONCE  # replay of a committed tx


def test_queries() -> None:
    params = Params(chain_id="app")
    app = GrassrootsApp(params)
    a, b = (Client(SigningKey.from_label(f"app/{x}"), "app") for x in "ab")
    txs = [
        a.mint(0, 5),
        b.mint(0, 5),
        a.swap_with(b, [(a.account, 0, 5)], [(b.account, 0, 5)], 9),
        a.offer(b.account, [(b.account, 0, 2)], [], 9),
        b.redeem(a.account, 0, 4),
    ]
    receipts, _ = app.execute_block(1, 0, txs)
    assert [r.code for r in receipts] == [Code.OK] * 5
    # b's auto redemption of 4 A0 nets the 3 B0 `a` holds free (2 more are locked in its offer) and
    # opens a default claim (id 2) for the last unit
    assert app.query("balance", {"holder": a.account.hex()})["free"] == [
        {"issuer": a.account.hex(), "maturity": 0, "amount": 3}
    ]
    assert app.query("contract", {"id": 1})["state"] == "OPEN"
    assert (
        app.query("contract", {"id": 2})["type"] == "claim"
        and app.query("contract", {"id": 2})["amount"] == 1
    )
    assert app.query("contract", {"id": 9}) is None
    assert [c["id"] for c in app.query("contracts", {"party": b.account.hex()})] == [1, 2]
    supply = app.query("supply", {"issuer": a.account.hex()})
    assert supply == [
        {
            "issuer": a.account.hex(),
            "maturity": 0,
            "minted": 5,
            "burned": 0,
            "outstanding": 5,
            "held_by_others": 2,
        }
    ]
    report = app.query("ratios", {"agent": a.account.hex()})
    assert report["ratios"] == {"cash": "0", "quick": "0", "current": "0"}
    assert (report["liabilities"], report["in_default"], report["default_count"]) == (2, True, 1)
    app.execute_block(2, 0, [a.cancel_offer(1)])
    menu = app.query("redemption_menu", {"issuer": a.account.hex(), "redeemer": b.account.hex()})
    assert menu == {
        "auto": [{"issuer": b.account.hex(), "maturity": 0, "amount": 2}],
        "menu": [{"issuer": b.account.hex(), "maturity": 0, "amount": 2}],
    }
    assert app.query("nonce", {"account": a.account.hex()}) == 4
    assert app.query("receipt", {"tx_hash": receipts[4].tx_hash.hex()})["events"][0][0] == "redeem"
    assert app.query("app_hash", {"height": 2}) == app.app_hash().hex()
    assert app.query("exposure", {"agent": a.account.hex(), "other": b.account.hex()}) == {
        "holds_of_other": 2,
        "other_holds": 1,
    }
    assert app.query("status")["height"] == 2
    with pytest.raises(QueryError):
        app.query("nope")
    with pytest.raises(QueryError):
        app.query("balance", {"holder": "zz"})


def test_signatures_checked_by_check_tx_are_not_verified_again_with_the_same_result() -> None:
    params, workload, _ = load(seed=11)
    checked, unchecked = GrassrootsApp(params), GrassrootsApp(params)
    for height in range(1, 16):
        txs = workload.block(checked.state, 12)
        admitted = [raw for raw in txs if checked.check_tx(raw).code != Code.MALFORMED]
        assert all(
            checked.check_tx(raw).tx_hash in checked.verified for raw in admitted if checked.check_tx(raw).ok
        )
        assert checked.execute_block(height, 0, txs) == unchecked.execute_block(height, 0, txs)
        assert not any(tx_hash in checked.verified for tx_hash in (r.tx_hash for r in checked.last.receipts))
