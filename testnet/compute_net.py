"""Compute jobs across a testnet's nodes over the real transport (issue 9's demo).

The node has no compute-worker actor yet, so each validator gets a *worker process beside it*:
`python -m hedgerow.testnet.compute_net --home HOME ...` signs with that validator's key, listens
on its own port and keeps an authenticated, encrypted `net.Transport` channel to the coordinator.
The coordinator runs in the calling process: a sans-IO core (`NewtonCoordinator`,
`GcCoordinator`) whose Send actions become frames on that channel, whose timers are trio
deadlines, and whose Deliver actions are the job's outcome. Workers answer NewtonJob with
`compute.newton.serve` and gradient-coding messages with a `GcWorker` core; a worker started with
`--delay-s X` is a straggler (it holds every reply X seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from hedgerow.protocols.actions import Deliver, Send, SetTimer
from hedgerow.protocols.crypto import SigningKey

CHAIN_SUFFIX = "/compute"


@dataclass
class Cluster:
    """Worker processes beside the validators, and the coordinator's identity."""

    chain_id: str
    names: list[str]
    worker_ids: list[bytes]
    ports: list[int]
    coordinator_port: int
    key: SigningKey = field(default_factory=SigningKey.generate)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.procs.clear()


def start_workers(testnet: Any, *, stragglers: dict[str, float] | None = None) -> Cluster:
    """One worker process per validator of `testnet` (a launcher.Testnet), with its key."""
    from hedgerow.node.config import load_signing_key
    from hedgerow.testnet.launcher import free_ports

    names = [n for n, r in testnet.nodes.items() if r.role == "validator"]
    homes = [Path(testnet.nodes[n].home) for n in names]
    ids = [load_signing_key(h / "config" / "key.ed25519").node_id for h in homes]
    ports = free_ports(len(names) + 1)
    cluster = Cluster(testnet.chain_id + CHAIN_SUFFIX, names, ids, ports[1:], ports[0])
    for name, home, port in zip(names, homes, cluster.ports, strict=True):
        delay = (stragglers or {}).get(name, 0.0)
        log = open(home / "data" / "logs" / "compute-worker.log", "ab")  # noqa: SIM115 - the child owns it
        cluster.procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hedgerow.testnet.compute_net",
                    "--home",
                    str(home),
                    "--port",
                    str(port),
                    "--chain-id",
                    cluster.chain_id,
                    "--coordinator-port",
                    str(cluster.coordinator_port),
                    "--coordinator",
                    cluster.key.node_id.hex(),
                    "--workers",
                    ",".join(i.hex() for i in ids),
                    "--delay-s",
                    str(delay),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()
    return cluster


async def coordinate(
    cluster: Cluster,
    core: Any,
    done: Callable[[list[Any]], bool],
    *,
    first: Callable[[float], list[Any]],
    timeout_s: float = 120.0,
) -> list[Any]:
    """Run a coordinator core against the cluster's workers until `done(delivered)`."""
    from hedgerow.net import Transport, TransportConfig

    ids = cluster.worker_ids
    index_of = {node_id: i for i, node_id in enumerate(ids)}
    transport = Transport(
        cluster.key,
        chain_id=cluster.chain_id,
        validators=[*ids, cluster.key.node_id],
        config=TransportConfig(seed=None),
    )
    delivered: list[Any] = []
    timers: dict[Any, float] = {}

    def execute(actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Send):
                transport.send_nowait(ids[action.to], action.message)
            elif isinstance(action, SetTimer):
                timers[action.timer] = float(action.at)
            elif isinstance(action, Deliver):
                delivered.append(action.value)

    with trio.fail_after(timeout_s):
        async with trio.open_nursery() as nursery:
            await nursery.start(transport.run)
            await transport.listen("127.0.0.1", cluster.coordinator_port)
            transport.dial_peers(
                {node_id: ("127.0.0.1", port) for node_id, port in zip(ids, cluster.ports, strict=True)}
            )
            await transport.wait_connected(ids)
            execute(first(trio.current_time()))
            while not done(delivered):
                wake = min(timers.values(), default=trio.current_time() + 1.0)
                with trio.move_on_after(max(0.0, wake - trio.current_time())):
                    inbound = await transport.inbox.receive()
                    if inbound.peer in index_of:
                        execute(core.on_message(index_of[inbound.peer], inbound.message, trio.current_time()))
                    continue
                now = trio.current_time()
                for timer, at in list(timers.items()):
                    if at <= now:
                        del timers[timer]
                        execute(core.on_timer(timer, now))
            nursery.cancel_scope.cancel()
    return delivered


# -- the worker process -----------------------------------------------------------------------------


async def _worker(args: argparse.Namespace) -> None:
    from hedgerow.compute.gradcoding.worker import GcWorker
    from hedgerow.compute.newton.jobs import NewtonJob
    from hedgerow.net import Transport, TransportConfig
    from hedgerow.node.config import load_signing_key

    key = load_signing_key(Path(args.home) / "config" / "key.ed25519")
    workers = [bytes.fromhex(x) for x in args.workers.split(",")]
    coordinator = bytes.fromhex(args.coordinator)
    index = workers.index(key.node_id)
    gc = GcWorker(index)
    transport = Transport(
        key, chain_id=args.chain_id, validators=[*workers, coordinator], config=TransportConfig(seed=None)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.run)
        await transport.listen("127.0.0.1", args.port)
        transport.dial_peers({coordinator: ("127.0.0.1", args.coordinator_port)})  # the lower node id dials
        print(
            f"event=compute_worker index={index} node_id={key.node_id.hex()} port={args.port} "
            f"delay_s={args.delay_s}",
            flush=True,
        )
        async for inbound in transport.inbox:
            if inbound.peer != coordinator:
                continue
            message = inbound.message
            if isinstance(message, NewtonJob):
                from hedgerow.compute.newton import serve

                serve_job = partial(serve, message, worker=key.node_id, device="cpu", clock=time.perf_counter)
                replies: list[Any] = [await trio.to_thread.run_sync(serve_job)]
            else:
                replies = [
                    a.message
                    for a in gc.on_message(len(workers), message, trio.current_time())
                    if isinstance(a, Send)
                ]
            if replies and args.delay_s > 0:
                nursery.start_soon(_send_later, transport, coordinator, replies, args.delay_s)
            else:
                for reply in replies:
                    await transport.send(coordinator, reply)


async def _send_later(transport: Any, peer: bytes, replies: list[Any], delay_s: float) -> None:
    await trio.sleep(delay_s)  # this worker is the straggler: its replies arrive late by design
    for reply in replies:
        await transport.send(peer, reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hedgerow-compute-worker")
    parser.add_argument("--home", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chain-id", required=True)
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--coordinator-port", type=int, required=True)
    parser.add_argument("--workers", required=True)
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_worker, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
