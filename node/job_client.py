"""Job coordinators that drive real nodes' `compute worker` actors over the network.

Design: the coordinator runs in the CLI process. It connects to every validator of a testnet (or
to a home's node and its peers) as an **observer peer** of the authenticated transport (`net/`:
handshake signed with a fresh key of its own, encrypted frames), so jobs, replies and gradients
travel exactly as node-to-node messages do. The sans-IO cores decide; this module only executes
their actions with real timers (`trio.current_time()` seconds):

- Newton (`run_newton`): `NewtonCoordinator` assigns the job to a worker; a reply is accepted only
  after the coordinator recomputes the residual of the returned states (or, when the states would
  not fit one frame, two workers' replies must agree). A worker whose connection drops (killed
  process) or that is unreachable when the job leaves is a crash: its attempt's deadline timer is
  fired at once and the core reassigns.
- Gradient coding (`run_gc`): `GcCoordinator` over workers 0..n-1 = validators in genesis order.
  A killed or paused worker is a straggler: the round closes at its deadline (or at once when every
  worker still connected has answered and the missing ones are disconnected, which is what the
  deadline would decide later).
- Heard-Of (`run_rounds`): starts one instance on every node over RPC and polls their status.

The cluster comes from a testnet directory (`--dir`) or a node home (`--home`: that node plus its
`p2p.peers`). Worker index = the validator's index in genesis (node-id) order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from hedgerow.net.config import TransportConfig
from hedgerow.net.transport import Transport
from hedgerow.node.config import load_node_config, parse_genesis, split_address
from hedgerow.node.errors import ConfigError, UsageError
from hedgerow.protocols.actions import Broadcast, Deliver, Evidence, Persist, Send, SetTimer
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.wire import FRAME_BYTES_MAX_DEFAULT, encode

POLL_S = 0.05  # how often connection state is looked at while waiting for a message or a timer
FRAME_MARGIN = 64 * 1024


@dataclass(frozen=True)
class WorkerPeer:
    index: int  # genesis (node-id order) index
    name: str
    node_id: bytes
    host: str
    port: int
    rpc: tuple[str, int] | None = None


@dataclass(frozen=True)
class Cluster:
    chain_id: str
    workers: tuple[WorkerPeer, ...]

    def first(self, n: int) -> Cluster:
        if n > len(self.workers):
            raise UsageError(f"{n} workers wanted, the cluster has {len(self.workers)} validators")
        return Cluster(self.chain_id, self.workers[:n])


def cluster_from_testnet(directory: Path) -> Cluster:
    from hedgerow.testnet.launcher import Testnet

    testnet = Testnet.open(directory)
    validators = [rec for rec in testnet.nodes.values() if rec.role == "validator"]
    if not validators:
        raise ConfigError(f"{directory}: no validators in this testnet")
    genesis = parse_genesis((Path(validators[0].home) / "config" / "genesis.json").read_bytes())
    by_key = {bytes.fromhex(rec.public_key): rec for rec in validators}
    workers = []
    for index, validator in enumerate(genesis.validators):
        rec = by_key.get(validator.public_key)
        if rec is None:
            raise ConfigError(f"{directory}: genesis validator {index} has no node in testnet.json")
        workers.append(WorkerPeer(index, rec.name, validator.node_id, "127.0.0.1", rec.p2p_port,
                                  ("127.0.0.1", rec.rpc_port)))
    return Cluster(testnet.chain_id, tuple(workers))


def cluster_from_home(home: Path) -> Cluster:
    config = load_node_config(home)
    genesis = config.genesis()
    own = config.signing_key().node_id
    addresses: dict[bytes, tuple[str, int]] = {own: (config.p2p_host, config.p2p_port)}
    for entry in config.peers:
        ident, sep, address = entry.partition("@")
        if sep:
            addresses[bytes.fromhex(ident)] = split_address(address, "p2p.peers")
    for validator in genesis.validators:
        if validator.address and validator.node_id not in addresses:
            addresses[validator.node_id] = split_address(validator.address, "genesis validator address")
    own_id = config.signing_key().node_id
    rpcs = {own_id: (config.rpc_host, config.rpc_port), **_sync_peer_rpcs(config)}
    workers = []
    for index, validator in enumerate(genesis.validators):
        if validator.node_id not in addresses:
            raise ConfigError(f"{home}: no address for validator {index} ({validator.node_id.hex()[:12]}); "
                              "list it in p2p.peers")
        host, port = addresses[validator.node_id]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        workers.append(WorkerPeer(index, validator.name, validator.node_id, host, port,
                                  rpcs.get(validator.node_id)))
    return Cluster(genesis.chain_id, tuple(workers))


def _sync_peer_rpcs(config: Any) -> dict[bytes, tuple[str, int]]:
    """node id -> RPC address of the home's `[sync] peers` that answer (their hello names them)."""
    from hedgerow.node.rpc_client import RpcCallError, RpcClient

    sync = config.raw.get("sync") if isinstance(config.raw.get("sync"), dict) else {}
    out: dict[bytes, tuple[str, int]] = {}
    key = SigningKey.generate()
    for entry in sync.get("peers", []) if isinstance(sync, dict) else []:
        try:
            host, port = split_address(str(entry), "sync.peers")
            with RpcClient.connect(host, port, key, timeout_s=2.0) as client:
                out[bytes.fromhex(str(client.hello["node_id"]))] = (host, port)
        except (ConfigError, RpcCallError, ValueError, KeyError):
            continue
    return out


async def prepare_newton(cluster: Cluster, timeout_s: float) -> list[int]:
    """Ask every worker with a known RPC address to load the Newton job support (RPC
    `compute_prepare`, torch is imported on demand); returns the indices that are ready."""
    from hedgerow.node.rpc_client import RpcCallError, RpcClient

    key = SigningKey.generate()
    ready: list[int] = []

    def ask(worker: WorkerPeer) -> None:
        assert worker.rpc is not None
        try:
            with RpcClient.connect(*worker.rpc, key, timeout_s=5.0, chain_id=cluster.chain_id) as client:
                status = client.call("compute_prepare", timeout_s=timeout_s, wait_s=timeout_s)
        except (RpcCallError, OSError):
            return
        if isinstance(status, dict) and status.get("newton_ready"):
            ready.append(worker.index)

    async with trio.open_nursery() as nursery:
        for worker in cluster.workers:
            if worker.rpc is not None:
                nursery.start_soon(partial(trio.to_thread.run_sync, ask, worker, abandon_on_cancel=True))
    return sorted(ready)


def cluster_of(args: Any) -> Cluster:
    home, directory = getattr(args, "home", None), getattr(args, "dir", None)
    if home is not None and directory is not None:
        raise UsageError("give --home or --dir, not both")
    if directory is not None:
        return cluster_from_testnet(Path(directory))
    if home is not None:
        return cluster_from_home(Path(home))
    raise UsageError("needs --home DIR or --dir TESTNET_DIR")


class PeerLink:
    """The coordinator's observer connections to the cluster's workers."""

    def __init__(self, cluster: Cluster, key: SigningKey | None = None) -> None:
        self.cluster = cluster
        self.transport = Transport(key or SigningKey.generate(), chain_id=cluster.chain_id,
                                   validators=[w.node_id for w in cluster.workers], config=TransportConfig())
        self.index_of = {w.node_id: w.index for w in cluster.workers}
        self.node_ids = [w.node_id for w in cluster.workers]

    async def start(self, nursery: trio.Nursery, *, connect_timeout_s: float, at_least: int) -> list[int]:
        """Dial every worker; wait until all are connected or the timeout passes with >= at_least."""
        await nursery.start(self.transport.run)
        for worker in self.cluster.workers:
            self.transport.dial(worker.node_id, worker.host, worker.port)
        with trio.move_on_after(connect_timeout_s):
            await self.transport.wait_connected(self.node_ids)
        connected = self.connected()
        if len(connected) < at_least:
            raise ConfigError(f"only {len(connected)} of {len(self.node_ids)} workers reachable after "
                              f"{connect_timeout_s:g} s (need {at_least})")
        return connected

    def connected(self) -> list[int]:
        return [i for i, node_id in enumerate(self.node_ids) if self.transport.is_connected(node_id)]

    def is_connected(self, index: int) -> bool:
        return self.transport.is_connected(self.node_ids[index])

    def close(self) -> None:
        self.transport.close()


class Timers:
    def __init__(self) -> None:
        self.due: dict[Hashable, float] = {}

    def set(self, timer: Hashable, at: float) -> None:
        self.due[timer] = at

    def next_at(self) -> float:
        return min(self.due.values(), default=math.inf)

    def pop_due(self, now: float) -> list[Hashable]:
        fired = sorted((at, repr(t), t) for t, at in self.due.items() if at <= now)
        for _, _, timer in fired:
            del self.due[timer]
        return [timer for _, _, timer in fired]


async def _next_inbound(link: PeerLink, timers: Timers) -> Any:
    """The next message from a worker, or None when a timer is due or POLL_S passed."""
    wait = max(0.0, min(POLL_S, timers.next_at() - trio.current_time()))
    with trio.move_on_after(wait):
        return await link.transport.inbox.receive()
    return None


# -- Newton -----------------------------------------------------------------------------------------


@dataclass
class NewtonRun:
    outcome: Any = None
    attempts: list[tuple[int, str]] = field(default_factory=list)  # (worker index, how it ended)
    faults: list[str] = field(default_factory=list)
    wall_s: float = 0.0


async def run_newton(link: PeerLink, job: Any, *, reassign_max: int = 3, preferred: list[int] | None = None,
                     on_assign: Callable[[int], Any] | None = None,
                     on_event: Callable[[str], None] | None = None) -> NewtonRun:
    """Submit one NewtonJob to the cluster and return once it is delivered (accepted or failed).
    Workers are tried in the order: `preferred` (e.g. those `prepare_newton` found ready), then the
    other connected ones, then the rest."""
    from hedgerow.compute.newton.coordinator import NewtonCoordinator

    run = NewtonRun()
    connected = link.connected()
    order = [i for i in preferred or [] if i in connected]
    order += [i for i in connected if i not in order]
    order += [i for i in range(len(link.node_ids)) if i not in order]
    coordinator = NewtonCoordinator(order, reassign_max=reassign_max)
    timers = Timers()
    current: dict[int, Hashable] = {}  # worker -> its attempt's deadline timer
    started = trio.current_time()
    note = on_event or (lambda text: None)

    async def execute(actions: list[Any]) -> None:
        last_send: int | None = None
        for action in actions:
            if isinstance(action, Send):
                last_send = action.to
                run.attempts.append((action.to, "assigned"))
                note(f"job -> worker {action.to} ({link.cluster.workers[action.to].name})")
                if not await link.transport.send(link.node_ids[action.to], action.message):
                    run.attempts[-1] = (action.to, "unreachable")
                if on_assign is not None:
                    await on_assign(action.to)
            elif isinstance(action, SetTimer) and last_send is not None:
                timers.set(action.timer, action.at)
                current[last_send] = action.timer
                if run.attempts[-1] == (last_send, "unreachable"):
                    timers.set(action.timer, trio.current_time())  # a crash: reassign now
            elif isinstance(action, Deliver):
                run.outcome = action.value
            elif isinstance(action, Evidence):
                run.faults.append(str(action.proof.reason))
                note(f"reply of worker {action.proof.worker} rejected: {action.proof.reason}")

    await execute(await trio.to_thread.run_sync(coordinator.submit, job, started))
    while run.outcome is None:
        inbound = await _next_inbound(link, timers)
        now = trio.current_time()
        if inbound is not None:
            index = link.index_of.get(inbound.peer)
            if index is not None:
                actions = await trio.to_thread.run_sync(coordinator.on_message, index, inbound.message, now)
                await execute(actions)
        for worker, timer in list(current.items()):
            if timer in timers.due and not link.is_connected(worker):
                timers.set(timer, now)  # its connection dropped: the worker crashed
                run.attempts.append((worker, "disconnected"))
                note(f"worker {worker} disconnected: reassigning")
        for timer in timers.pop_due(now):
            if run.outcome is None:
                await execute(coordinator.on_timer(timer, now))
    run.wall_s = trio.current_time() - started
    return run


def job_log(args: Any, kind: str, job_id: bytes) -> Any:
    """The dashboard's progress log `DIR/jobs/KIND-ID.jsonl` when the job runs against a testnet
    `--dir` (None with `--home`: a node home has no testnet directory for the dashboard to read)."""
    directory = getattr(args, "dir", None)
    if directory is None:
        return None
    from hedgerow.testnet.joblog import JobLog

    return JobLog(Path(directory), f"{kind}-{job_id.hex()[:8]}", kind)


def newton_cli(args: Any, dtype_name: str) -> int:
    """`hedgerow job newton --dir|--home`: the job runs on a node's compute worker."""
    from hedgerow.node.cmd_newton import _print
    from hedgerow.node.errors import VerdictFailure

    report = newton_job(args, dtype_name)
    _print(report, as_json=args.json)
    if report["status"] != "converged" or not report["verified"]:
        detail = f"job {report['status']}, verified={report['verified']} {report['verify_reason']}"
        raise VerdictFailure(detail.strip())
    return 0


def newton_job(args: Any, dtype_name: str, *,
               on_assign: Callable[[int, Cluster], Any] | None = None) -> dict[str, Any]:
    """Run one Newton job (the `hedgerow job newton` arguments) on the cluster's compute workers and
    return its report; `on_assign(worker_index, cluster)` (async) runs as the job leaves for a worker.
    With `--dir` the job's progress goes to the dashboard's log (`job_log`)."""
    import torch

    from hedgerow.compute.newton import NewtonConfig, solve
    from hedgerow.compute.newton.jobs import from_wire_tensor, make_job
    from hedgerow.compute.newton.systems import make
    from hedgerow.node.output import progress

    cluster = cluster_of(args)
    dtype = getattr(torch, dtype_name)
    problem = make(args.system, T=args.T, B=args.batch, D=args.D, seed=args.seed, g=args.g, dtype=dtype)
    config = NewtonConfig(method=args.method, lam=args.lam, tol=args.tol, max_iter=args.max_iter)
    import os

    B, T, D = args.batch, args.T, problem.system.D
    states_bytes = B * T * D * dtype.itemsize
    return_states = states_bytes + FRAME_MARGIN <= FRAME_BYTES_MAX_DEFAULT
    job = make_job(os.urandom(16), problem.system, problem.s0, problem.inputs, config,
                   deadline_ms=int(args.deadline * 1000), return_states=return_states)
    if len(encode(job)) + FRAME_MARGIN > FRAME_BYTES_MAX_DEFAULT:
        raise UsageError(f"the job's inputs exceed one {FRAME_BYTES_MAX_DEFAULT >> 20} MiB frame; "
                         "use a smaller --T/--batch, or --local")

    log = job_log(args, "newton", job.job_id)
    tried: list[int] = []  # workers the job left for, in order

    async def assigned(index: int) -> None:
        if log is not None:  # a reassignment: the workers tried before are the stragglers so far
            log.point(0, stragglers=sorted(set(tried) - {index}))
        tried.append(index)
        if on_assign is not None:
            await on_assign(index, cluster)

    async def main() -> NewtonRun:
        link = PeerLink(cluster)
        async with trio.open_nursery() as nursery:
            with progress(quiet=args.json) as bar:
                task = bar.add_task("connecting; workers load torch", total=None)
                ready = await prepare_newton(cluster, 60.0 + args.connect_timeout)
                if not ready and any(w.rpc is not None for w in cluster.workers):
                    raise ConfigError("no compute worker became ready (RPC compute_prepare)")
                await link.start(nursery, connect_timeout_s=args.connect_timeout, at_least=1)
                result = await run_newton(link, job, preferred=ready, on_assign=assigned,
                                          on_event=lambda text: bar.update(task, description=text))
            link.close()
            nursery.cancel_scope.cancel()
        return result

    run = trio.run(main)
    outcome = run.outcome
    reply = outcome.reply if outcome is not None else None
    report: dict[str, Any] = {
        "system": args.system, "method": args.method, "T": T, "D": D, "batch": B, "dtype": dtype_name,
        "mode": "network", "status": reply.status if reply is not None else "failed",
        "iterations": max(reply.iterations) if reply is not None else None,
        "max_residual": max(reply.max_residual) if reply is not None else None,
        "max_residual_rechecked": outcome.max_residual if outcome is not None else None,
        "verified": bool(outcome is not None and outcome.ok),
        "verified_by": "residual" if return_states else "agreement of two workers",
        "verify_reason": "" if outcome is None or outcome.ok else outcome.reason,
        "worker": cluster.workers[outcome.worker].name if outcome is not None and outcome.worker is not None
        else None,
        "attempts": [[cluster.workers[i].name, how] for i, how in run.attempts],
        "reassignments": sum(1 for _, how in run.attempts if how == "assigned") - (1 if return_states else 2),
        "rejected_replies": run.faults,
        "worker_wall_s": reply.wall_ms / 1000.0 if reply is not None else None,
        "wall_s": run.wall_s,
    }
    if args.check and reply is not None:
        started = time.perf_counter()
        loop = solve(problem.system.f, problem.s0, problem.inputs, config=NewtonConfig(method="sequential"))
        report["seq_wall_s"] = time.perf_counter() - started
        if reply.states is not None:
            report["max_err_vs_seq"] = float((from_wire_tensor(reply.states) - loop.states).abs().max())
        else:
            last = from_wire_tensor(reply.last_state)
            report["max_err_vs_seq"] = float((last - loop.states[:, -1]).abs().max())
        report["speedup"] = report["seq_wall_s"] / max(report["wall_s"], 1e-9)
    done_by = outcome.worker if outcome is not None else None
    report["stragglers"] = [cluster.workers[i].name for i in sorted(set(tried) - {done_by})] \
        if return_states else []
    if log is not None:
        residual = report["max_residual_rechecked"]
        residual = report["max_residual"] if residual is None else residual
        log.point(report["iterations"] or 0, residual=residual, done=True,
                  stragglers=sorted(set(tried) - {done_by}) if return_states else [])
        report["job_log"] = str(log.path)
    return report


# -- gradient coding --------------------------------------------------------------------------------


@dataclass
class GcRun:
    result: Any = None
    history: list[Any] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    w: Any = None
    wall_s: float = 0.0
    early_closes: int = 0
    deadline_closes: int = 0


async def run_gc(link: PeerLink, job: Any, cfg: Any, w0: Any, *,
                 on_round: Callable[[Any, Any], Any] | None = None) -> GcRun:
    """Run one gradient-coding job over the cluster's first `job.n` workers until it is delivered.
    `on_round(record, w)` may be async (awaited) and runs after every closed round."""
    from hedgerow.compute.gradcoding.coordinator import GcCoordinator

    run = GcRun()
    coordinator = GcCoordinator(job, cfg, w0)
    timers = Timers()
    started = trio.current_time()
    seen = 0

    async def execute(actions: list[Any]) -> None:
        nonlocal seen
        for action in actions:
            if isinstance(action, Send):
                link.transport.send_nowait(link.node_ids[action.to], action.message)
            elif isinstance(action, Broadcast):
                for node_id in link.node_ids:
                    link.transport.send_nowait(node_id, action.message)
            elif isinstance(action, SetTimer):
                timers.set(action.timer, action.at)
            elif isinstance(action, Deliver):
                run.result = action.value
            elif isinstance(action, Persist):
                pass  # the CLI coordinator keeps its checkpoint in memory only
        while seen < len(coordinator.history):
            record = coordinator.history[seen]
            seen += 1
            if on_round is not None:
                maybe = on_round(record, coordinator.w)
                if maybe is not None:
                    await maybe

    await execute(coordinator.start(started))
    while run.result is None:
        inbound = await _next_inbound(link, timers)
        now = trio.current_time()
        if inbound is not None:
            index = link.index_of.get(inbound.peer)
            if index is not None and index < job.n:
                await execute(coordinator.on_message(index, inbound.message, now))
        if run.result is None and coordinator.open and not coordinator.done:
            waiting = [i for i in range(job.n)
                       if i not in coordinator.replies and i not in coordinator.quarantined]
            if waiting and not any(link.is_connected(i) for i in waiting):
                deadline: Hashable = ("gc_deadline", job.job_id, coordinator.round)
                if deadline in timers.due:
                    timers.set(deadline, now)  # only disconnected workers missing: the deadline's verdict now
                    run.early_closes += 1
        for timer in timers.pop_due(now):
            if run.result is None:
                await execute(coordinator.on_timer(timer, now))
    run.history = list(coordinator.history)
    run.counters = dict(coordinator.counters)
    run.w = coordinator.w.copy()
    run.wall_s = trio.current_time() - started
    return run


def train_cli(args: Any) -> int:
    """`hedgerow job train --dir|--home`: the coordinator here, the GcWorkers on the nodes."""
    from hedgerow.node.cmd_train import print_summary

    return print_summary(train_job(args), "gradient-coded training over real nodes", as_json=args.json)


def train_job(args: Any, *, on_round: Callable[[Any, Cluster], Any] | None = None) -> dict[str, Any]:
    """Run one gradient-coded training job (the `hedgerow job train` arguments) with the cluster's
    first n validators as workers and return its summary; `on_round(record, cluster)` (may be async)
    runs after every closed round. With `--dir` each round's loss and stragglers go to the dashboard's
    log (`job_log`)."""
    import os
    from dataclasses import replace

    from hedgerow.compute.gradcoding.driver import build_problem, logreg_optimum, straggler_count
    from hedgerow.compute.gradcoding.sim import SimConfig
    from hedgerow.node.cmd_train import _plot, build
    from hedgerow.node.output import progress

    if not args.deadline > 0:
        raise UsageError(f"--deadline must be positive, got {args.deadline}")
    setup, _ = build(args)
    if setup.deadline_s is None or math.isfinite(setup.deadline_s):  # uncoded_wait keeps waiting for all
        setup = replace(setup, deadline_s=args.deadline)
    cluster = cluster_of(args).first(setup.n)
    problem = build_problem(setup)
    # A fresh job id per run: workers keep a job's EF memory across a coordinator restart, so a rerun
    # must not look like one (the id feeds no computation; the rngs use job_seed).
    job = replace(setup.job_spec(), job_id=os.urandom(16))
    cfg = setup.gc_config(SimConfig())
    log = job_log(args, "train", job.job_id)
    losses: list[float] = []
    bits: list[int] = []
    stragglers = [0]

    async def main() -> GcRun:
        link = PeerLink(cluster)
        async with trio.open_nursery() as nursery:
            await link.start(nursery, connect_timeout_s=args.connect_timeout,
                             at_least=max(1, setup.n - setup.s))
            with progress(quiet=args.json) as bar:
                task = bar.add_task("training", total=setup.rounds)

                async def each_round(record: Any, w: Any) -> None:
                    losses.append(problem.loss(w))
                    bits.append((bits[-1] if bits else 0) + record.bits_used)
                    stragglers[0] += setup.n - len(record.responders)
                    bar.update(task, completed=record.round + 1, description=(
                        f"round {record.round + 1} loss {losses[-1]:.5f} bits {bits[-1]:,} "
                        f"stragglers {stragglers[0]}"))
                    if log is not None:
                        log.point(record.round + 1, loss=losses[-1],
                                  stragglers=[i for i in range(setup.n) if i not in record.responders],
                                  done=record.round + 1 == setup.rounds)
                    if on_round is not None:
                        maybe = on_round(record, cluster)
                        if maybe is not None:
                            await maybe

                result = await run_gc(link, job, cfg, problem.initial_weights(), on_round=each_round)
            link.close()
            nursery.cancel_scope.cancel()
        return result

    run = trio.run(main)
    f_star = logreg_optimum(setup.n, setup.m, setup.data_dim, setup.data_seed, setup.l2) \
        if setup.problem == "logreg" else None
    final_loss = losses[-1] if losses else math.nan
    counters = run.counters
    aborted = getattr(run.result, "reason", None)
    if log is not None and (aborted or len(run.history) < setup.rounds):
        log.point(len(run.history), loss=final_loss if losses else None, done=True)
    summary: dict[str, Any] = {
        "method": setup.method, "mode": setup.mode, "scheme": setup.scheme, "where": "network",
        "workers": [w.name for w in cluster.workers], "n": setup.n, "s": setup.s,
        "compressor": f"{setup.compressor.name}:{setup.compressor.ratio:g}", "rounds": len(run.history),
        "first_loss": problem.loss(problem.initial_weights()),
        "final_loss": final_loss, "final_gap": None if f_star is None else final_loss - f_star,
        "bits_uplink": counters.get("bits_used", 0), "bits_sent": counters.get("bits_sent", 0),
        "bits_downlink": counters.get("bits_downlink", 0), "bytes_wire": counters.get("bytes_wire", 0),
        "stragglers_seen": straggler_count(run.history, setup.n), "late_replies": counters.get("late", 0),
        "malformed": counters.get("malformed", 0), "need_job": counters.get("need_job", 0),
        "deadline_s": cfg.deadline_s if math.isfinite(cfg.deadline_s) else None,
        "early_closes": run.early_closes, "wall_s": round(run.wall_s, 3),
        "rounds_per_s": round(len(run.history) / max(run.wall_s, 1e-9), 2), "aborted": aborted,
    }
    if log is not None:
        summary["job_log"] = str(log.path)
    if args.plot:
        _plot(args.plot, _PlotData(setup, losses, bits, f_star))
        summary["plot"] = args.plot
    return summary


@dataclass
class _PlotData:
    setup: Any
    losses: list[float]
    bits_cumulative: list[int]
    f_star: float | None


# -- Heard-Of -----------------------------------------------------------------------------------------


def run_rounds(cluster: Cluster, params: dict[str, Any], *, timeout_s: float,
               key: SigningKey | None = None) -> list[dict[str, Any]]:
    """Start the instance on every node (RPC `rounds_start`) and poll `rounds_status` until every
    reachable node decided, or `timeout_s` passes. Returns one status per node (None
    fields for unreachable nodes)."""
    from hedgerow.node.rpc_client import RpcCallError, RpcClient

    key = key or SigningKey.generate()
    clients: dict[int, Any] = {}
    statuses: dict[int, dict[str, Any]] = {}
    try:
        for worker in cluster.workers:
            if worker.rpc is None:
                raise UsageError(f"no RPC address for {worker.name}: use --dir TESTNET_DIR")
            try:
                clients[worker.index] = RpcClient.connect(*worker.rpc, key, timeout_s=5.0,
                                                          chain_id=cluster.chain_id)
            except RpcCallError as error:
                statuses[worker.index] = {"name": worker.name, "error": str(error)}
        for index, client in clients.items():
            try:
                client.call("rounds_start", timeout_s=10.0, **params)
            except RpcCallError as error:
                raise ConfigError(f"{cluster.workers[index].name}: rounds_start: {error}") from None
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            for index, client in clients.items():
                try:
                    status = client.call("rounds_status", timeout_s=5.0, instance=params["instance"])
                except RpcCallError as error:
                    status = {"error": str(error)}
                statuses[index] = {"name": cluster.workers[index].name, **(status or {})}
            done = all(s.get("decided") or s.get("error") for s in statuses.values())
            if done or time.monotonic() >= deadline:
                break
            time.sleep(delay)  # polling remote state, bounded by the deadline
            delay = min(delay * 1.5, 0.2)
    finally:
        for client in clients.values():
            client.close()
    return [statuses[i] for i in sorted(statuses)]


def rounds_cli(args: Any) -> int:
    """`hedgerow rounds --dir|--home`: one instance on every validator, decisions checked here."""
    import os

    from hedgerow.node.errors import VerdictFailure
    from hedgerow.node.output import console, print_json, table
    from hedgerow.protocols.heardof import predicates

    cluster = cluster_of(args)
    if not args.inputs:
        raise UsageError("--inputs is required, e.g. --inputs 0,1,1,0 (one per validator)")
    try:
        inputs = [int(x) for x in args.inputs.split(",")]
    except ValueError:
        raise UsageError(f"--inputs {args.inputs!r}: want comma-separated integers") from None
    n = len(cluster.workers)
    if len(inputs) != n:
        raise UsageError(f"--inputs has {len(inputs)} values; the testnet has {n} validators")
    if args.mode == "ho_f" and n <= 2 * args.f:
        raise UsageError(f"ho_f mode needs n > 2f (n={n}, f={args.f})")
    predicate = "hof" if args.predicate == "default" else args.predicate
    instance = args.instance if args.instance is not None else int.from_bytes(os.urandom(6), "big")
    grace = 0.005 if args.mode == "ho_f" and args.algorithm in ("otr", "lv", "uv") else 0.0
    params = {"instance": instance, "algorithm": args.algorithm, "inputs": inputs, "f": args.f,
              "mode": args.mode, "amp_grace_s": grace, "round_timeout_s": 0.05, "catchup_k": n,
              "linger_rounds": 2}
    started = time.monotonic()
    statuses = run_rounds(cluster, params, timeout_s=args.timeout)
    wall_s = time.monotonic() - started
    live = [s for s in statuses if "decided" in s]
    decisions = {s["name"]: s["decision"] for s in live if s["decided"]}
    violations: list[str] = []
    values = list(decisions.values())
    if args.algorithm == "approx":
        from fractions import Fraction

        xs = [Fraction(v) if isinstance(v, str) else v for v in values]  # Fractions travel as "p/q"
        if xs and (max(xs) - min(xs) > 1 or min(xs) < min(inputs) or max(xs) > max(inputs)):
            violations.append(f"approximate agreement: {decisions}")
    else:
        k = args.f + 1 if args.algorithm == "floodmin" else 1
        if len({repr(v) for v in values}) > k:
            violations.append(f"agreement: {decisions}")
        violations += [f"validity: {name} decided {v!r}" for name, v in decisions.items() if v not in inputs]
    conflicts = sum(int(s["counters"].get("conflicting_duplicate", 0)) for s in live)
    if conflicts:
        violations.append(f"{conflicts} conflicting duplicate round messages")
    rounds = min((len(s["trace"]) for s in live), default=0)
    everyone = list(range(n))
    by_p = {int(s["p"]): s for s in live}
    realized = [[frozenset(by_p[p]["trace"][r]) if p in by_p else frozenset(everyone) for p in range(n)]
                for r in range(rounds)]
    held = predicates.predicate_by_name(predicate, args.f)(realized) if predicate != "complete" else True
    undecided = [s["name"] for s in live if not s["decided"]]
    summary = {
        "algorithm": args.algorithm, "mode": args.mode, "predicate": predicate, "predicate_held": held,
        "inputs": inputs, "instance": instance, "where": "network", "wall_s": round(wall_s, 3),
        "decided": sorted(decisions), "decisions": decisions, "undecided": undecided,
        "unreachable": [s["name"] for s in statuses if "decided" not in s],
        "nodes": statuses, "violations": violations,
    }
    if args.json:
        print_json(summary)
    else:
        rows = [(s["name"], s.get("decision", ""), s.get("round", ""),
                 f"{sum(map(len, s['trace'])) / max(1, len(s['trace'])):.2f}" if "trace" in s else "",
                 s.get("latency_ms", ""), s.get("resumed", ""), s.get("error", "") or "") for s in statuses]
        console.print(table(f"rounds {args.algorithm} mode={args.mode} over {n} nodes (instance {instance})",
                            ["node", "decision", "round", "mean |HO|", "decided after ms", "resumed",
                             "error"], rows))
        console.print(f"predicate {predicate} held on the realized trace: {held}; wall {wall_s:.3f} s")
    for item in violations:
        console.print(item, style="red")
    if violations:
        raise VerdictFailure(f"{len(violations)} violation(s)")
    if not decisions:
        raise VerdictFailure(f"no node decided within {args.timeout:g} s")
    return 0


def register(testnet_commands: Any) -> None:
    """`hedgerow testnet rounds --dir DIR ...`: a Heard-Of instance on every node of a testnet."""
    from hedgerow.node.cmd_rounds import RUN_ALGORITHMS

    parser = testnet_commands.add_parser("rounds", help="run one Heard-Of instance on every validator")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--algorithm", required=True, choices=RUN_ALGORITHMS)
    parser.add_argument("--inputs", required=True, help="comma-separated integers, one per validator")
    parser.add_argument("--predicate", default="default", help="checked on the realized trace (default hof)")
    parser.add_argument("--mode", choices=("ho_f", "timeout"), default="ho_f")
    parser.add_argument("--f", type=int, default=1)
    parser.add_argument("--instance", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=rounds_cli, home=None)
