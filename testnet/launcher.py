"""Real multi-process testnets on loopback: generate homes, start/stop/kill/pause node processes,
read their status over RPC. Library functions first (issue 9's scenarios and issue 10's dashboard
drive these); `hedgerow testnet ...` (node/cmd_testnet.py) is a thin CLI over them.

Layout of a testnet directory:
    DIR/testnet.json          names, roles, homes, ports, pids (rewritten on every change)
    DIR/manifest.toml         the manifest it was created from (when one was given)
    DIR/<name>/config/...     a node home (node.toml, key.ed25519, genesis.json)
    DIR/<name>/data/logs/node.log

Every wait is `wait_until(condition, deadline)`: it polls a condition with a short back-off until
it holds or the deadline passes, and then raises `WaitTimeout` naming the condition.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hedgerow.node.errors import ConfigError, UsageError
from hedgerow.node.home import write_key_file
from hedgerow.node.rpc_client import RpcCallError, RpcClient
from hedgerow.protocols.crypto import SigningKey
from hedgerow.testnet.manifest import DEFAULT_CHAIN_ID, Manifest, NodeSpec

STATE_FILE = "testnet.json"
T = TypeVar("T")


class WaitTimeout(Exception):
    """A condition did not hold before its deadline."""


def wait_until(condition: Callable[[], T], deadline_s: float, what: str, poll_s: float = 0.05) -> T:
    """Poll `condition` until it returns a truthy value (returned) or `deadline_s` seconds pass."""
    end = time.monotonic() + deadline_s
    delay = poll_s
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (RpcCallError, OSError) as error:
            last_error = error
        if time.monotonic() >= end:
            detail = f" (last error: {last_error})" if last_error else ""
            raise WaitTimeout(f"timed out after {deadline_s:.0f} s waiting for {what}{detail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range, so outgoing connections never take them


def free_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """Ports free right now on loopback, drawn at random below the ephemeral range (so neither a
    concurrent testnet's bind(0) nor an outgoing connection is likely to take them), each probed by
    binding it; all held together, then released."""
    rng = rng or random.Random()
    sockets: list[socket.socket] = []
    try:
        attempts = 0
        while len(sockets) < count:
            attempts += 1
            if attempts > 100 * count:
                raise OSError("no free loopback ports found")
            port = rng.randrange(*PORT_RANGE)
            if not _reserve(port):
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                release_ports([port])
                continue
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


RESERVATIONS = Path(tempfile.gettempdir()) / "hedgerow-ports"
RESERVATION_TTL_S = 6 * 3600


def _reserve(port: int) -> bool:
    """Claim `port` machine-wide among hedgerow launchers (a file per port, created exclusively;
    claims older than RESERVATION_TTL_S are stale), so concurrent testnets never pick the same port
    between choosing it and their nodes binding it."""
    RESERVATIONS.mkdir(parents=True, exist_ok=True)
    path = RESERVATIONS / str(port)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            if time.time() - path.stat().st_mtime < RESERVATION_TTL_S:
                return False
            path.unlink()
        except FileNotFoundError:
            pass
        return _reserve_once(path)
    os.close(fd)
    return True


def _reserve_once(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def release_ports(ports: list[int]) -> None:
    for port in ports:
        with contextlib.suppress(FileNotFoundError):
            (RESERVATIONS / str(port)).unlink()


@dataclass
class NodeRecord:
    name: str
    role: str
    home: str
    p2p_port: int
    rpc_port: int
    metrics_port: int
    public_key: str
    pid: int | None = None
    paused: bool = False


@dataclass
class NodeStatus:
    name: str
    pid: int | None
    role: str
    alive: bool
    height: int | None = None
    round: int | None = None
    leader: int | None = None
    peers: int | None = None
    last_commit_age_ms: int | None = None
    state_hash: str | None = None
    paused: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _fault_lines(spec: NodeSpec, manifest: Manifest, keys: dict[str, SigningKey]) -> list[str]:
    """net/faults.py's `[faults]` table for the links that touch this node (names -> node ids)."""
    def ident(name: str) -> str:
        return "*" if name == "*" else keys[name].node_id.hex()

    faults = [f for f in manifest.faults if spec.name in (f.source, f.target) or "*" in (f.source, f.target)]
    if not faults:
        return []
    lines = ["[faults]", f"seed = {manifest.seed}", ""]
    for fault in faults:
        settings = dict(fault.settings)
        if settings.pop("partition", False):
            lines += ["[[faults.partition]]", f"a = [{_toml_value(ident(fault.source))}]",
                      f"b = [{_toml_value(ident(fault.target))}]", "symmetric = false", ""]
        if not settings:
            continue
        lines += ["[[faults.link]]", f"src = {_toml_value(ident(fault.source))}",
                  f"dst = {_toml_value(ident(fault.target))}"]
        for key, value in settings.items():
            if key.endswith("_ms"):
                key, value = key[:-3] + "_s", float(value) / 1000.0
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return lines


def _write_home(home: Path, spec: NodeSpec, keys: dict[str, SigningKey], genesis_bytes: bytes,
                ports: tuple[int, int, int], peers: list[str], sync_peers: list[str],
                manifest: Manifest) -> None:
    config = home / "config"
    (home / "data" / "logs").mkdir(parents=True, exist_ok=True)
    config.mkdir(parents=True, exist_ok=True)
    write_key_file(config / "key.ed25519", keys[spec.name])
    (config / "genesis.json").write_bytes(genesis_bytes)
    p2p, rpc, metrics = ports
    lines = [
        "version = 1",
        f"chain_id = {_toml_value(manifest.chain_id)}",
        f"name = {_toml_value(spec.name)}",
        f"role = {_toml_value(spec.role)}",
        "",
        "[p2p]",
        f'listen = "127.0.0.1:{p2p}"',
        f"peers = {_toml_value(peers)}",
        "",
        "[sync]",
        f"peers = {_toml_value(sync_peers)}",
        "",
        "[rpc]",
        f'listen = "127.0.0.1:{rpc}"',
        "",
        "[metrics]",
        f'listen = "127.0.0.1:{metrics}"',
        "",
    ]
    lines += ["[perturb]", "rpc = true  # run-time fault control (testnet/perturb_node.py)", ""]
    if spec.byzantine:
        lines += ["[byzantine]", f"flags = {_toml_value(list(spec.byzantine))}", ""]
    if manifest.mempool:
        lines += ["[mempool]"] + [f"{k} = {_toml_value(v)}" for k, v in manifest.mempool.items()] + [""]
    lines += _fault_lines(spec, manifest, keys)
    (config / "node.toml").write_text("\n".join(lines))


def make_genesis(manifest: Manifest, keys: dict[str, SigningKey]) -> bytes:
    validators = [{"name": spec.name, "public_key": keys[spec.name].public.raw.hex(),
                   "node_id": keys[spec.name].node_id.hex(), "power": 1}
                  for spec in manifest.validators]
    genesis = {"chain_id": manifest.chain_id, "genesis_time_ms": int(time.time() * 1000),
               "app": manifest.app, "validators": validators, "consensus": manifest.consensus}
    return (json.dumps(genesis, indent=2, sort_keys=True) + "\n").encode()


class Testnet:
    """A testnet directory and the node processes this Python process (or an earlier one) started."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, nodes: dict[str, NodeRecord], chain_id: str) -> None:
        self.dir = Path(directory)
        self.nodes = nodes
        self.chain_id = chain_id
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._client_key = SigningKey.generate()

    # -- creation and loading -----------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, manifest: Manifest) -> Testnet:
        directory = Path(directory)
        if (directory / STATE_FILE).exists():
            raise UsageError(f"{directory} already holds a testnet (hedgerow testnet down --dir {directory}"
                             " --clean, or pick another --dir)")
        directory.mkdir(parents=True, exist_ok=True)
        if manifest.chain_id == DEFAULT_CHAIN_ID:
            # A unique chain id per testnet: nodes (transport) and clients (RPC hello) of concurrent
            # testnets on one machine can never talk to each other by accident.
            manifest = dataclasses.replace(manifest, chain_id=f"{DEFAULT_CHAIN_ID}-{os.urandom(3).hex()}")
        keys = {spec.name: SigningKey.generate() for spec in manifest.nodes}
        genesis = make_genesis(manifest, keys)
        ports = free_ports(3 * len(manifest.nodes))
        records: dict[str, NodeRecord] = {}
        for i, spec in enumerate(manifest.nodes):
            p2p = spec.p2p_port or ports[3 * i]
            rpc = spec.rpc_port or ports[3 * i + 1]
            metrics = spec.metrics_port or ports[3 * i + 2]
            records[spec.name] = NodeRecord(spec.name, spec.role, str(directory / spec.name), p2p, rpc,
                                            metrics, keys[spec.name].public.raw.hex())
        for spec in manifest.nodes:
            rec = records[spec.name]
            others = [o for o in records.values() if o.name != spec.name and o.role == "validator"]
            peers = [f"{keys[o.name].node_id.hex()}@127.0.0.1:{o.p2p_port}" for o in others]
            sync_peers = [f"127.0.0.1:{o.rpc_port}" for o in others]
            _write_home(Path(rec.home), spec, keys, genesis, (rec.p2p_port, rec.rpc_port, rec.metrics_port),
                        peers, sync_peers, manifest)
        testnet = cls(directory, records, manifest.chain_id)
        testnet.save()
        return testnet

    @classmethod
    def open(cls, directory: Path) -> Testnet:
        path = Path(directory) / STATE_FILE
        if not path.exists():
            raise ConfigError(f"{directory}: no testnet here (no {STATE_FILE}; run hedgerow testnet up)")
        state = json.loads(path.read_text())
        nodes = {n["name"]: NodeRecord(**n) for n in state["nodes"]}
        return cls(Path(directory), nodes, state["chain_id"])

    def save(self) -> None:
        state = {"chain_id": self.chain_id, "nodes": [asdict(n) for n in self.nodes.values()]}
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.dir / STATE_FILE)

    def record(self, name: str) -> NodeRecord:
        if name not in self.nodes:
            raise UsageError(f"no node {name!r} in this testnet (have: {', '.join(self.nodes)})")
        return self.nodes[name]

    # -- processes ----------------------------------------------------------------------------------

    def start(self, name: str) -> int:
        """Start a node process from its home (again); returns its pid."""
        rec = self.record(name)
        if rec.pid is not None and pid_alive(rec.pid):
            raise UsageError(f"{name} is already running (pid {rec.pid})")
        log_path = Path(rec.home) / "data" / "logs" / "node.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hedgerow.node.run_main", "--home", rec.home],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._procs[name] = proc
        rec.pid = proc.pid
        rec.paused = False
        self.save()
        return proc.pid

    def start_all(self, names: list[str] | None = None) -> None:
        for name in names if names is not None else list(self.nodes):
            self.start(name)

    def signal(self, name: str, signum: int) -> None:
        rec = self.record(name)
        if rec.pid is None or not pid_alive(rec.pid):
            raise UsageError(f"{name} is not running")
        os.kill(rec.pid, signum)

    def kill(self, name: str) -> None:
        """SIGKILL: the node loses its process, never what it committed."""
        self.signal(name, signal.SIGKILL)
        self._reap(name, 10.0)

    def pause(self, name: str) -> None:
        self.signal(name, signal.SIGSTOP)
        self.record(name).paused = True
        self.save()

    def resume(self, name: str) -> None:
        self.signal(name, signal.SIGCONT)
        self.record(name).paused = False
        self.save()

    def stop(self, name: str, timeout_s: float = 15.0, *, signalled: bool = False) -> int | None:
        """SIGTERM (graceful: flush, fsync, close peers), SIGKILL after `timeout_s`; returns the exit
        code when this process started it. `signalled`: SIGTERM was already sent (by `down`); a
        second one would interrupt the graceful shutdown."""
        rec = self.record(name)
        if rec.pid is None or not pid_alive(rec.pid):
            if name in self._procs:
                return self._reap(name, 1.0)
            self._forget(name)
            return None
        if rec.paused:
            os.kill(rec.pid, signal.SIGCONT)
        if not signalled:
            os.kill(rec.pid, signal.SIGTERM)
        code = self._reap(name, timeout_s)
        if code is None and rec.pid is not None and pid_alive(rec.pid):
            os.kill(rec.pid, signal.SIGKILL)
            code = self._reap(name, 5.0)
        return code

    def _forget(self, name: str) -> None:
        self.record(name).pid = None
        self.save()

    def _reap(self, name: str, timeout_s: float) -> int | None:
        rec = self.record(name)
        proc = self._procs.get(name)
        code: int | None = None
        if proc is not None:
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return None
            self._procs.pop(name, None)
        else:
            pid = rec.pid
            with contextlib.suppress(WaitTimeout):
                wait_until(lambda: pid is None or not pid_alive(pid), timeout_s, f"{name} to exit")
            if rec.pid is not None and pid_alive(rec.pid):
                return None
        rec.pid = None
        rec.paused = False
        self.save()
        return code

    def down(self, timeout_s: float = 15.0) -> dict[str, int | None]:
        """Stop every node gracefully (in parallel: SIGTERM all, then wait)."""
        signalled = set()
        for name, rec in self.nodes.items():
            if rec.pid is not None and pid_alive(rec.pid):
                if rec.paused:
                    os.kill(rec.pid, signal.SIGCONT)
                os.kill(rec.pid, signal.SIGTERM)
                signalled.add(name)
        codes = {}
        for name in self.nodes:
            codes[name] = self.stop(name, timeout_s, signalled=name in signalled)
        self.release()
        return codes

    def release(self) -> None:
        """Give this testnet's ports back to other launchers (after every node stopped)."""
        release_ports([port for rec in self.nodes.values()
                       for port in (rec.p2p_port, rec.rpc_port, rec.metrics_port)])

    def kill_all(self) -> None:
        """Emergency cleanup (tests' finalizers): SIGKILL every process group we know of."""
        for rec in self.nodes.values():
            if rec.pid is not None and pid_alive(rec.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec.pid, signal.SIGKILL)
        for name, proc in list(self._procs.items()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            self._procs.pop(name, None)
        for rec in self.nodes.values():
            rec.pid = None
        self.save()
        self.release()

    # -- RPC and status -----------------------------------------------------------------------------

    def client(self, name: str, timeout_s: float = 5.0) -> RpcClient:
        rec = self.record(name)
        return RpcClient.connect("127.0.0.1", rec.rpc_port, self._client_key, timeout_s,
                                 chain_id=self.chain_id)

    def call(self, name: str, method: str, timeout_s: float = 5.0, **params: Any) -> Any:
        with self.client(name, timeout_s) as client:
            return client.call(method, timeout_s=timeout_s, **params)

    def node_status(self, name: str, timeout_s: float = 1.0) -> NodeStatus:
        rec = self.record(name)
        alive = rec.pid is not None and pid_alive(rec.pid)
        status = NodeStatus(rec.name, rec.pid if alive else None, rec.role, alive, paused=rec.paused)
        if not alive or rec.paused:
            return status
        try:
            info = self.call(name, "status", timeout_s=timeout_s)
        except (RpcCallError, OSError) as error:
            status.error = str(error)
            return status
        status.height = info.get("height")
        status.round = info.get("round")
        status.leader = info.get("leader")
        status.peers = info.get("peers")
        status.last_commit_age_ms = info.get("last_commit_age_ms")
        status.state_hash = info.get("state_hash")
        return status

    def status(self) -> list[NodeStatus]:
        return [self.node_status(name) for name in self.nodes]

    def heights(self, names: list[str] | None = None) -> dict[str, int]:
        out = {}
        for name in names if names is not None else list(self.nodes):
            st = self.node_status(name)
            out[name] = st.height if st.height is not None else -1
        return out

    def wait_for_height(self, height: int, names: list[str] | None = None, deadline_s: float = 30.0) -> None:
        targets = names if names is not None else [n for n, r in self.nodes.items() if r.pid is not None]
        wait_until(lambda: all(h >= height for h in self.heights(targets).values()), deadline_s,
                   f"height >= {height} on {', '.join(targets)}")

    def running_one(self, name: str) -> bool:
        pid = self.record(name).pid
        return pid is not None and pid_alive(pid)

    def log_tail(self, name: str) -> str:
        """The node's last log line (why a node exited)."""
        path = Path(self.record(name).home) / "data" / "logs" / "node.log"
        try:
            lines = path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "empty log"

    def running(self) -> list[str]:
        return [n for n, r in self.nodes.items() if r.pid is not None and pid_alive(r.pid)]


def pid_alive(pid: int) -> bool:
    """True for a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class UpResult:
    testnet: Testnet
    elapsed_s: float
    heights: dict[str, int] = field(default_factory=dict)


def up(directory: Path, manifest: Manifest, *, commit_height: int = 2, deadline_s: float = 60.0) -> UpResult:
    """Create the testnet, start the nodes marked `start`, and return once every started validator
    has committed `commit_height` blocks."""
    started = time.monotonic()
    testnet = Testnet.create(directory, manifest)
    names = [spec.name for spec in manifest.nodes if spec.start]
    try:
        testnet.start_all(names)
        validators = [n for n in names if testnet.nodes[n].role == "validator"]
        testnet.wait_for_height(commit_height, validators, deadline_s)
    except WaitTimeout as error:
        dead = [f"{n}: {testnet.log_tail(n)}" for n in names if not testnet.running_one(n)]
        testnet.kill_all()
        raise WaitTimeout(f"{error}" + (f"; exited: {'; '.join(dead)}" if dead else "")) from None
    except BaseException:
        testnet.kill_all()
        raise
    return UpResult(testnet, time.monotonic() - started, testnet.heights(names))
