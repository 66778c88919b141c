"""Transport benchmark: loopback throughput through the real handshake, handshakes/s, codec and Ed25519.

    python bench/transport.py [--quick] [--json FILE]

Prints one table and (with --json) writes the same figures as JSON. Ratios compare against baselines
measured in the same run (plain TCP with the same framing; raw msgpack), since absolute figures drift
on shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import trio

from hedgerow.net import Transport, TransportConfig
from hedgerow.net.framing import FramedStream, frame
from hedgerow.net.handshake import HANDSHAKE_FRAME_BYTES_MAX, run_handshake
from hedgerow.net.messages import Note
from hedgerow.protocols.crypto import SigningKey, verify_batch
from hedgerow.protocols.wire import decode, encode, message

CHAIN = "bench"


@message(65000)
@dataclass(frozen=True, slots=True)
class BenchVote:
    """Vote-sized: what a MonadBFT vote carries."""

    epoch: int
    round: int
    block_hash: bytes
    voter: bytes
    signature: bytes


def nodes(config: TransportConfig) -> tuple[Transport, Transport]:
    keys = [SigningKey.from_label(f"bench-{i}") for i in range(2)]
    ids = [key.node_id for key in keys]
    first, second = (Transport(key, chain_id=CHAIN, validators=ids, config=config) for key in keys)
    return first, second


async def transport_throughput(body_bytes: int, frames: int) -> dict[str, float]:
    """Frames of `body_bytes` payload from one node to another over loopback TCP, encrypted."""
    config = TransportConfig(send_queue_max=4096, inbox_max=8192,
                             frame_bytes_max=max(1 << 20, 2 * body_bytes), seed=0)
    sender, receiver = nodes(config)
    body = os.urandom(body_bytes)
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        await nursery.start(receiver.run)
        host, port = await receiver.listen("127.0.0.1", 0)
        sender.dial(receiver.node_id, host, port)
        await sender.wait_connected([receiver.node_id])
        payload = encode(Note(0, body, b""))
        done = trio.Event()

        async def consume() -> None:
            received = 0
            while received < frames:  # one wait, then drain what is there: no yield per message
                await receiver.inbox.receive()
                received += 1
                while received < frames:
                    try:
                        receiver.inbox.receive_nowait()
                    except trio.WouldBlock:
                        break
                    received += 1
            done.set()

        nursery.start_soon(consume)
        start = time.perf_counter()
        for _ in range(frames):
            await sender.send_encoded(receiver.node_id, payload)
        await done.wait()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return {"frames_per_s": frames / elapsed, "mb_per_s": frames * body_bytes / elapsed / 1e6}


async def raw_tcp_throughput(body_bytes: int, frames: int) -> dict[str, float]:
    """Baseline: the same length-prefixed frames over plain loopback TCP (no crypto, no msgpack)."""
    data = frame(os.urandom(body_bytes + 8))
    batch = 64
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        done = trio.Event()

        async def serve(stream: trio.SocketStream) -> None:
            framed = FramedStream(stream, frame_bytes_max=body_bytes + 64)
            received = 0
            while received < frames:
                received += len(await framed.receive_frames())
            done.set()

        nursery.start_soon(trio.serve_listeners, serve, listeners)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        start = time.perf_counter()
        sent = 0
        while sent < frames:
            count = min(batch, frames - sent)
            await client.send_all(data * count)
            sent += count
        await done.wait()
        elapsed = time.perf_counter() - start
        await client.aclose()
        nursery.cancel_scope.cancel()
    return {"frames_per_s": frames / elapsed, "mb_per_s": frames * body_bytes / elapsed / 1e6}


async def handshakes(count: int) -> float:
    """Full handshakes per second: TCP connect + authenticated handshake, against a real listener."""
    server, _ = nodes(TransportConfig(seed=0))
    client_key = SigningKey.from_label("bench-client")  # an observer: accepted, then hangs up
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        host, port = await server.listen("127.0.0.1", 0)
        start = time.perf_counter()
        for _ in range(count):
            stream = await trio.open_tcp_stream(host, port)
            framed = FramedStream(stream, frame_bytes_max=HANDSHAKE_FRAME_BYTES_MAX)
            await run_handshake(framed, client_key, CHAIN, initiator=True, expected_peer=server.node_id)
            await stream.aclose()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return count / elapsed


def rate(fn: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return count / (time.perf_counter() - start)


def codec_rates(count: int) -> dict[str, float]:
    key = SigningKey.from_label("voter")
    vote = BenchVote(3, 1234, os.urandom(32), key.node_id, key.sign("vote", CHAIN, [3, 1234]))
    data = encode(vote)
    raw = [65000, vote.epoch, vote.round, vote.block_hash, vote.voter, vote.signature]
    return {
        "vote_bytes": len(data),
        "typed": rate(lambda: decode(encode(vote)), count),
        "raw": rate(lambda: msgpack.unpackb(msgpack.packb(raw)), count),
    }


def ed25519_rates(count: int) -> dict[str, float]:
    key = SigningKey.from_label("signer")
    message_bytes = os.urandom(120)
    signature = key.sign_raw(message_bytes)
    items = [(key.public, message_bytes, signature)] * count
    start = time.perf_counter()
    verify_batch(items)
    batch = count / (time.perf_counter() - start)
    return {
        "sign": rate(lambda: key.sign_raw(message_bytes), count),
        "verify": rate(lambda: key.public.verify_raw(signature, message_bytes), count),
        "verify_batch": batch,
    }


async def run_all(quick: bool) -> dict[str, Any]:
    small, large = (20_000, 400) if quick else (200_000, 4_000)
    results: dict[str, Any] = {}
    for name, size, frames in (("200B", 200, small), ("64KiB", 64 * 1024, large)):
        ours = await transport_throughput(size, frames)
        base = await raw_tcp_throughput(size, frames)
        results[f"frames_{name}"] = {**ours, "raw_tcp_frames_per_s": base["frames_per_s"],
                                     "raw_tcp_mb_per_s": base["mb_per_s"],
                                     "ratio_vs_raw_tcp": ours["frames_per_s"] / base["frames_per_s"]}
    results["handshakes_per_s"] = await handshakes(100 if quick else 500)
    codec = codec_rates(50_000 if quick else 300_000)
    results["codec"] = {"vote_bytes": codec["vote_bytes"], "encode_decode_per_s": codec["typed"],
                        "raw_msgpack_per_s": codec["raw"], "ratio_vs_raw": codec["typed"] / codec["raw"]}
    results["ed25519"] = ed25519_rates(2_000 if quick else 20_000)
    return results


def render(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="hedgerow transport benchmark (loopback, one process per side's tasks)")
    for column in ("measure", "value", "baseline / ratio"):
        table.add_column(column)
    for name in ("200B", "64KiB"):
        row = results[f"frames_{name}"]
        table.add_row(f"{name} frames, encrypted", f"{row['frames_per_s']:,.0f} frames/s, "
                      f"{row['mb_per_s']:,.1f} MB/s", f"raw TCP {row['raw_tcp_frames_per_s']:,.0f} frames/s "
                      f"({row['raw_tcp_mb_per_s']:,.1f} MB/s); ratio {row['ratio_vs_raw_tcp']:.2f}")
    table.add_row("handshakes (TCP + X25519/Ed25519)", f"{results['handshakes_per_s']:,.0f} /s", "")
    codec = results["codec"]
    table.add_row(f"vote codec encode+decode ({codec['vote_bytes']} B)",
                  f"{codec['encode_decode_per_s']:,.0f} /s",
                  f"raw msgpack {codec['raw_msgpack_per_s']:,.0f} /s; ratio {codec['ratio_vs_raw']:.2f}")
    ed = results["ed25519"]
    table.add_row("Ed25519 sign", f"{ed['sign']:,.0f} /s", "")
    table.add_row("Ed25519 verify", f"{ed['verify']:,.0f} /s", f"verify_batch {ed['verify_batch']:,.0f} /s")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts: under a minute")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    results = trio.run(run_all, args.quick)
    results["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(),
                          "cpus": os.cpu_count(), "quick": args.quick}
    render(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
