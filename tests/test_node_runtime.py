"""The actor runtime: bounded inboxes, one-cancels-all with the crashing actor named, shutdown
callbacks always run, a graceful stop exits 0."""

from __future__ import annotations

import pytest
import trio

from hedgerow.node.runtime import ActorCrashed, Mailbox, Supervisor, drain


async def test_one_actor_crash_cancels_the_others_and_names_it() -> None:
    sup = Supervisor()
    cancelled: list[str] = []
    closed: list[str] = []
    steady_running = trio.Event()

    async def steady() -> None:
        try:
            steady_running.set()
            await trio.sleep_forever()
        finally:
            cancelled.append("steady")

    async def faulty() -> None:
        await steady_running.wait()
        raise RuntimeError("boom")

    async def close() -> None:
        closed.append("store")

    sup.add("steady", steady)
    sup.add("faulty", faulty)
    sup.on_shutdown(close)
    with trio.fail_after(5), pytest.raises(ActorCrashed, match="actor faulty crashed: RuntimeError: boom"):
        await sup.run(handle_signals=False)
    assert cancelled == ["steady"] and closed == ["store"]


async def test_stop_is_graceful_and_nested_groups_unwrap() -> None:
    sup = Supervisor()
    started = trio.Event()

    async def waiter() -> None:
        started.set()
        await trio.sleep_forever()

    sup.add("waiter", waiter)
    async with trio.open_nursery() as nursery:
        codes: list[int] = []

        async def run() -> None:
            codes.append(await sup.run(handle_signals=False))

        nursery.start_soon(run)
        with trio.fail_after(5):
            await started.wait()
        sup.stop()
    assert codes == [0]

    nested = Supervisor()

    async def inner_crash() -> None:
        async with trio.open_nursery() as inner:
            inner.start_soon(_raise_value_error)

    nested.add("network", inner_crash)
    with trio.fail_after(5), pytest.raises(ActorCrashed) as info:
        await nested.run(handle_signals=False)
    assert isinstance(info.value.error, ValueError)


async def _raise_value_error() -> None:
    raise ValueError("inner")


async def test_mailbox_is_bounded_and_drains_in_batches() -> None:
    box: Mailbox[int] = Mailbox("test", 3)
    assert all(box.try_send(i) for i in range(3))
    assert not box.try_send(99) and box.dropped == 1
    assert box.pending() == 3
    first = await box.receive()
    assert drain(box, first, 10) == [0, 1, 2]
    with pytest.raises(ValueError):
        Mailbox("empty", 0)
