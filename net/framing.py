"""Length-prefixed framing: a sans-IO decoder and a small stream wrapper for trio."""

from __future__ import annotations

from collections import deque

import trio

from hedgerow.net.errors import PeerProtocolError

PREFIX_BYTES = 4


def frame(body: bytes) -> bytes:
    """The 4-byte big-endian length prefix followed by `body`."""
    return len(body).to_bytes(PREFIX_BYTES, "big") + body


class FrameDecoder:
    """Splits a byte stream into length-prefixed frames. No I/O, no clock.

    Raises PeerProtocolError(`frame_too_large`) as soon as a prefix announces more than the cap, so
    the buffer never holds more than one capped frame plus one read.
    """

    def __init__(self, *, frame_bytes_max: int) -> None:
        self._buffer = bytearray()
        self.frame_bytes_max = frame_bytes_max

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0
        end = len(buffer)
        while end - start >= PREFIX_BYTES:
            length = int.from_bytes(buffer[start : start + PREFIX_BYTES], "big")
            if length > self.frame_bytes_max:
                raise PeerProtocolError("frame_too_large", f"{length} B > cap {self.frame_bytes_max} B")
            if end - start < PREFIX_BYTES + length:
                break
            frames.append(bytes(buffer[start + PREFIX_BYTES : start + PREFIX_BYTES + length]))
            start += PREFIX_BYTES + length
        if start:
            del buffer[:start]
        return frames


class FramedStream:
    """A trio stream read as frames. End of stream inside a frame is `truncated`, at a boundary `eof`."""

    def __init__(self, stream: trio.abc.Stream, *, frame_bytes_max: int, receive_bytes: int = 65536) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(frame_bytes_max=frame_bytes_max)
        self.bytes_in = 0
        self._pending: deque[bytes] = deque()
        self._receive_bytes = receive_bytes

    async def receive_frames(self) -> list[bytes]:
        """At least one frame (all that are complete)."""
        while not self._pending:
            try:
                data = await self.stream.receive_some(self._receive_bytes)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                raise PeerProtocolError("broken", str(error)) from None
            if not data:
                raise PeerProtocolError("truncated" if self.decoder.buffered_bytes else "eof")
            self.bytes_in += len(data)
            self._pending.extend(self.decoder.receive_data(data))
        frames = list(self._pending)
        self._pending.clear()
        return frames

    async def receive_frame(self) -> bytes:
        """Exactly one frame (the rest stay pending)."""
        if not self._pending:
            self._pending.extend(await self.receive_frames())
        return self._pending.popleft()

    async def send_all(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise PeerProtocolError("broken", str(error)) from None
