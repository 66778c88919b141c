"""The transport in process: memory streams, virtual time (autojump_clock), hostile peers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from hedgerow.net import PeerProtocolError, Transport, TransportConfig
from hedgerow.net.framing import frame
from hedgerow.net.messages import Hello, Note
from hedgerow.net.testing import ManualPeer, connect
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.wire import encode

CHAIN = "test-chain"
KEYS = {name: SigningKey.from_label(name) for name in ("a", "b", "c", "mallory")}
VALIDATORS = frozenset(KEYS[name].node_id for name in ("a", "b", "c"))
CONFIG = TransportConfig(handshake_timeout_s=2.0, idle_timeout_s=10.0, keepalive_interval_s=3.0,
                         write_timeout_s=5.0, send_queue_max=8, seed=1)


def make(name: str, config: TransportConfig = CONFIG) -> Transport:
    return Transport(KEYS[name], chain_id=CHAIN, validators=VALIDATORS, config=config)


@asynccontextmanager
async def running(*transports: Transport) -> AsyncIterator[trio.Nursery]:
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for transport in transports:
                await nursery.start(transport.run)
            yield nursery
            nursery.cancel_scope.cancel()


async def exchange(x: Transport, y: Transport, seq: int) -> None:
    """x and y still talk to each other, both ways."""
    assert await x.send(y.node_id, Note(seq, b"ping", b""))
    assert (await y.inbox.receive()) == (x.node_id, Note(seq, b"ping", b""))
    assert await y.send(x.node_id, Note(seq + 1, b"pong", b""))
    assert (await x.inbox.receive()) == (y.node_id, Note(seq + 1, b"pong", b""))


async def test_handshake_then_messages_both_ways(autojump_clock: trio.abc.Clock) -> None:
    a, b = make("a"), make("b")
    async with running(a, b):
        connect(a, b)
        await a.wait_connected([b.node_id])
        await b.wait_connected([a.node_id])
        await exchange(a, b, 0)
        info = a.peers()[b.node_id]
        assert info.validator and info.outbound and not b.peers()[a.node_id].outbound
        assert a.stats.counts["handshakes_ok"] == b.stats.counts["handshakes_ok"] == 1
        assert a.broadcast(Note(7, b"all", b"")) == 1
        assert (await b.inbox.receive()).message == Note(7, b"all", b"")


async def test_non_genesis_peer_is_an_observer(autojump_clock: trio.abc.Clock) -> None:
    a, b, observer = make("a"), make("b"), make("mallory")
    async with running(a, b, observer):
        connect(a, b)
        connect(observer, a)
        await a.wait_connected([b.node_id, observer.node_id])
        await observer.wait_connected([a.node_id])
        assert not a.peers()[observer.node_id].validator
        assert a.broadcast(Note(1, b"", b"")) == 1  # validators only
        assert a.broadcast(Note(2, b"", b""), include_observers=True) == 2
        assert (await observer.inbox.receive()).message == Note(2, b"", b"")


async def test_observers_can_be_refused(autojump_clock: trio.abc.Clock) -> None:
    a = make("a", TransportConfig(accept_observers=False, seed=1))
    observer = make("mallory")
    async with running(a, observer):
        connect(observer, a)
        await wait_for(lambda: a.stats.closed["observer_refused"] == 1)


async def wait_for(condition: object, step_s: float = 0.01) -> None:
    while not condition():  # type: ignore[operator]
        await trio.sleep(step_s)


@asynccontextmanager
async def victim_with_a_good_peer() -> AsyncIterator[tuple[Transport, Transport]]:
    """A node `a` already talking with `b`; each bad-input test attacks `a`, then checks it still
    serves `b`."""
    a, b = make("a"), make("b")
    async with running(a, b):
        connect(b, a)
        await a.wait_connected([b.node_id])
        yield a, b
        await exchange(a, b, 100)
        await exchange(b, a, 200)


def attack(victim: Transport) -> trio.abc.Stream:
    """A raw stream into the victim, as if a peer had connected to its listener."""
    ours, theirs = trio.testing.memory_stream_pair()
    victim.add_stream(theirs, outbound=False)
    return ours


async def test_wrong_key_fails_the_signature_check(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, b):
        # Mallory claims b's (validator) identity but cannot sign with b's key.
        mallory = ManualPeer(attack(a), KEYS["b"], CHAIN, sign_with=KEYS["mallory"])
        with contextlib.suppress(PeerProtocolError):  # the victim hangs up
            await mallory.handshake()
        await wait_for(lambda: a.stats.closed["bad_signature"] == 1)


async def test_wrong_chain_id(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        with pytest.raises(PeerProtocolError, match="eof"):  # hung up on, no Hello back
            await ManualPeer(attack(a), KEYS["c"], "other-chain").handshake()
        await wait_for(lambda: a.stats.closed["wrong_chain"] == 1)


async def test_dialled_peer_with_the_wrong_identity(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        c = make("c")
        async with running(c):
            left, right = trio.testing.memory_stream_pair()
            a.add_stream(left, outbound=True, expected_peer=KEYS["mallory"].node_id)  # but c answers
            c.add_stream(right, outbound=False)
            await wait_for(lambda: a.stats.closed["wrong_peer"] == 1)
            assert not a.is_connected(c.node_id)


async def test_tampered_ciphertext(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        peer = ManualPeer(attack(a), KEYS["c"], CHAIN)
        await peer.handshake()
        sealed = bytearray(peer.seal(Note(1, b"x" * 40, b"")))
        sealed[-20] ^= 0x01
        await peer.send_raw(bytes(sealed))
        await wait_for(lambda: a.stats.closed["bad_mac"] == 1)


async def test_replayed_frame(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        peer = ManualPeer(attack(a), KEYS["c"], CHAIN)
        await peer.handshake()
        sealed = peer.seal(Note(1, b"once", b""))
        await peer.send_raw(sealed)
        assert (await a.inbox.receive()).message == Note(1, b"once", b"")
        await peer.send_raw(sealed)
        await wait_for(lambda: a.stats.closed["replay"] == 1)
        assert a.inbox.statistics().current_buffer_used == 0  # the replay was not delivered


async def test_truncated_frame(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        stream = attack(a)
        peer = ManualPeer(stream, KEYS["c"], CHAIN)
        await peer.handshake()
        await peer.send_raw(peer.seal(Note(1, b"cut short", b""))[:-5])
        await stream.aclose()
        await wait_for(lambda: a.stats.closed["truncated"] == 1)


@pytest.mark.parametrize("after_handshake", [False, True])
async def test_oversized_length_prefix(autojump_clock: trio.abc.Clock, after_handshake: bool) -> None:
    async with victim_with_a_good_peer() as (a, _):
        stream = attack(a)
        if after_handshake:
            await ManualPeer(stream, KEYS["c"], CHAIN).handshake()
        await stream.send_all((2**31).to_bytes(4, "big") + b"\x00" * 64)
        await wait_for(lambda: a.stats.closed["frame_too_large"] == 1)


async def test_garbage_bytes(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        await attack(a).send_all(frame(b"\xc1 this is not msgpack"))  # framed garbage: malformed
        await attack(a).send_all(b"GET / HTTP/1.1\r\n\r\n")  # unframed: "GET " is a 1.2 GB prefix
        peer = ManualPeer(attack(a), KEYS["c"], CHAIN)
        await peer.handshake()
        assert peer.session is not None
        await peer.send_raw(peer.session.seal(b"\xc1\xc1 sealed garbage"))  # authentic, not msgpack
        await wait_for(lambda: a.stats.closed["malformed"] == 2 and a.stats.closed["frame_too_large"] == 1)


async def test_handshake_messages_after_the_handshake_are_refused(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        peer = ManualPeer(attack(a), KEYS["c"], CHAIN)
        await peer.handshake()
        await peer.send_raw(peer.seal(Hello(1, CHAIN, bytes(32), bytes(32))))
        await wait_for(lambda: a.stats.closed["unexpected"] == 1)


async def test_peer_that_never_finishes_the_handshake_times_out(autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, _):
        silent = attack(a)  # says nothing at all
        half = attack(a)  # sends half a Hello
        await half.send_all(frame(encode(Hello(1, CHAIN, bytes(32), bytes(32))))[:20])
        start = trio.current_time()
        await wait_for(lambda: a.stats.closed["handshake_timeout"] == 2)
        assert trio.current_time() - start == pytest.approx(CONFIG.handshake_timeout_s, abs=0.05)
        del silent


async def test_concurrent_handshakes_are_bounded(autojump_clock: trio.abc.Clock) -> None:
    a = make("a", TransportConfig(handshakes_max=3, handshake_timeout_s=2.0, seed=1))
    async with running(a):
        silent = [attack(a) for _ in range(5)]  # five connections that never say Hello
        await wait_for(lambda: a.stats.closed["handshakes_full"] == 2)
        await wait_for(lambda: a.stats.closed["handshake_timeout"] == 3)
        b = make("b")
        async with running(b):
            connect(b, a)  # room again
            await a.wait_connected([b.node_id])
        del silent


async def test_keepalive_holds_an_idle_link_and_silence_is_an_idle_timeout(
        autojump_clock: trio.abc.Clock) -> None:
    async with victim_with_a_good_peer() as (a, b):
        peer = ManualPeer(attack(a), KEYS["c"], CHAIN)
        await peer.handshake()  # then never sends a thing, not even keepalives
        start = trio.current_time()
        await wait_for(lambda: a.stats.closed["idle_timeout"] == 1)
        assert trio.current_time() - start == pytest.approx(CONFIG.idle_timeout_s, abs=0.05)
        await trio.sleep(5 * CONFIG.idle_timeout_s)  # a and b stay connected through pings alone
        assert a.is_connected(b.node_id) and a.stats.counts["pings_out"] >= 5


async def test_bounded_send_queue_backpressure_then_write_timeout(autojump_clock: trio.abc.Clock) -> None:
    a = make("a")
    async with running(a):
        ours, theirs = trio.testing.lockstep_stream_pair()  # no buffering: a blocks when we stop reading
        a.add_stream(theirs, outbound=False)
        peer = ManualPeer(ours, KEYS["c"], CHAIN)
        await peer.handshake()
        await a.wait_connected([KEYS["c"].node_id])
        c = KEYS["c"].node_id
        accepted = sum(a.send_nowait(c, Note(i, b"x" * 100, b"")) for i in range(100))
        await trio.testing.wait_all_tasks_blocked()  # the writer took a batch, blocked on the unread stream
        accepted += sum(a.send_nowait(c, Note(i, b"x" * 100, b"")) for i in range(100))
        # two queue-fulls, plus perhaps one handed straight to a writer already waiting for it
        assert 2 * CONFIG.send_queue_max <= accepted <= 2 * CONFIG.send_queue_max + 1
        assert a.stats.dropped["queue_full"] == 200 - accepted
        with trio.move_on_after(1.0) as blocked:
            await a.send(c, Note(999, b"", b""))  # backpressure: waits for room
        assert blocked.cancelled_caught
        await wait_for(lambda: a.stats.closed["write_timeout"] == 1)
        assert not a.is_connected(c)
        assert not await a.send(c, Note(1000, b"", b"")) and a.stats.dropped["not_connected"] == 1


async def test_duplicate_connections_keep_one_per_pair(autojump_clock: trio.abc.Clock) -> None:
    a, b = make("a"), make("b")
    async with running(a, b):
        connect(a, b)
        connect(b, a)  # both dialled at once: the one the lower id initiated survives, on both ends
        await wait_for(lambda: a.stats.closed.total() + b.stats.closed.total() == 2)
        assert len(a.peers()) == len(b.peers()) == 1
        assert a.peers()[b.node_id].outbound == (a.node_id < b.node_id)
        assert b.peers()[a.node_id].outbound == (b.node_id < a.node_id)
        await exchange(a, b, 0)
        dialer, listener = (a, b) if a.node_id < b.node_id else (b, a)
        connect(dialer, listener)  # a reconnect in the same direction: the newest wins
        await wait_for(lambda: dialer.stats.closed.total() == listener.stats.closed.total() == 2)
        assert len(a.peers()) == len(b.peers()) == 1
        await exchange(a, b, 10)


async def test_dialer_reconnects_with_jittered_exponential_backoff(autojump_clock: trio.abc.Clock) -> None:
    a, b = make("a"), make("b")
    attempts: list[float] = []

    async def open_stream() -> trio.abc.Stream:
        attempts.append(trio.current_time())
        if len(attempts) <= 5:
            raise OSError("connection refused")
        left, right = trio.testing.memory_stream_pair()
        b.add_stream(right, outbound=False)
        return left

    async with running(a, b):
        a.dial_with(b.node_id, open_stream, "memory")
        await a.wait_connected([b.node_id])
        gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
        for n, gap in enumerate(gaps[:5]):
            cap_s = CONFIG.reconnect_base_s * 2**n
            assert cap_s / 2 <= gap <= cap_s + 1e-9
        assert a.stats.counts["dial_failures"] == 5
        await b.wait_connected([a.node_id])
        b.disconnect(a.node_id)  # the link drops: a dials again, soon
        await wait_for(lambda: len(attempts) == 7)
        assert a.stats.closed["eof"] == 1 and b.stats.closed["local_close"] == 1
        await a.wait_connected([b.node_id])
        await exchange(a, b, 0)
        a.undial(b.node_id)


async def test_one_way_partition_and_delay_through_transports(autojump_clock: trio.abc.Clock) -> None:
    from hedgerow.net import LinkFaults

    a, b, c = make("a"), make("b"), make("c")
    async with running(a, b, c):
        connect(a, b)
        connect(a, c)
        connect(b, c)
        for node in (a, b, c):
            await node.wait_connected([n.node_id for n in (a, b, c) if n is not node])
        b.faults.cut(a.node_id, b.node_id)  # configured at the receiver: a -> b is cut, b -> a is not
        await a.send(b.node_id, Note(1, b"lost", b""))
        await b.send(a.node_id, Note(2, b"kept", b""))
        assert (await a.inbox.receive()).message == Note(2, b"kept", b"")
        await a.send(c.node_id, Note(3, b"kept", b""))
        assert (await c.inbox.receive()).message == Note(3, b"kept", b"")
        await wait_for(lambda: b.stats.dropped["fault_injected"] == 1)
        b.faults.heal()
        a.faults.set_link(a.node_id, b.node_id, LinkFaults(duplicate=1.0))
        await a.send(b.node_id, Note(5, b"twice", b""))
        assert [(await b.inbox.receive()).message.seq for _ in range(2)] == [5, 5]
        a.faults.set_link(a.node_id, b.node_id, LinkFaults(delay_s=1.5))
        sent_at = trio.current_time()
        await a.send(b.node_id, Note(4, b"late", b""))
        assert (await b.inbox.receive()).message == Note(4, b"late", b"")
        assert trio.current_time() - sent_at == pytest.approx(1.5, abs=0.05)
