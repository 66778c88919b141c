"""What a validator proposes: never a tx already in an ancestor of the block it extends, including
finalized blocks its ledger has not executed yet (the node's mempool only forgets a tx at
execution, and a sender's next nonce only advances then)."""

from __future__ import annotations

import functools
from collections import deque
from types import SimpleNamespace
from typing import Any

from hedgerow.node.app_kv import KvApp, make_tx
from hedgerow.node.consensus import ConsensusDriver
from hedgerow.node.mempool import Mempool
from hedgerow.node.node import Node
from hedgerow.protocols.actions import Broadcast, Deliver, Send
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.monadbft import MonadCore, Params, ValidatorSet
from hedgerow.protocols.monadbft.records import Finalized
from hedgerow.protocols.monadbft.txpool import tx_hash

CHAIN = "payload-chain"
KEYS = [SigningKey.from_label(f"payload-v{i}") for i in range(4)]
VALIDATORS = ValidatorSet.equal([key.public for key in KEYS])


def _add(pool: Mempool, app: KvApp, tx: bytes) -> str:
    check = app.check_tx(tx)
    return pool.add(tx, check, app.account_nonce(check.sender))


def test_finalized_unexecuted_txs_are_neither_reaped_nor_readmitted() -> None:
    app = KvApp(CHAIN)
    pool = Mempool()
    alice = SigningKey.from_label("alice")
    txs = [make_tx(alice, CHAIN, n) for n in range(4)]
    for tx in txs:
        assert _add(pool, app, tx) == "ok"
    hashes = [tx_hash(tx) for tx in txs]
    pool.mark_finalized(hashes[:2])  # in a finalized block, ledger behind: next nonce is still 0
    ready = pool.reap_ready(100, 1 << 20, frozenset({hashes[2]}), app.account_nonce)
    assert ready == [txs[3]], "finalized (0, 1) and uncommitted-ancestor (2) txs are skipped, not gaps"
    pool.remove(hashes[:2], committed=False)  # an eviction is not an execution: still finalized
    assert _add(pool, app, txs[0]) == "duplicate", "a late copy of a finalized tx is not readmitted"
    app.execute_block(1, 0, txs[:2])
    pool.remove(hashes[:2])
    assert pool.stats()["finalized_unexecuted"] == 0
    assert _add(pool, app, txs[0]) == "duplicate", "executed txs are remembered"
    assert pool.reap_ready(100, 1 << 20, frozenset(), app.account_nonce) == txs[2:]


def _validator(index: int, txs: list[bytes]) -> tuple[MonadCore, Any]:
    """A core whose payload source is the real driver's and node's, over a ledger that lags (it
    executes nothing until the test says so), with every tx already in its mempool."""
    app = KvApp(CHAIN)
    node = SimpleNamespace(mempool=Mempool(), app=app, height=0, proposed_txs=0, _tx_hashes={})
    node.payload_source = functools.partial(Node.payload_source, node)
    node.tx_hashes = functools.partial(Node.tx_hashes, node)
    for tx in txs:
        assert _add(node.mempool, app, tx) == "ok"
    driver = ConsensusDriver.__new__(ConsensusDriver)
    driver.node, driver._marked_height = node, 0  # type: ignore[assignment]
    core = MonadCore(index, KEYS[index], VALIDATORS, CHAIN, Params(max_block_txs=7),
                     payload_source=driver.payload_source)
    driver.core = core
    return core, node


def test_a_lagging_ledger_never_makes_a_leader_repropose_finalized_txs() -> None:
    senders = [SigningKey.from_label(f"sender{i}") for i in range(5)]
    txs = [make_tx(key, CHAIN, n) for key in senders for n in range(12)]
    validators = [_validator(i, txs) for i in range(4)]
    finalized: list[list[Finalized]] = [[] for _ in validators]
    queue: deque[tuple[int, int, Any]] = deque()
    now = 1_000

    def run(index: int, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                queue.extend((index, to, action.message) for to in range(4) if to != index)
            elif isinstance(action, Send) and action.to != index:
                queue.append((index, action.to, action.message))
            elif isinstance(action, Deliver) and isinstance(action.value, Finalized):
                finalized[index].append(action.value)

    for index, (core, _) in enumerate(validators):
        run(index, core.start(now))
    steps = 0
    while queue and min(len(f) for f in finalized) < 20:
        sender, to, message = queue.popleft()
        now += 1
        run(to, validators[to][0].on_message(sender, message, now))
        steps += 1
        assert steps < 200_000, "no progress"
    assert min(len(f) for f in finalized) >= 20, "the cores stopped finalizing (no timers here)"
    chain = [tx_hash(tx) for record in finalized[0] for tx in record.block.txs]
    assert len(chain) > 20, "blocks carried txs"
    repeated = len(chain) - len(set(chain))
    assert repeated == 0, f"{repeated} txs included twice while the ledger lagged"
    # The ledger catches up: executing the finalized blocks clears the marks and the pool.
    for (_core, node), records in zip(validators, finalized, strict=True):
        for record in records:
            node.app.execute_block(node.height + 1, 0, list(record.block.txs))
            node.height += 1
            node.mempool.remove([tx_hash(tx) for tx in record.block.txs])
        assert node.mempool.stats()["finalized_unexecuted"] == 0


def test_the_scenario_checker_reports_a_tx_included_twice() -> None:
    from hedgerow.testnet.scenario_checks import ChainBlock, Evidence, duplicates, run_checks

    key = SigningKey.from_label("twice")
    tx, other = make_tx(key, CHAIN, 0), make_tx(key, CHAIN, 1)
    ids = [bytes([0]) * 32] + [bytes([h]) * 32 for h in range(1, 4)]
    blocks = [ChainBlock(h, ids[h], ids[h - 1], h, 0, h, txs, b"", None)
              for h, txs in ((1, (tx,)), (2, (other,)), (3, (tx,)))]
    evidence = Evidence(chains={"v0": blocks}, app="kv")
    hashes = {tx_hash(tx), tx_hash(other)}
    violations, _ = run_checks(evidence, byzantine=set(), submitted=hashes, acknowledged={},
                               start_height=0, validators=4)
    assert [v.invariant for v in violations] == ["duplicate"] and duplicates(evidence) == 1
    violations, _ = run_checks(evidence, byzantine=set(), submitted=hashes, acknowledged={tx_hash(tx): 1},
                               start_height=0, validators=4)
    assert [v.invariant for v in violations] == ["acknowledged"], violations
