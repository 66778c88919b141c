"""The transport actor: TCP listener and dialers, authenticated connections, send/broadcast, inbox.

See the package docstring (`hedgerow.net`) for the API in one page.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import trio

from hedgerow.net.backoff import Backoff
from hedgerow.net.config import TransportConfig, TransportStats
from hedgerow.net.connection import Connection
from hedgerow.net.delayline import DelayLine
from hedgerow.net.errors import PeerProtocolError
from hedgerow.net.faults import FaultLayer
from hedgerow.net.framing import FramedStream
from hedgerow.net.handshake import HANDSHAKE_FRAME_BYTES_MAX, run_handshake
from hedgerow.net.secure import SEAL_OVERHEAD
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.wire import encode

_NO_FAULT = (0.0,)
OpenStream = Callable[[], Awaitable[trio.abc.Stream]]


class Inbound(NamedTuple):
    """One decoded message from an authenticated peer (`peer` is its 20-byte node id)."""

    peer: bytes
    message: Any


@dataclass(frozen=True, slots=True)
class PeerInfo:
    node_id: bytes
    validator: bool  # in the genesis validator set; otherwise an observer
    outbound: bool  # we dialled it
    address: str
    connected_at: float
    queued: int  # frames waiting in its send queue


class Transport:
    """Start with `await nursery.start(transport.run)`; everything else needs it running."""

    def __init__(self, key: SigningKey, *, chain_id: str, validators: Iterable[bytes],
                 config: TransportConfig | None = None, faults: FaultLayer | None = None) -> None:
        self.key = key
        self.node_id = key.node_id
        self.chain_id = chain_id
        self.validators = frozenset(validators)
        self.config = config or TransportConfig()
        self.stats = TransportStats()
        self.faults = faults if faults is not None else FaultLayer(seed=self.config.seed or 0)
        self._inbox_send, self.inbox = trio.open_memory_channel[Inbound](self.config.inbox_max)
        self._connections: dict[bytes, Connection] = {}
        self._dialers: dict[bytes, trio.CancelScope] = {}
        self._changed = trio.Event()
        self._rng = random.Random(self.config.seed)
        self._delays = DelayLine(self._release_delayed, entries_max=self.config.inbox_max * 4)
        self._nursery: trio.Nursery | None = None
        self._handshaking = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled or `close()`d; owns every listener, dialer and connection task."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._delays.run)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._inbox_send.close()

    def close(self) -> None:
        """Stop every task and connection; `inbox` iteration ends."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _tasks(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("transport is not running: await nursery.start(transport.run) first")
        return self._nursery

    # -- connecting ----------------------------------------------------------------------------
    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Accept TCP connections on host:port (0 picks a free port); returns the bound address."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        self._tasks().start_soon(partial(trio.serve_listeners, self._serve_tcp, listeners))
        bound = listeners[0].socket.getsockname()
        return str(bound[0]), int(bound[1])

    async def _serve_tcp(self, stream: trio.SocketStream) -> None:
        try:
            remote = stream.socket.getpeername()
            address = f"{remote[0]}:{remote[1]}"
        except OSError:
            address = "?"
        await self.handle_stream(stream, outbound=False, address=address)

    def should_dial(self, peer_id: bytes) -> bool:
        """Between validators the lower node id dials (one connection per pair); observers dial all."""
        return peer_id != self.node_id and (self.node_id not in self.validators or self.node_id < peer_id)

    def dial_peers(self, peers: Mapping[bytes, tuple[str, int]]) -> list[bytes]:
        """Keep connections to those of `peers` this node should dial; returns their ids."""
        chosen = [peer for peer in sorted(peers) if self.should_dial(peer)]
        for peer in chosen:
            host, port = peers[peer]
            self.dial(peer, host, port)
        return chosen

    def dial(self, peer_id: bytes, host: str, port: int) -> None:
        """Keep one connection to peer_id at host:port, reconnecting with jittered backoff."""
        self.dial_with(peer_id, partial(trio.open_tcp_stream, host, port), f"{host}:{port}")

    def dial_with(self, peer_id: bytes, open_stream: OpenStream, address: str) -> None:
        """`dial` with any stream opener (tests use memory streams)."""
        self.undial(peer_id)
        scope = trio.CancelScope()
        self._dialers[peer_id] = scope
        self._tasks().start_soon(self._dial_loop, peer_id, open_stream, address, scope)

    def undial(self, peer_id: bytes) -> None:
        scope = self._dialers.pop(peer_id, None)
        if scope is not None:
            scope.cancel()

    async def _dial_loop(self, peer_id: bytes, open_stream: OpenStream, address: str,
                         scope: trio.CancelScope) -> None:
        config = self.config
        backoff = Backoff(base_s=config.reconnect_base_s, max_s=config.reconnect_max_s, rng=self._rng)
        with scope:
            while True:
                while peer_id in self._connections:
                    await self._changed.wait()
                stream: trio.abc.Stream | None = None
                with trio.move_on_after(config.connect_timeout_s):
                    with contextlib.suppress(OSError):
                        stream = await open_stream()
                if stream is None:
                    self.stats.counts["dial_failures"] += 1
                elif await self.handle_stream(stream, outbound=True, expected_peer=peer_id, address=address):
                    backoff.reset()
                await trio.sleep(backoff.next_delay_s())

    def add_stream(self, stream: trio.abc.Stream, *, outbound: bool, expected_peer: bytes | None = None,
                   address: str = "memory") -> None:
        """Serve an already-open byte stream (in-process tests) in the background."""
        self._tasks().start_soon(partial(self.handle_stream, stream, outbound=outbound,
                                         expected_peer=expected_peer, address=address))

    async def handle_stream(self, stream: trio.abc.Stream, *, outbound: bool,
                            expected_peer: bytes | None = None, address: str = "memory") -> bool:
        """Handshake, then serve the connection until it closes. True when the handshake succeeded.
        Every failure closes the stream and is counted in `stats.closed` by reason."""
        config = self.config
        if self._handshaking >= config.handshakes_max:
            return await self._refuse(stream, "handshakes_full")
        framed = FramedStream(stream, frame_bytes_max=HANDSHAKE_FRAME_BYTES_MAX,
                              receive_bytes=config.receive_bytes)
        self._handshaking += 1
        try:
            with trio.fail_after(config.handshake_timeout_s):
                result = await run_handshake(framed, self.key, self.chain_id, initiator=outbound,
                                             expected_peer=expected_peer)
            validator = result.peer.node_id in self.validators
            if not validator:
                self._admit_observer()
        except trio.TooSlowError:
            return await self._refuse(stream, "handshake_timeout")
        except PeerProtocolError as error:
            return await self._refuse(stream, error.reason)
        finally:
            self._handshaking -= 1
        framed.decoder.frame_bytes_max = config.frame_bytes_max + SEAL_OVERHEAD
        conn = Connection(framed, result.session, result.peer, validator=validator, outbound=outbound,
                          address=address, config=config, stats=self.stats)
        if not self._register(conn):
            await self._refuse(stream, "duplicate")
            return True
        self.stats.counts["handshakes_ok"] += 1
        try:
            reason = await conn.run(self._deliver)
        finally:
            self._unregister(conn)
        self.stats.closed[reason] += 1
        return True

    def _admit_observer(self) -> None:
        if not self.config.accept_observers:
            raise PeerProtocolError("observer_refused")
        observers = sum(1 for conn in self._connections.values() if not conn.validator)
        if observers >= self.config.observers_max:
            raise PeerProtocolError("observers_full")

    async def _refuse(self, stream: trio.abc.Stream, reason: str) -> bool:
        self.stats.closed[reason] += 1
        await trio.aclose_forcefully(stream)
        return False

    def _register(self, conn: Connection) -> bool:
        old = self._connections.get(conn.peer_id)
        if old is not None:
            # Opposite directions (both dialled): keep the one the lower node id initiated, on both
            # ends alike. Same direction (a reconnect): the newest wins.
            if old.outbound != conn.outbound and self._initiator(old) < self._initiator(conn):
                return False
            old.close("replaced")
        self._connections[conn.peer_id] = conn
        self._notify()
        return True

    def _initiator(self, conn: Connection) -> bytes:
        return self.node_id if conn.outbound else conn.peer_id

    def _unregister(self, conn: Connection) -> None:
        if self._connections.get(conn.peer_id) is conn:
            del self._connections[conn.peer_id]
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- receiving -----------------------------------------------------------------------------
    async def _deliver(self, conn: Connection, message: Any) -> None:
        if self.faults.enabled and not self.faults.allows(conn.peer_id, self.node_id):
            self.stats.dropped["fault_injected"] += 1
            return
        inbound = Inbound(conn.peer_id, message)
        try:
            self._inbox_send.send_nowait(inbound)  # no yield per message: frames of one read go together
        except trio.WouldBlock:
            await self._inbox_send.send(inbound)  # the node is behind: backpressure reaches TCP

    # -- sending -------------------------------------------------------------------------------
    async def send(self, peer_id: bytes, message: Any) -> bool:
        """Send to one peer, waiting while its queue is full. False when not connected or dropped."""
        return await self.send_encoded(peer_id, encode(message))

    async def send_encoded(self, peer_id: bytes, payload: bytes) -> bool:
        delays = self._plan(peer_id)
        if delays == _NO_FAULT:
            conn = self._connections.get(peer_id)
            if conn is None:
                self.stats.dropped["not_connected"] += 1
                return False
            return await conn.send(payload)
        return self._send_planned(peer_id, payload, delays)

    def send_nowait(self, peer_id: bytes, message: Any) -> bool:
        """Send to one peer without waiting: a full queue drops the message (counted `queue_full`)."""
        return self.send_encoded_nowait(peer_id, encode(message))

    def send_encoded_nowait(self, peer_id: bytes, payload: bytes) -> bool:
        return self._send_planned(peer_id, payload, self._plan(peer_id))

    def broadcast(self, message: Any, *, include_observers: bool = False) -> int:
        """Queue `message` (encoded once) to every connected validator, or every peer; never to
        ourselves. Non-blocking: a full queue drops that copy. Returns how many were queued."""
        payload = encode(message)
        targets = [peer for peer, conn in self._connections.items() if include_observers or conn.validator]
        return sum(self.send_encoded_nowait(peer, payload) for peer in targets)

    def _plan(self, peer_id: bytes) -> tuple[float, ...]:
        if not self.faults.enabled:
            return _NO_FAULT
        delays = self.faults.plan(self.node_id, peer_id)
        if not delays:
            self.stats.dropped["fault_injected"] += 1
        return delays

    def _send_planned(self, peer_id: bytes, payload: bytes, delays: tuple[float, ...]) -> bool:
        sent = False
        for delay_s in delays:
            if delay_s <= 0:
                sent = self._release(peer_id, payload) or sent
            elif self._delays.push(delay_s, peer_id, payload):
                sent = True
            else:
                self.stats.dropped["delay_line_full"] += 1
        return sent

    def _release(self, peer_id: bytes, payload: bytes) -> bool:
        conn = self._connections.get(peer_id)
        if conn is None:
            self.stats.dropped["not_connected"] += 1
            return False
        return conn.send_nowait(payload)

    def _release_delayed(self, peer_id: bytes, payload: bytes) -> None:
        self._release(peer_id, payload)

    # -- looking -------------------------------------------------------------------------------
    def peers(self) -> dict[bytes, PeerInfo]:
        return {
            peer: PeerInfo(peer, conn.validator, conn.outbound, conn.address, conn.opened_at, conn.queued)
            for peer, conn in self._connections.items()
        }

    def is_connected(self, peer_id: bytes) -> bool:
        return peer_id in self._connections

    async def wait_connected(self, peer_ids: Iterable[bytes]) -> None:
        """Return once every one of peer_ids is connected (bound it with trio.fail_after)."""
        wanted = set(peer_ids)
        while not wanted <= self._connections.keys():
            await self._changed.wait()

    def disconnect(self, peer_id: bytes, reason: str = "local_close") -> None:
        conn = self._connections.get(peer_id)
        if conn is not None:
            conn.close(reason)
