"""Forwarding of admitted client txs to the other validators: the admissions of one interval leave
as one TxMsg per peer (each loopback send costs CPU), a full TxMsg leaves at once."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from hedgerow.node.consensus import FORWARD_INTERVAL_S, TX_BATCH_MAX, ConsensusDriver
from hedgerow.protocols.monadbft import messages as m


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, ...]] = []

    def broadcast(self, message: Any) -> None:
        assert isinstance(message, m.TxMsg)
        self.sent.append(message.txs)


def _driver() -> tuple[ConsensusDriver, _Transport]:
    driver = ConsensusDriver.__new__(ConsensusDriver)
    transport = _Transport()
    driver.transport = transport  # type: ignore[assignment]
    driver._forward_pending, driver._forward_due = [], trio.Event()
    return driver, transport


async def test_admissions_within_an_interval_leave_as_one_txmsg(
        autojump_clock: trio.testing.MockClock) -> None:
    driver, transport = _driver()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.forward_actor)
        driver.forward_txs([b"a", b"b"])
        await trio.sleep(FORWARD_INTERVAL_S / 3)
        driver.forward_txs([b"c"])
        assert transport.sent == []
        await trio.sleep(FORWARD_INTERVAL_S)
        assert transport.sent == [(b"a", b"b", b"c")]
        await trio.sleep(10 * FORWARD_INTERVAL_S)
        assert transport.sent == [(b"a", b"b", b"c")], "nothing pending: nothing sent"
        driver.forward_txs([b"d"])
        await trio.sleep(2 * FORWARD_INTERVAL_S)
        assert transport.sent == [(b"a", b"b", b"c"), (b"d",)]
        nursery.cancel_scope.cancel()


async def test_a_full_txmsg_leaves_at_once() -> None:
    driver, transport = _driver()
    txs = [bytes([i % 256, i // 256]) for i in range(TX_BATCH_MAX + 3)]
    driver.forward_txs(txs)
    assert transport.sent == [tuple(txs[:TX_BATCH_MAX]), tuple(txs[TX_BATCH_MAX:])]
    assert driver._forward_pending == []
