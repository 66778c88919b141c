"""The node's local RPC: length-prefixed msgpack frames over TCP, client authenticated by its key.

Session: the server sends `{"hello": "hedgerow-rpc/1", "chain_id", "node_id", "challenge"}`; the
client answers `{"key": <32-byte Ed25519 public key>, "sig": sign_raw(RPC_DOMAIN + chain_id + "|" +
challenge)}`; a bad signature (or, when `allowed_keys` is set, a key not in it) closes the
connection. Then requests `{"id", "method", "params"}` are answered `{"id", "result"}` or
`{"id", "error"}`; requests on one connection run concurrently (a `submit --wait final` does not
block the next one), each response is written whole (the responses ready together in one write).

Every frame is capped (`FRAME_BYTES_MAX`); a malformed frame closes that connection and counts in
`rejected` by reason, and the server keeps serving others. A handler that fails answers its request
with the error; an unforeseen one (not a bad-parameter error) is also logged and counted as
`handler_error`: one request's failure never stops the node.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio

from hedgerow.protocols.crypto import VerifyKey

RPC_VERSION = "hedgerow-rpc/1"
RPC_DOMAIN = b"hedgerow/rpc/v1|"
FRAME_BYTES_MAX = 8 * 1024 * 1024
HANDSHAKE_TIMEOUT_S = 5.0

log = logging.getLogger("hedgerow.rpc")

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class RpcError(Exception):
    """An error to send back to the client as a one-line message."""


def auth_message(chain_id: str, challenge: bytes) -> bytes:
    return RPC_DOMAIN + chain_id.encode() + b"|" + challenge


def pack_frame(obj: Any) -> bytes:
    body: bytes = msgpack.packb(obj, use_bin_type=True)
    if len(body) > FRAME_BYTES_MAX:
        raise RpcError(f"response of {len(body)} B exceeds {FRAME_BYTES_MAX} B")
    return len(body).to_bytes(4, "big") + body


def unpack_body(body: bytes) -> Any:
    return msgpack.unpackb(body, raw=False, strict_map_key=False, max_ext_len=0,
                           max_bin_len=len(body), max_str_len=len(body), max_array_len=len(body),
                           max_map_len=len(body))


class FrameReader:
    """Reads length-prefixed frames from a trio stream (raises RpcError on a bad prefix)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def read(self) -> bytes | None:
        while True:
            if len(self._buffer) >= 4:
                length = int.from_bytes(self._buffer[:4], "big")
                if length > FRAME_BYTES_MAX or length == 0:
                    raise RpcError(f"bad frame length {length}")
                if len(self._buffer) >= 4 + length:
                    body = bytes(self._buffer[4:4 + length])
                    del self._buffer[:4 + length]
                    return body
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                if self._buffer:
                    raise RpcError("truncated frame")
                return None
            self._buffer += chunk


@dataclass
class RpcServer:
    chain_id: str
    node_id: str
    handlers: dict[str, Handler]
    allowed_keys: frozenset[bytes] | None = None
    rejected: dict[str, int] = field(default_factory=dict)
    connections: int = 0
    requests: int = 0

    def _count(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    async def serve(self, host: str, port: int, *,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port = int(listeners[0].socket.getsockname()[1])
        task_status.started(bound_port)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        # `except*`: a session's errors reach here inside the exception groups of its nurseries
        # (the reader's body and the writer task), and neither may escape to the listener.
        try:
            await self._session(stream)
        except* (RpcError, ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                 msgpack.StackError) as group:
            self._count(_reason(group))
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.connections -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _session(self, stream: trio.SocketStream) -> None:
        reader = FrameReader(stream)
        challenge = os.urandom(32)
        await stream.send_all(pack_frame({"hello": RPC_VERSION, "chain_id": self.chain_id,
                                          "node_id": self.node_id, "challenge": challenge}))
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S) as scope:
            body = await reader.read()
        if scope.cancelled_caught or body is None:
            raise RpcError("handshake_timeout")
        auth = unpack_body(body)
        if not isinstance(auth, dict) or not isinstance(auth.get("key"), bytes) \
                or not isinstance(auth.get("sig"), bytes) or len(auth["key"]) != 32:
            raise RpcError("bad_auth")
        if not VerifyKey(auth["key"]).verify_raw(auth["sig"], auth_message(self.chain_id, challenge)):
            await stream.send_all(pack_frame({"ok": False, "error": "bad signature"}))
            raise RpcError("bad_auth")
        if self.allowed_keys is not None and auth["key"] not in self.allowed_keys:
            await stream.send_all(pack_frame({"ok": False, "error": "key not allowed"}))
            raise RpcError("key_not_allowed")
        await stream.send_all(pack_frame({"ok": True}))
        outbox = _Outbox()
        async with trio.open_nursery() as writer:
            writer.start_soon(outbox.write_to, stream)
            try:
                async with trio.open_nursery() as nursery:
                    while True:
                        body = await reader.read()
                        if body is None:
                            break
                        request = unpack_body(body)
                        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                            raise RpcError("bad_request")
                        self.requests += 1
                        nursery.start_soon(self._answer, outbox, request)
            finally:
                outbox.close()  # the writer sends what the answers left, then ends

    async def _answer(self, outbox: _Outbox, request: dict[str, Any]) -> None:
        request_id = request.get("id")
        handler = self.handlers.get(request["method"])
        params = request.get("params") or {}
        reply: dict[str, Any]
        if handler is None:
            reply = {"id": request_id, "error": f"unknown method {request['method']!r}"}
        elif not isinstance(params, dict):
            reply = {"id": request_id, "error": "params must be a map"}
        else:
            try:
                reply = {"id": request_id, "result": await handler(params)}
            except Exception as error:  # noqa: BLE001 - a request fails alone, never the node
                if not isinstance(error, (RpcError, KeyError, ValueError, TypeError)):  # unforeseen
                    self._count("handler_error")
                    log.warning("event=rpc_handler_error method=%s error=%s: %s", request["method"],
                                type(error).__name__, error)
                reply = {"id": request_id, "error": f"{type(error).__name__}: {error}"}
        try:
            frame = pack_frame(reply)
        except RpcError as error:
            frame = pack_frame({"id": request_id, "error": str(error)})
        outbox.put(frame)


class _Outbox:
    """A session's replies, written by one task: the frames ready at a time leave in one write
    (under load many answers complete together, e.g. every waiter of a finalized block)."""

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._wake = trio.Event()
        self._closed = False

    def put(self, frame: bytes) -> None:
        self._frames.append(frame)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def write_to(self, stream: trio.SocketStream) -> None:
        while True:
            if not self._frames:
                if self._closed:
                    return
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            frames, self._frames = self._frames, []
            await stream.send_all(b"".join(frames))


def _reason(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup):  # the first error the session met
        error = error.exceptions[0]
    if isinstance(error, RpcError):
        text = str(error)
        return text if text.replace("_", "").isalpha() else "bad_frame"
    return "bad_msgpack"
