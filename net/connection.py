"""One authenticated connection: a reader task, a writer task, keepalive and idle timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from hedgerow.net.config import TransportConfig, TransportStats
from hedgerow.net.errors import PeerProtocolError
from hedgerow.net.framing import FramedStream
from hedgerow.net.messages import Auth, Hello, Ping
from hedgerow.net.secure import Session
from hedgerow.protocols.crypto import VerifyKey
from hedgerow.protocols.wire import DecodeError, decode, encode

Deliver = Callable[["Connection", Any], Awaitable[None]]


class Connection:
    """Frames queued with `send`/`send_nowait` (plaintext, already encoded) are sealed and written by
    the writer; frames read are opened, decoded and handed to `deliver`. `run` returns the reason the
    connection closed; the transport counts it."""

    def __init__(self, framed: FramedStream, session: Session, peer: VerifyKey, *, validator: bool,
                 outbound: bool, address: str, config: TransportConfig, stats: TransportStats) -> None:
        self.peer = peer
        self.peer_id = peer.node_id
        self.validator = validator
        self.outbound = outbound
        self.address = address
        self.opened_at = trio.current_time()
        self.close_reason: str | None = None
        self._framed = framed
        self._session = session
        self._config = config
        self._stats = stats
        self._queue_in, self._queue_out = trio.open_memory_channel[bytes](config.send_queue_max)
        self._scope = trio.CancelScope()
        self._pings = 0

    # -- sending -------------------------------------------------------------------------------
    async def send(self, payload: bytes) -> bool:
        """Queue one encoded message, waiting while the queue is full (backpressure). Does not yield
        to the scheduler when there is room, so a burst of sends reaches the writer as one batch."""
        try:
            self._queue_in.send_nowait(payload)
            await trio.lowlevel.checkpoint_if_cancelled()
            return True
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._stats.dropped["connection_closed"] += 1
            return False
        try:
            await self._queue_in.send(payload)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._stats.dropped["connection_closed"] += 1
            return False
        return True

    def send_nowait(self, payload: bytes) -> bool:
        """Queue one encoded message, or drop it (counted `queue_full`) when the queue is full."""
        try:
            self._queue_in.send_nowait(payload)
        except trio.WouldBlock:
            self._stats.dropped["queue_full"] += 1
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._stats.dropped["connection_closed"] += 1
            return False
        return True

    @property
    def queued(self) -> int:
        return self._queue_in.statistics().current_buffer_used

    def close(self, reason: str) -> None:
        """Stop this connection (from any task); the first reason recorded wins."""
        if self.close_reason is None:
            self.close_reason = reason
        self._scope.cancel()

    # -- running -------------------------------------------------------------------------------
    async def run(self, deliver: Deliver) -> str:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, self._read_loop, deliver)
                    nursery.start_soon(self._guard, self._write_loop)
        finally:
            self._queue_in.close()
            dropped = self._queue_out.statistics().current_buffer_used
            if dropped:
                self._stats.dropped["connection_closed"] += dropped
            self._queue_out.close()
            await trio.aclose_forcefully(self._framed.stream)
        return self.close_reason or "closed"

    async def _guard(self, loop: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await loop(*args)
        except PeerProtocolError as error:
            self.close(error.reason)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.close("broken")

    async def _read_loop(self, deliver: Deliver) -> None:
        frame_bytes_max = self._config.frame_bytes_max
        stats = self._stats.counts
        while True:
            with trio.move_on_after(self._config.idle_timeout_s) as idle:
                frames = await self._framed.receive_frames()
            if idle.cancelled_caught:
                raise PeerProtocolError("idle_timeout", f"nothing for {self._config.idle_timeout_s} s")
            stats["frames_in"] += len(frames)
            for body in frames:
                stats["bytes_in"] += len(body)
                try:
                    message = decode(self._session.open(body), frame_bytes_max=frame_bytes_max)
                except DecodeError as error:
                    raise PeerProtocolError("malformed", str(error)) from None
                if isinstance(message, Ping):
                    continue
                if isinstance(message, Hello | Auth):
                    raise PeerProtocolError("unexpected", f"{type(message).__name__} after handshake")
                await deliver(self, message)

    async def _write_loop(self) -> None:
        config = self._config
        stats = self._stats.counts
        seal = self._session.seal
        while True:
            batch: list[bytes] = []
            with trio.move_on_after(config.keepalive_interval_s):
                batch.append(seal(await self._queue_out.receive()))
            if batch:
                while len(batch) < config.write_batch_max:
                    try:
                        batch.append(seal(self._queue_out.receive_nowait()))
                    except trio.WouldBlock:
                        break
            else:
                self._pings += 1
                batch.append(seal(encode(Ping(self._pings))))
                stats["pings_out"] += 1
            data = b"".join(batch)
            with trio.move_on_after(config.write_timeout_s) as stuck:
                await self._framed.send_all(data)
            if stuck.cancelled_caught:
                raise PeerProtocolError("write_timeout", f"peer not reading for {config.write_timeout_s} s")
            stats["frames_out"] += len(batch)
            stats["bytes_out"] += len(data)
