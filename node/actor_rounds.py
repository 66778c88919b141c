"""The node's `rounds` actor: Heard-Of instances over the real network (AMP_f -> HO_f, spec
`heardof.md` 5.4), one `RoundMachine` per instance, this validator being process p = its genesis
index and n = the validator count.

- Instances start by RPC `rounds_start {instance, algorithm, inputs, f, mode, ...}` (the CLI
  `hedgerow rounds --dir TESTNET` calls it on every node) and are read by `rounds_status`.
- The machine's actions run in order; `Persist(HoRecord)` is an fsynced SQLite commit
  (`data/rounds.sqlite`, WAL, synchronous=FULL) before any later Send/Broadcast leaves.
- Peer messages (wire tags 50-69, routed by `node/actor_compute.py`) reach `on_message` only from
  authenticated validators (their genesis index); messages of an instance not started here yet wait
  in a bounded buffer. Timers `("ho", instance, round, kind)` fire `on_timer`.
- On a restart every stored instance is rebuilt and `resume`d from its last record (after waiting up
  to RESUME_WAIT_S for the peers to reconnect), so it resends byte-identical messages of the round
  it was in and never re-enters a lower round.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import trio

from hedgerow.net.transport import Inbound, Transport
from hedgerow.node.runtime import Mailbox
from hedgerow.protocols.actions import Broadcast, Deliver, Evidence, Persist, Send, SetTimer
from hedgerow.protocols.wire import decode, encode

if TYPE_CHECKING:
    from hedgerow.node.node import Node

log = logging.getLogger("hedgerow.rounds")

PENDING_INSTANCES_MAX = 64
RESUME_WAIT_S = 5.0
PENDING_PER_INSTANCE_MAX = 512
ALGORITHMS = ("otr", "uv", "lv", "floodmin", "approx")


class RoundsStore:
    """instance -> (spec, last HoRecord), fsynced on every write (synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS instances (instance INTEGER PRIMARY KEY,"
                        " spec BLOB NOT NULL, record BLOB)")
        self.writes = 0

    def put_spec(self, instance: int, spec: bytes) -> None:
        self.db.execute("INSERT OR IGNORE INTO instances (instance, spec) VALUES (?, ?)", (instance, spec))
        self.writes += 1

    def put_record(self, instance: int, record: bytes) -> None:
        self.db.execute("UPDATE instances SET record = ? WHERE instance = ?", (record, instance))
        self.writes += 1

    def load(self) -> list[tuple[int, bytes, bytes | None]]:
        rows = self.db.execute("SELECT instance, spec, record FROM instances ORDER BY instance").fetchall()
        return [(int(i), bytes(s), None if r is None else bytes(r)) for i, s, r in rows]

    def close(self) -> None:
        self.db.close()


@dataclass
class Instance:
    machine: Any
    spec: dict[str, Any]
    resumed: bool
    started_at: float
    decided_at: float | None = None
    decision: Any = None
    delivered: bool = False
    persists: int = 0


@dataclass
class RoundsActor:
    node: Node
    transport: Transport
    inbox: Mailbox[tuple[str, Any, Any]] = field(default_factory=lambda: Mailbox("rounds", 8192))
    instances: dict[int, Instance] = field(default_factory=dict)
    pending: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)
    timers: dict[Hashable, float] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    store: RoundsStore | None = None

    def __post_init__(self) -> None:
        self._timers_changed = trio.Event()
        self.node_ids: list[bytes] = list(getattr(self.node.consensus, "node_ids", []))
        self.index_of = {node_id: i for i, node_id in enumerate(self.node_ids)}
        self.limiter = trio.CapacityLimiter(1)

    # -- inputs ---------------------------------------------------------------------------------

    def route(self, inbound: Inbound) -> None:
        index = self.index_of.get(inbound.peer)
        if index is None:
            self.counters["not_validator"] += 1
            return
        if not self.inbox.try_send(("msg", index, inbound.message)):
            self.counters["inbox_full"] += 1

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- the actor ------------------------------------------------------------------------------

    async def run(self) -> None:
        store = RoundsStore(self.node.config.data_dir / "rounds.sqlite")
        self.store = store
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer_loop)
                stored = await self._db(store.load)
                if stored:  # a restart: let the peers reconnect first, so resent messages are not lost
                    others = [i for i in self.node_ids if i != self.node.key.node_id]
                    with trio.move_on_after(RESUME_WAIT_S):
                        await self.transport.wait_connected(others)
                for instance, spec_bytes, record_bytes in stored:
                    await self._restore(instance, spec_bytes, record_bytes)
                while True:
                    kind, a, b = await self.inbox.receive()
                    if kind == "msg":
                        await self._on_message(a, b)
                    elif kind == "timer":
                        inst = self.instances.get(a[1])
                        if inst is not None:
                            await self._execute(inst, inst.machine.on_timer(a, trio.current_time()))
                    elif kind == "start":
                        b.send_nowait(await self._start(a))
        finally:
            with trio.CancelScope(shield=True):
                await self._db(store.close)

    async def _timer_loop(self) -> None:
        while True:
            changed = self._timers_changed
            if not self.timers:
                await changed.wait()
                continue
            timer, at = min(self.timers.items(), key=lambda item: item[1])
            if at > trio.current_time():
                with trio.move_on_at(at):
                    await changed.wait()
                continue
            if self.timers.get(timer) == at:
                del self.timers[timer]
                await self.inbox.send(("timer", timer, at))

    def _build(self, instance: int, spec: dict[str, Any]) -> Any:
        from hedgerow.protocols.heardof.algorithms import make_algorithm
        from hedgerow.protocols.heardof.machine import MachineConfig, RoundMachine

        n = len(self.node_ids)
        index = self.node.index
        if index is None:
            raise ValueError("only validators run Heard-Of instances")
        inputs = list(spec["inputs"])
        if len(inputs) != n:
            raise ValueError(f"{len(inputs)} inputs for {n} validators")
        algorithm = make_algorithm(str(spec["algorithm"]), n)
        config = MachineConfig(n=n, f=int(spec["f"]), mode=str(spec["mode"]),
                               amp_grace_s=float(spec.get("amp_grace_s", 0.0)),
                               timeout_s=float(spec.get("timeout_s", 0.05)),
                               catchup_k=int(spec.get("catchup_k", 1)),
                               linger_rounds=int(spec.get("linger_rounds", 2)), chain_id=self.node.chain_id)
        return RoundMachine(algorithm, index, inputs[index], instance=instance, config=config)

    async def _restore(self, instance: int, spec_bytes: bytes, record_bytes: bytes | None) -> None:
        from hedgerow.protocols.heardof.algorithms import NONE
        from hedgerow.protocols.heardof.messages import HoRecord

        spec = msgpack.unpackb(spec_bytes, raw=False)
        machine = self._build(instance, spec)
        inst = Instance(machine, spec, resumed=record_bytes is not None, started_at=trio.current_time())
        self.instances[instance] = inst
        now = trio.current_time()
        if record_bytes is None:
            actions = machine.start(now)
        else:
            actions = machine.resume(decode(record_bytes, expected=HoRecord), now)
            self.counters["resumed"] += 1
            if machine.decision is not NONE:  # decided before the restart: the record holds it
                inst.decision, inst.delivered, inst.decided_at = machine.decision, True, now
            log.warning("event=rounds_resumed instance=%d round=%d", instance, machine.round)
        await self._execute(inst, actions)
        await self._drain_pending(instance, inst)

    async def _start(self, spec: dict[str, Any]) -> str | None:
        instance = int(spec["instance"])
        existing = self.instances.get(instance)
        if existing is not None:
            return None if existing.spec == spec else f"instance {instance} already runs another spec"
        try:
            machine = self._build(instance, spec)
        except ValueError as error:
            return str(error)
        assert self.store is not None
        await self._db(self.store.put_spec, instance, msgpack.packb(spec, use_bin_type=True))
        inst = Instance(machine, spec, resumed=False, started_at=trio.current_time())
        self.instances[instance] = inst
        await self._execute(inst, machine.start(trio.current_time()))
        await self._drain_pending(instance, inst)
        return None

    async def _drain_pending(self, instance: int, inst: Instance) -> None:
        for sender, message in self.pending.pop(instance, []):
            await self._execute(inst, inst.machine.on_message(sender, message, trio.current_time()))

    async def _on_message(self, sender: int, message: Any) -> None:
        instance = getattr(message, "instance", None)
        if not isinstance(instance, int):
            self.counters["unexpected_type"] += 1  # Envelope/FloodPayload travel inside payloads only
            return
        inst = self.instances.get(instance)
        if inst is None:
            if instance not in self.pending and len(self.pending) >= PENDING_INSTANCES_MAX:
                self.pending.pop(next(iter(self.pending)))
                self.counters["pending_evicted"] += 1
            queue = self.pending.setdefault(instance, [])
            if len(queue) < PENDING_PER_INSTANCE_MAX:
                queue.append((sender, message))
            else:
                self.counters["pending_full"] += 1
            return
        await self._execute(inst, inst.machine.on_message(sender, message, trio.current_time()))

    async def _execute(self, inst: Instance, actions: list[Any]) -> None:
        """In order; a Persist is fsynced before any later Send/Broadcast of the same list leaves."""
        store = self.store
        assert store is not None
        for action in actions:
            if isinstance(action, Persist):
                record = action.record
                await self._db(store.put_record, record.instance, encode(record))
                inst.persists += 1
            elif isinstance(action, Send):
                if action.to != self.node.index and 0 <= action.to < len(self.node_ids):
                    self.transport.send_nowait(self.node_ids[action.to], action.message)
            elif isinstance(action, Broadcast):
                self.transport.broadcast(action.message)
            elif isinstance(action, SetTimer):
                self.timers[action.timer] = float(action.at)
                self._timers_changed.set()
                self._timers_changed = trio.Event()
            elif isinstance(action, Deliver):
                _, value = action.value
                inst.decision, inst.delivered = value, True
                inst.decided_at = trio.current_time()
            elif isinstance(action, Evidence):
                self.counters["evidence"] += 1
                log.warning("event=ho_evidence proof=%r", action.proof)

    # -- RPC ------------------------------------------------------------------------------------

    def instance_status(self, instance: int) -> dict[str, Any] | None:
        inst = self.instances.get(instance)
        if inst is None:
            return None
        m = inst.machine
        latency = None if inst.decided_at is None else round((inst.decided_at - inst.started_at) * 1000, 3)
        return {
            "instance": instance, "p": m.p, "n": m.cfg.n, "f": m.cfg.f, "mode": m.cfg.mode,
            "algorithm": inst.spec["algorithm"], "round": m.round, "decided": inst.delivered,
            "decision": jsonable(inst.decision), "halted": m.halted,
            "error": None if m.error is None else str(m.error), "resumed": inst.resumed,
            "latency_ms": latency, "heard": len(m.mailbox), "trace": [sorted(h) for h in m.trace],
            "counters": dict(m.counters), "persists": inst.persists,
        }

    def rpc_handlers(self) -> dict[str, Any]:
        async def rounds_start(params: dict[str, Any]) -> Any:
            spec = start_spec(params)
            reply_send, reply_receive = trio.open_memory_channel[str | None](1)
            await self.inbox.send(("start", spec, reply_send))
            error = await reply_receive.receive()
            if error is not None:
                raise ValueError(error)
            return self.instance_status(spec["instance"])

        async def rounds_status(params: dict[str, Any]) -> Any:
            if "instance" in params:
                return self.instance_status(int(params["instance"]))
            return {"instances": sorted(self.instances), "counters": dict(self.counters),
                    "pending": {str(k): len(v) for k, v in self.pending.items()}}

        return {"rounds_start": rounds_start, "rounds_status": rounds_status}


def start_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The stored spec of an instance from RPC params (ValueError on anything wrong)."""
    algorithm = str(params.get("algorithm"))
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; want one of {', '.join(ALGORITHMS)}")
    inputs = params.get("inputs")
    if not isinstance(inputs, list | tuple) or not all(type(x) is int for x in inputs):
        raise ValueError("inputs must be a list of integers, one per validator")
    mode = str(params.get("mode", "ho_f"))
    spec: dict[str, Any] = {
        "instance": int(params["instance"]), "algorithm": algorithm, "inputs": list(inputs),
        "f": int(params.get("f", 1)), "mode": mode, "amp_grace_s": float(params.get("amp_grace_s", 0.0)),
        "timeout_s": float(params.get("round_timeout_s", 0.05)), "catchup_k": int(params.get("catchup_k", 1)),
        "linger_rounds": int(params.get("linger_rounds", 2)),
    }
    if not 0 <= spec["instance"] < 1 << 64:
        raise ValueError("instance must be in 0..2^64-1")
    return spec


def jsonable(value: Any) -> Any:
    """A decision as JSON/msgpack can carry it (Fractions as strings, sets as sorted lists)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return repr(value)
