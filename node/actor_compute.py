"""The node's `compute worker` actor (DESIGN.md, Processes and actors; Compute), and the router that
hands it (and the `rounds` actor) their messages.

`install(node, supervisor)` is called by `Node.run` once the consensus layer (and with it the
transport) exists. It puts a `router` actor between the transport's inbox and the consensus
side: frames whose wire tag is in 90-119 (Newton jobs 90-99, gradient coding 100-119) go to the
compute worker, 50-69 (Heard-Of) to the rounds actor (`node/actor_rounds.py`), everything else on
to consensus unchanged. Observers have no transport and run neither actor.

The compute worker serves any authenticated peer (validators and observers alike: a job
coordinator is usually the CLI connected as an observer, `node/job_client.py`):
- `compute-newton`: one `NewtonJob` at a time through the pure worker function
  `hedgerow.compute.newton.serve`, in a worker thread (`trio.to_thread`), on CUDA when
  `torch.cuda.is_available()`; the `NewtonReply`/`NewtonReject` goes back to the sender. torch is
  imported only after an RPC `compute_prepare` (seconds per process, so nodes start light); before
  that a NewtonJob frame does not decode and the transport closes that connection.
- `compute-gc`: the `GcWorker` sans-IO core, one per job id (the last `GC_JOBS_MAX` kept), as
  worker index = this validator's genesis index; its gradients run in a worker thread and its
  `Send`s go back to the coordinator peer. EF memory is soft state: `memory_epoch` is a counter in
  `data/compute_epoch`, one higher at every start of the process.
Bad input never crashes the node: it is counted (RPC `compute_status`) and dropped. Both actors,
the router and the RPC methods exist on validators only (observers have no transport).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import Counter, OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from hedgerow.net.transport import Inbound, Transport
from hedgerow.node.runtime import Mailbox, Supervisor
from hedgerow.protocols import wire
from hedgerow.protocols.actions import Send

if TYPE_CHECKING:
    from hedgerow.node.node import Node

log = logging.getLogger("hedgerow.compute")

COMPUTE_TAGS = range(90, 120)
ROUNDS_TAGS = range(50, 70)
NEWTON_TAGS = range(90, 100)
GC_JOBS_MAX = 8
ROUTER_BATCH = 512
EPOCH_FILE = "compute_epoch"


def bump_epoch(node: Node) -> int:
    """The process incarnation counter (GcWorker memory_epoch), persisted in the home's data dir."""
    path = node.config.data_dir / EPOCH_FILE
    try:
        epoch = int(path.read_text().strip()) + 1
    except (OSError, ValueError):
        epoch = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{epoch}\n")
    tmp.replace(path)
    return epoch


class ComputeWorker:
    """Serves Newton jobs and gradient-coding requests of any authenticated peer."""

    def __init__(self, node: Node, transport: Transport) -> None:
        self.node = node
        self.transport = transport
        self.newton_inbox: Mailbox[Inbound] = Mailbox("compute-newton", 16)
        self.gc_inbox: Mailbox[Inbound] = Mailbox("compute-gc", 1024)
        self.counters: Counter[str] = Counter()
        self.gc_workers: OrderedDict[bytes, Any] = OrderedDict()
        self.epoch = bump_epoch(node)
        self.busy_with: str | None = None
        self.device: str | None = None
        self.newton_wanted = trio.Event()
        self.newton_ready = trio.Event()

    def route(self, inbound: Inbound) -> None:
        """Called by the router without waiting: a full inbox drops the message (counted)."""
        tag = wire.tag_of(type(inbound.message))
        box = self.newton_inbox if tag in NEWTON_TAGS else self.gc_inbox
        if not box.try_send(inbound):
            self.counters[f"{box.name}_full"] += 1

    # -- Newton ---------------------------------------------------------------------------------

    async def newton_actor(self) -> None:
        # torch is heavy (seconds of import per process): the Newton messages (which need it) are
        # registered with the wire codec only once a client asks (RPC `compute_prepare`). Until
        # then a NewtonJob frame does not decode and the transport drops that connection.
        await self.newton_wanted.wait()
        await trio.to_thread.run_sync(importlib.import_module, "hedgerow.compute.newton.jobs")
        self.newton_ready.set()
        while True:
            inbound = await self.newton_inbox.receive()
            from hedgerow.compute.newton.jobs import NewtonJob, default_device, serve

            job = inbound.message
            if not isinstance(job, NewtonJob):
                self.counters["newton_unexpected"] += 1
                continue
            self.device = self.device or default_device()
            self.busy_with = job.job_id.hex()
            self.counters["newton_jobs"] += 1
            try:
                reply = await trio.to_thread.run_sync(
                    partial(serve, job, worker=self.node.key.node_id, device=self.device,
                            clock=time.perf_counter), abandon_on_cancel=True)
            except Exception as error:  # noqa: BLE001 - a job that breaks the solver is the job's fault
                self.counters["newton_errors"] += 1
                log.warning("event=newton_error job=%s error=%r", job.job_id.hex(), error)
                continue
            finally:
                self.busy_with = None
            self.counters[f"newton_{type(reply).__name__}"] += 1
            if not await self.transport.send(inbound.peer, reply):
                self.counters["newton_reply_undelivered"] += 1

    # -- gradient coding ------------------------------------------------------------------------

    def _gc_worker(self, message: Any) -> Any:
        from hedgerow.compute.gradcoding.messages import GcJobSpec, GradRequest
        from hedgerow.compute.gradcoding.worker import GcWorker

        job_id = getattr(message, "job_id", None)
        worker = self.gc_workers.get(job_id) if isinstance(job_id, bytes) else None
        if worker is not None and isinstance(job_id, bytes):
            self.gc_workers.move_to_end(job_id)
            return worker
        if not isinstance(message, GcJobSpec | GradRequest):
            return None
        index = self.node.index
        if index is None or (isinstance(message, GcJobSpec) and index >= message.n):
            self.counters["gc_not_a_worker"] += 1
            return None
        worker = GcWorker(index, memory_epoch=self.epoch)
        if isinstance(message, GcJobSpec):  # an unknown job's request gets NeedJob, and is not kept
            self.gc_workers[message.job_id] = worker
            while len(self.gc_workers) > GC_JOBS_MAX:
                self.gc_workers.popitem(last=False)
        return worker

    async def gc_actor(self) -> None:
        while True:
            inbound = await self.gc_inbox.receive()
            message = inbound.message
            worker = self._gc_worker(message)
            if worker is None:
                self.counters["gc_dropped"] += 1
                continue
            try:
                actions = await trio.to_thread.run_sync(worker.on_message, 0, message, time.monotonic(),
                                                        abandon_on_cancel=True)
            except Exception as error:  # noqa: BLE001 - a bad job spec must not stop the node
                self.counters["gc_errors"] += 1
                self.gc_workers.pop(getattr(message, "job_id", b""), None)
                log.warning("event=gc_error error=%r", error)
                continue
            self.counters[f"gc_{type(message).__name__}"] += 1
            for action in actions:
                if isinstance(action, Send) and not self.transport.send_nowait(inbound.peer, action.message):
                    self.counters["gc_reply_undelivered"] += 1

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"counters": dict(self.counters), "epoch": self.epoch, "busy_with": self.busy_with,
                "newton_ready": self.newton_ready.is_set(),
                "device": self.device, "gc_jobs": [job_id.hex() for job_id in self.gc_workers],
                "newton_queued": self.newton_inbox.pending(), "gc_queued": self.gc_inbox.pending()}


def install(node: Node, supervisor: Supervisor) -> None:
    """Start the compute worker, the rounds actor and the router (validators with a transport)."""
    transport = getattr(node.consensus, "transport", None)
    if not isinstance(transport, Transport):
        return
    import hedgerow.compute.gradcoding.messages
    import hedgerow.protocols.heardof.messages  # noqa: F401 - registers their wire messages
    from hedgerow.node.actor_rounds import RoundsActor

    compute = ComputeWorker(node, transport)
    rounds = RoundsActor(node, transport)
    upstream = transport.inbox
    forward_send, forward_receive = trio.open_memory_channel[Inbound](transport.config.inbox_max)
    transport.inbox = forward_receive  # consensus reads what the router forwards

    async def router() -> None:
        # Everything already waiting is handled without yielding per message (the transport hands
        # over all frames of one read at once; consensus throughput depends on not slowing that).
        async with forward_send:
            async for first in upstream:
                batch = [first]
                while len(batch) < ROUTER_BATCH:
                    try:
                        batch.append(upstream.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                for inbound in batch:
                    tag = wire.tag_of(type(inbound.message)) if wire.is_message(inbound.message) else -1
                    if tag in COMPUTE_TAGS:
                        compute.route(inbound)
                    elif tag in ROUNDS_TAGS:
                        rounds.route(inbound)
                    else:
                        try:
                            forward_send.send_nowait(inbound)
                        except trio.WouldBlock:
                            await forward_send.send(inbound)  # consensus is behind: backpressure

    async def compute_status(params: dict[str, Any]) -> Any:
        return compute.status()

    async def compute_prepare(params: dict[str, Any]) -> Any:
        """Load the Newton job support (torch); returns once ready or after `wait_s`."""
        compute.newton_wanted.set()
        with trio.move_on_after(float(params.get("wait_s", 60.0))):
            await compute.newton_ready.wait()
        return compute.status()

    supervisor.add("router", router)
    supervisor.add("compute-newton", compute.newton_actor)
    supervisor.add("compute-gc", compute.gc_actor)
    supervisor.add("rounds", rounds.run)
    node.compute_worker = compute  # type: ignore[attr-defined]
    node.rounds_actor = rounds  # type: ignore[attr-defined]
    if node.rpc_server is not None:
        node.rpc_server.handlers["compute_status"] = compute_status
        node.rpc_server.handlers["compute_prepare"] = compute_prepare
        node.rpc_server.handlers.update(rounds.rpc_handlers())
