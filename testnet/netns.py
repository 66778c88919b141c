"""Several hosts on one machine: each node in its own Linux network namespace (iproute2).

Layout: a bridge `<tag>br` in the root namespace holds 10.A.B.1/24; node i lives in namespace
`<tag>-<name>` with `eth0` = 10.A.B.(10+i)/24, joined to the bridge by a veth pair whose host end
is `<tag>h<i>`. Node processes run under `ip netns exec`, listen on their own address, dial their
peers' addresses, and the runner reaches their RPC through the bridge. Faults then happen in the
kernel's network, not only in our fault layer:
- `cut(name)` / `uncut(name)`: the host end of the node's veth goes down / up (every link of that
  node is cut, in both directions, by the kernel);
- `netem(name, delay_ms, loss)`: `tc qdisc ... netem` on the node's veth (needs the kernel's
  sch_netem; `netem_available()` says whether this machine has it).

Needs root (CAP_NET_ADMIN); `netns_available()` says why not when it is refused. The layout is
recorded in DIR/netns.json, so `open_testnet(DIR)` finds it again; `teardown()` deletes it all.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hedgerow.node.rpc_client import RpcClient
from hedgerow.testnet.launcher import Testnet, pid_alive
from hedgerow.testnet.manifest import Manifest

LAYOUT_FILE = "netns.json"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def netns_available() -> tuple[bool, str]:
    """(True, "") when this process may create namespaces and veth pairs; else (False, why)."""
    if shutil.which("ip") is None:
        return False, "iproute2 `ip` is not installed"
    if os.geteuid() != 0:
        return False, "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"hrprobe{os.getpid() % 100000}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return False, f"`ip netns add` refused: {made.stderr.strip()}"
    try:
        veth = _ip("link", "add", f"{probe}a", "type", "veth", "peer", "name", f"{probe}b", check=False)
        if veth.returncode != 0:
            return False, f"`ip link add type veth` refused: {veth.stderr.strip()}"
        _ip("link", "del", f"{probe}a", check=False)
        return True, ""
    finally:
        _ip("netns", "del", probe, check=False)


def netem_available() -> tuple[bool, str]:
    """Whether `tc qdisc ... netem` works here (probed on a throwaway veth pair)."""
    if shutil.which("tc") is None:
        return False, "tc (iproute2) is not installed"
    link = f"hrnetem{os.getpid() % 10000}"
    made = _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p", check=False)
    if made.returncode != 0:
        return False, f"cannot create a veth pair to probe netem: {made.stderr.strip()}"
    try:
        done = subprocess.run(
            ["tc", "qdisc", "add", "dev", link, "root", "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return (
            (True, "")
            if done.returncode == 0
            else (False, f"tc netem refused: {done.stderr.strip()} (the kernel lacks sch_netem)")
        )
    finally:
        _ip("link", "del", link, check=False)


@dataclass
class Layout:
    tag: str
    subnet: str  # "10.A.B"
    names: list[str]

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def host_if(self, name: str) -> str:
        return f"{self.tag}h{self.names.index(name)}"

    def address(self, name: str) -> str:
        return f"{self.subnet}.{10 + self.names.index(name)}"

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"


def build(layout: Layout) -> None:
    """Create the bridge, one namespace per node and its veth pair (idempotence is not attempted)."""
    _ip("link", "add", layout.bridge, "type", "bridge")
    _ip("addr", "add", f"{layout.subnet}.1/24", "dev", layout.bridge)
    _ip("link", "set", layout.bridge, "up")
    for name in layout.names:
        ns, host = layout.ns(name), layout.host_if(name)
        _ip("netns", "add", ns)
        _ip("link", "add", host, "type", "veth", "peer", "name", f"{host}n")
        _ip("link", "set", f"{host}n", "netns", ns)
        _ip("-n", ns, "link", "set", f"{host}n", "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{layout.address(name)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "set", host, "master", layout.bridge)
        _ip("link", "set", host, "up")


def teardown(layout: Layout) -> None:
    for name in layout.names:
        _ip("link", "del", layout.host_if(name), check=False)
        _ip("netns", "del", layout.ns(name), check=False)
    _ip("link", "del", layout.bridge, check=False)


class NetnsTestnet(Testnet):
    """A Testnet whose nodes run in their own namespaces (process control is the same)."""

    layout: Layout

    def host(self, name: str) -> str:
        return self.layout.address(name)

    def start(self, name: str) -> int:
        rec = self.record(name)
        if rec.pid is not None and pid_alive(rec.pid):
            from hedgerow.node.errors import UsageError

            raise UsageError(f"{name} is already running (pid {rec.pid})")
        log_path = Path(rec.home) / "data" / "logs" / "node.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.layout.ns(name),
                    sys.executable,
                    "-m",
                    "hedgerow.node.run_main",
                    "--home",
                    rec.home,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._procs[name] = proc
        rec.pid = proc.pid
        rec.paused = False
        self.save()
        return proc.pid

    def client(self, name: str, timeout_s: float = 5.0) -> RpcClient:
        rec = self.record(name)
        return RpcClient.connect(
            self.host(name), rec.rpc_port, self._client_key, timeout_s, chain_id=self.chain_id
        )

    # -- kernel faults -----------------------------------------------------------------------------

    def cut(self, name: str) -> None:
        _ip("link", "set", self.layout.host_if(name), "down")

    def uncut(self, name: str) -> None:
        _ip("link", "set", self.layout.host_if(name), "up")

    def netem(self, name: str, delay_ms: float = 0.0, loss: float = 0.0) -> None:
        args = [
            "tc",
            "qdisc",
            "replace",
            "dev",
            self.layout.host_if(name),
            "root",
            "netem",
            "delay",
            f"{delay_ms:g}ms",
            "loss",
            f"{loss * 100:g}%",
        ]
        subprocess.run(args, capture_output=True, text=True, check=True, timeout=20)

    def teardown(self) -> None:
        self.kill_all()
        teardown(self.layout)


def _rewrite_addresses(testnet: Testnet, layout: Layout) -> None:
    """Point every listen address and peer entry of the homes at the nodes' namespace addresses."""
    owner = {}
    for name, rec in testnet.nodes.items():
        for port in (rec.p2p_port, rec.rpc_port, rec.metrics_port):
            owner[port] = name

    def swap(match: re.Match[str]) -> str:
        port = int(match.group(1))
        return f"{layout.address(owner[port])}:{port}" if port in owner else match.group(0)

    for rec in testnet.nodes.values():
        path = Path(rec.home) / "config" / "node.toml"
        path.write_text(re.sub(r"127\.0\.0\.1:(\d+)", swap, path.read_text()))


def create_netns(directory: Path, manifest: Manifest) -> NetnsTestnet:
    """Create the homes (as `Testnet.create`) and a namespace per node; nothing is started."""
    base = Testnet.create(directory, manifest)
    rng = random.Random(os.getpid() ^ hash(str(directory)))
    layout = Layout(
        f"hr{rng.randrange(16**4):04x}",
        f"10.{rng.randrange(100, 250)}.{rng.randrange(1, 250)}",
        list(base.nodes),
    )
    (Path(directory) / LAYOUT_FILE).write_text(json.dumps(asdict(layout), indent=2) + "\n")
    _rewrite_addresses(base, layout)
    testnet = NetnsTestnet(base.dir, base.nodes, base.chain_id)
    testnet.layout = layout
    try:
        build(layout)
    except subprocess.CalledProcessError as error:
        teardown(layout)
        raise OSError(f"building the namespaces failed: {error.stderr}") from None
    return testnet


def open_testnet(directory: Path) -> Testnet:
    """`Testnet.open`, or a NetnsTestnet when the directory records a namespace layout."""
    path = Path(directory) / LAYOUT_FILE
    base = Testnet.open(directory)
    if not path.exists():
        return base
    testnet = NetnsTestnet(base.dir, base.nodes, base.chain_id)
    raw: dict[str, Any] = json.loads(path.read_text())
    testnet.layout = Layout(**raw)
    return testnet
