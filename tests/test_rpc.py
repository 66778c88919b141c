"""The node RPC in process: key-authenticated sessions, concurrent requests, bad frames counted."""

from __future__ import annotations

import socket
import struct
from functools import partial
from typing import Any

import pytest
import trio

from hedgerow.node.rpc import FrameReader, RpcServer, auth_message, pack_frame, unpack_body
from hedgerow.node.rpc_client import AsyncRpcClient, RpcCallError
from hedgerow.protocols.crypto import SigningKey


async def _serve(nursery: trio.Nursery, server: RpcServer) -> int:
    port: int = await nursery.start(server.serve, "127.0.0.1", 0)
    return port


def _server(release: trio.Event, allowed: frozenset[bytes] | None = None) -> RpcServer:
    async def echo(params: dict[str, Any]) -> Any:
        return params

    async def slow(params: dict[str, Any]) -> Any:
        await release.wait()
        return "released"

    async def fail(params: dict[str, Any]) -> Any:
        raise ValueError("nope")

    async def overflow(params: dict[str, Any]) -> Any:
        return int(params["x"])  # x = inf: OverflowError, not a bad-parameter error

    handlers = {"echo": echo, "slow": slow, "fail": fail, "overflow": overflow}
    return RpcServer("chain", "node", handlers, allowed)


async def test_authenticated_pipelined_calls() -> None:
    release = trio.Event()
    server = _server(release)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            client = await AsyncRpcClient.connect("127.0.0.1", port, SigningKey.from_label("c"))
            nursery.start_soon(client.run_reader)
            results: list[Any] = []
            slow_answered = trio.Event()

            async def slow_call() -> None:
                results.append(await client.call("slow"))
                slow_answered.set()

            nursery.start_soon(slow_call)
            assert await client.call("echo", x=1, b=b"\x00") == {"x": 1, "b": b"\x00"}, \
                "a call answers while another waits"
            with pytest.raises(RpcCallError, match="nope"):
                await client.call("fail")
            with pytest.raises(RpcCallError, match="unknown method"):
                await client.call("missing")
            with pytest.raises(RpcCallError, match="OverflowError"):
                await client.call("overflow", x=float("inf"))
            assert server.rejected == {"handler_error": 1}
            release.set()
            await slow_answered.wait()
            assert results == ["released"]
            await client.aclose()
            nursery.cancel_scope.cancel()


async def test_unknown_key_refused_and_garbage_counted() -> None:
    allowed = frozenset({SigningKey.from_label("good").public.raw})
    server = _server(trio.Event(), allowed)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            with pytest.raises(RpcCallError, match="not allowed"):
                await AsyncRpcClient.connect("127.0.0.1", port, SigningKey.from_label("bad"))
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"\xff\xff\xff\xff garbage")
            while await stream.receive_some():  # the hello, then EOF: the server counts, then closes
                pass
            assert server.rejected.get("bad_frame", 0) + server.rejected.get("bad_auth", 0) == 1
            await stream.aclose()
            good = await AsyncRpcClient.connect("127.0.0.1", port, SigningKey.from_label("good"))
            nursery.start_soon(good.run_reader)
            assert await good.call("echo", ok=True) == {"ok": True}
            assert server.rejected["key_not_allowed"] == 1
            await good.aclose()
            nursery.cancel_scope.cancel()


async def _authenticated_raw_stream(port: int, key: SigningKey) -> tuple[trio.SocketStream, FrameReader]:
    """A session opened by hand (hello, signed challenge, ok), for sending what a client would not."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    reader = FrameReader(stream)
    hello = unpack_body(await reader.read() or b"")
    sig = key.sign_raw(auth_message(hello["chain_id"], hello["challenge"]))
    await stream.send_all(pack_frame({"key": key.public.raw, "sig": sig}))
    assert unpack_body(await reader.read() or b"") == {"ok": True}
    return stream, reader


async def test_bad_request_and_reset_client_close_only_their_session() -> None:
    """A request that is not a map, and a client that resets its connection while a reply is due:
    each ends that session (the first counted), and the server answers the next client."""
    release = trio.Event()
    server = _server(release)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, server)
            stream, reader = await _authenticated_raw_stream(port, SigningKey.from_label("odd"))
            await stream.send_all(pack_frame([1, 2, 3]))
            assert await reader.read() is None, "the server closes the session"
            assert server.rejected == {"bad_request": 1}
            stream, reader = await _authenticated_raw_stream(port, SigningKey.from_label("gone"))
            await stream.send_all(pack_frame({"id": 1, "method": "slow", "params": {}}))
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()  # a reset (RST), not a FIN
            release.set()  # the reply is written to a reset connection
            good = await AsyncRpcClient.connect("127.0.0.1", port, SigningKey.from_label("good"))
            nursery.start_soon(good.run_reader)
            assert await good.call("echo", ok=True) == {"ok": True}
            assert await good.call("slow") == "released"
            await good.aclose()
            nursery.cancel_scope.cancel()


async def test_call_after_the_node_closed_fails_at_once() -> None:
    """Once the reader saw the node close the connection, a new call raises (it would never be
    answered), so a syncing observer moves on to another peer instead of waiting forever."""
    async def node_that_leaves(stream: trio.SocketStream) -> None:
        reader = FrameReader(stream)
        await stream.send_all(pack_frame({"hello": "hedgerow-rpc/1", "chain_id": "chain", "node_id": "n",
                                          "challenge": b"\x00" * 32}))
        await reader.read()
        await stream.send_all(pack_frame({"ok": True}))
        await stream.aclose()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, node_that_leaves, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            client = await AsyncRpcClient.connect("127.0.0.1", port, SigningKey.from_label("c"))
            await client.run_reader()  # returns at the node's EOF
            with pytest.raises(RpcCallError, match="connection closed"):
                await client.call("echo")
            await client.aclose()
            nursery.cancel_scope.cancel()
