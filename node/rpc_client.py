"""Clients of the node RPC (`node/rpc.py`): a blocking one for the CLI and tools, an async one
(trio, pipelined) for load generators and tests.

    client = RpcClient.connect("127.0.0.1", 26657, key)     # key: SigningKey of the caller
    client.call("status")
    client.call("submit", tx=tx_bytes, wait="final", timeout_s=30)

`submit(home, tx_bytes, wait)` and `query(home, path, args)` open a client from a node home
(its `config/node.toml` RPC address, signed with the home's key) for `hedgerow tx`.
"""

from __future__ import annotations

import itertools
import socket
from pathlib import Path
from typing import Any

import msgpack
import trio

from hedgerow.node.rpc import FRAME_BYTES_MAX, auth_message, pack_frame, unpack_body
from hedgerow.protocols.crypto import SigningKey


class RpcCallError(Exception):
    """The node answered with an error, or the connection failed."""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise RpcCallError("connection closed by the node")
        chunks += chunk
    return bytes(chunks)


def _recv_frame(sock: socket.socket) -> Any:
    length = int.from_bytes(_recv_exact(sock, 4), "big")
    if length == 0 or length > FRAME_BYTES_MAX:
        raise RpcCallError(f"bad frame length {length} from the node")
    return unpack_body(_recv_exact(sock, length))


class RpcClient:
    """Blocking RPC client (one request at a time)."""

    def __init__(self, sock: socket.socket, hello: dict[str, Any]) -> None:
        self.sock = sock
        self.hello = hello
        self._ids = itertools.count(1)

    @classmethod
    def connect(cls, host: str, port: int, key: SigningKey, timeout_s: float = 10.0,
                chain_id: str | None = None) -> RpcClient:
        """Authenticate with `key`; with `chain_id`, refuse a node of another chain."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as error:
            raise RpcCallError(f"cannot reach node RPC at {host}:{port}: {error}") from None
        try:
            hello = _recv_frame(sock)
            if not isinstance(hello, dict) or "challenge" not in hello:
                raise RpcCallError("not a hedgerow RPC endpoint")
            if chain_id is not None and hello.get("chain_id") != chain_id:
                raise RpcCallError(f"{host}:{port} serves chain {hello.get('chain_id')!r}, not {chain_id!r}")
            sig = key.sign_raw(auth_message(str(hello["chain_id"]), bytes(hello["challenge"])))
            sock.sendall(pack_frame({"key": key.public.raw, "sig": sig}))
            answer = _recv_frame(sock)
            if not isinstance(answer, dict) or not answer.get("ok"):
                raise RpcCallError(f"RPC authentication refused: {answer}")
        except (OSError, ValueError, msgpack.UnpackException) as error:
            sock.close()
            raise RpcCallError(f"RPC handshake with {host}:{port} failed: {error}") from None
        return cls(sock, hello)

    def call(self, method: str, timeout_s: float = 30.0, **params: Any) -> Any:
        request_id = next(self._ids)
        self.sock.settimeout(timeout_s + 5.0)
        try:
            self.sock.sendall(pack_frame({"id": request_id, "method": method, "params": params}))
            reply = _recv_frame(self.sock)
        except OSError as error:
            raise RpcCallError(f"RPC {method} failed: {error}") from None
        if not isinstance(reply, dict) or reply.get("id") != request_id:
            raise RpcCallError(f"unexpected RPC reply {reply!r}")
        if "error" in reply:
            raise RpcCallError(str(reply["error"]))
        return reply.get("result")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRpcClient:
    """Pipelined trio client: many calls in flight on one connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        from hedgerow.node.rpc import FrameReader

        self.stream = stream
        self.reader = FrameReader(stream)
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Any]] = {}
        self._lock = trio.Lock()
        self._reader_done = False  # the node closed the connection: no reply will come
        self.hello: dict[str, Any] = {}

    @classmethod
    async def connect(cls, host: str, port: int, key: SigningKey,
                      chain_id: str | None = None) -> AsyncRpcClient:
        stream = await trio.open_tcp_stream(host, port)
        client = cls(stream)
        hello = unpack_body(await client._read())
        if chain_id is not None and hello.get("chain_id") != chain_id:
            await stream.aclose()
            raise RpcCallError(f"{host}:{port} serves chain {hello.get('chain_id')!r}, not {chain_id!r}")
        sig = key.sign_raw(auth_message(str(hello["chain_id"]), bytes(hello["challenge"])))
        await stream.send_all(pack_frame({"key": key.public.raw, "sig": sig}))
        answer = unpack_body(await client._read())
        if not answer.get("ok"):
            raise RpcCallError(f"RPC authentication refused: {answer}")
        client.hello = hello
        return client

    async def _read(self) -> bytes:
        body = await self.reader.read()
        if body is None:
            raise RpcCallError("connection closed by the node")
        return body

    async def run_reader(self) -> None:
        """Dispatch replies to waiting calls; run it in a nursery next to the calls."""
        while True:
            try:
                body = await self.reader.read()
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                body = None
            if body is None:
                self._reader_done = True
                for channel in self._waiting.values():
                    channel.close()
                self._waiting.clear()
                return
            reply = unpack_body(body)
            channel = self._waiting.pop(reply.get("id"), None)  # type: ignore[arg-type]
            if channel is not None:
                channel.send_nowait(reply)

    async def call(self, method: str, **params: Any) -> Any:
        return await self.finish(await self.start(method, **params))

    async def start(self, method: str, **params: Any) -> trio.MemoryReceiveChannel[Any]:
        """Send a request now (requests leave in the order `start` is called); `finish` awaits its
        reply. Lets a caller keep per-sender order while many requests are in flight."""
        if self._reader_done:
            raise RpcCallError("connection closed by the node")
        request_id = next(self._ids)
        send, receive = trio.open_memory_channel[Any](1)
        self._waiting[request_id] = send
        async with self._lock:
            await self.stream.send_all(pack_frame({"id": request_id, "method": method, "params": params}))
        return receive

    async def finish(self, receive: trio.MemoryReceiveChannel[Any]) -> Any:
        try:
            reply = await receive.receive()
        except trio.EndOfChannel:
            raise RpcCallError("connection closed by the node") from None
        if "error" in reply:
            raise RpcCallError(str(reply["error"]))
        return reply.get("result")

    async def aclose(self) -> None:
        await self.stream.aclose()


# -- helpers used by the CLI (`hedgerow tx`, `status`, `peers`) ----------------------------------------


def client_for_home(home: Path | str, timeout_s: float = 10.0) -> RpcClient:
    from hedgerow.node.config import load_node_config

    config = load_node_config(Path(home))
    return RpcClient.connect(config.rpc_host, config.rpc_port, config.signing_key(), timeout_s)


def submit(home: Path | str, tx_bytes: bytes, wait: str | None = None,
           timeout_s: float = 60.0) -> dict[str, Any]:
    """Submit a raw tx to the node at `home`; `wait` in (None, "speculative", "final")."""
    with client_for_home(home) as client:
        result: dict[str, Any] = client.call("submit", timeout_s=timeout_s, tx=tx_bytes,
                                             wait=wait or "none", wait_timeout_s=timeout_s)
        return result


def query(home: Path | str, path: str, args: dict[str, Any] | None = None) -> Any:
    with client_for_home(home) as client:
        return client.call("query", path=path, args=args or {})
