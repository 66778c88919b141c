"""Perturbations on a live testnet's real processes (issue 9), one call per timeline step.

Process faults are signals: `kill` (SIGKILL), `restart` (start again from its home), `pause`
(SIGSTOP), `resume` (SIGCONT), `stop` (SIGTERM). Network faults go through every node's fault layer
(`net/faults.py`) at run time over the `faults` RPC (`testnet/perturb_node.py`): the runner keeps
one table of link rules and partitions for the whole testnet and pushes it to every running node
after each change (and again to a node it restarts), so `partition` (symmetric or one-way),
`delay`/`drop`/`link` per directed link and `heal` act without restarting anything. `clock_skew`
shifts a node's consensus clock. `byzantine` restarts a validator with misbehaviour flags in its
`node.toml` (removed again by `restore`). `garbage` connects to nodes' p2p ports as an
unauthenticated stranger and sends malformed frames.

After each process action the runner waits on a condition with a deadline (RPC answering, height
advanced), never a fixed sleep; a missed deadline is reported as the step's outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.node.errors import UsageError
from hedgerow.protocols.crypto import node_id_of
from hedgerow.testnet.launcher import Testnet, WaitTimeout, pid_alive, wait_until

BYZ_BEGIN = "# -- hedgerow scenario byzantine flags (removed when the scenario restores the node) --"
BYZ_END = "# -- end of hedgerow scenario byzantine flags --"
BYZANTINE_FILE = "byzantine.json"  # names ever run with flags here: exempt from honest signer checks
LINK_KEYS = ("drop", "delay_ms", "jitter_ms", "duplicate", "reorder")


@dataclass
class FaultTable:
    """The testnet-wide fault rules, by node name (turned into hex node ids when pushed)."""

    seed: int = 0
    links: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    cuts: set[tuple[str, str]] = field(default_factory=set)

    def as_config(self, ids: dict[str, str]) -> dict[str, Any]:
        def ident(name: str) -> str:
            return "*" if name == "*" else ids[name]

        links = []
        for (src, dst), rule in sorted(self.links.items()):
            entry: dict[str, Any] = {"src": ident(src), "dst": ident(dst)}
            for key, value in rule.items():
                entry[key[:-3] + "_s" if key.endswith("_ms") else key] = (
                    value / 1000 if key.endswith("_ms") else value
                )
            links.append(entry)
        parts = [{"a": [ident(a)], "b": [ident(b)], "symmetric": False} for a, b in sorted(self.cuts)]
        return {"seed": self.seed, "link": links, "partition": parts}

    @property
    def empty(self) -> bool:
        return not self.links and not self.cuts


class Perturber:
    """Applies perturbations to one testnet and remembers what it must undo."""

    def __init__(self, testnet: Testnet, *, seed: int = 0, wait_s: float = 60.0) -> None:
        self.testnet = testnet
        self.table = FaultTable(seed=seed)
        self.wait_s = wait_s
        self.ids = {
            name: node_id_of(bytes.fromhex(rec.public_key)).hex() for name, rec in testnet.nodes.items()
        }
        self.byzantine: dict[str, list[str]] = {}
        self.skewed: set[str] = set()
        self.labels: dict[str, str] = {}
        self.kernel_cuts: set[str] = set()

    # -- naming ------------------------------------------------------------------------------------

    def resolve(self, selector: str) -> str:
        """A node name, a label set by an earlier step, or `leader` (the current leader)."""
        if selector in self.labels:
            return self.labels[selector]
        if selector == "leader":
            return self.current_leader()
        self.testnet.record(selector)
        return selector

    def current_leader(self) -> str:
        for name in self.running():
            try:
                info = self.testnet.call(name, "status", timeout_s=2.0)
            except (OSError, Exception):  # noqa: BLE001 - try the next node
                continue
            leader = info.get("leader")
            if leader is None:
                continue
            for other in self.running():
                other_info = self.testnet.call(other, "status", timeout_s=2.0)
                if other_info.get("index") == leader:
                    return other
        raise UsageError("no running node could name the current leader")

    def running(self) -> list[str]:
        return [
            n
            for n, r in self.testnet.nodes.items()
            if r.pid is not None and not r.paused and pid_alive(r.pid)
        ]

    def height(self, name: str) -> int:
        return int(self.testnet.call(name, "status", timeout_s=2.0)["height"])

    # -- process faults ----------------------------------------------------------------------------

    def kill(self, name: str) -> str:
        self.testnet.kill(name)
        return f"SIGKILL {name}"

    def stop(self, name: str) -> str:
        code = self.testnet.stop(name)
        return f"SIGTERM {name} (exit {code})"

    def restart(self, name: str) -> str:
        """Start a stopped or killed node and wait until it commits past the others' height then."""
        rec = self.testnet.record(name)
        if rec.pid is not None and pid_alive(rec.pid):
            self.testnet.stop(name)
        target = max([self._safe_height(n) for n in self.running()] + [0])
        self.testnet.start(name)
        wait_until(lambda: self._push_one(name), self.wait_s, f"{name} to answer RPC")
        wait_until(lambda: self.height(name) > target, self.wait_s, f"{name} to commit past height {target}")
        return f"restarted {name}, caught up past height {target}"

    def pause(self, name: str) -> str:
        self.testnet.pause(name)
        return f"SIGSTOP {name}"

    def resume(self, name: str) -> str:
        self.testnet.resume(name)
        before = self._safe_height(name)
        wait_until(lambda: self.height(name) > before, self.wait_s, f"{name} to commit after resume")
        return f"SIGCONT {name}, committed past height {before}"

    def _safe_height(self, name: str) -> int:
        try:
            return self.height(name)
        except (OSError, Exception):  # noqa: BLE001 - a node under a fault may not answer
            return 0

    # -- network faults ----------------------------------------------------------------------------

    def partition(self, groups: list[list[str]], one_way: bool = False) -> str:
        """Cut every link between different groups (only from earlier to later groups when one-way)."""
        for i, side_a in enumerate(groups):
            for side_b in groups[i + 1 :]:
                for a in side_a:
                    for b in side_b:
                        self.table.cuts.add((a, b))
                        if not one_way:
                            self.table.cuts.add((b, a))
        self.push()
        arrow = " -/-> " if one_way else " | "
        return "partition " + arrow.join("{" + ",".join(g) + "}" for g in groups)

    def link(self, src: str, dst: str, rule: dict[str, float], both_ways: bool = False) -> str:
        for key in rule:
            if key not in LINK_KEYS:
                raise UsageError(f"unknown link fault {key!r} (have: {', '.join(LINK_KEYS)})")
        pairs = [(src, dst)] + ([(dst, src)] if both_ways else [])
        for pair in pairs:
            self.table.links[pair] = dict(rule)
        self.push()
        what = ", ".join(f"{k}={v}" for k, v in rule.items())
        return f"link {src}{' <-> ' if both_ways else ' -> '}{dst}: {what}"

    def heal(self) -> str:
        self.table.cuts.clear()
        self.table.links.clear()
        self.push()
        return "healed every partition and link fault"

    def push(self) -> None:
        """Send the current table to every running node (a node that cannot be reached gets it when
        it is restarted through `restart`)."""
        for name in self.running():
            with contextlib.suppress(OSError, Exception):
                self._push_one(name)

    def _push_one(self, name: str) -> bool:
        self.testnet.call(name, "faults", timeout_s=2.0, table=self.table.as_config(self.ids))
        return True

    def clock_skew(self, name: str, offset_ms: float, rate: float = 1.0) -> str:
        self.testnet.call(name, "clock_skew", timeout_s=2.0, offset_ms=offset_ms, rate=rate)
        if offset_ms or rate != 1.0:
            self.skewed.add(name)
        else:
            self.skewed.discard(name)
        return f"clock of {name}: offset {offset_ms:+.0f} ms, rate {rate}"

    def garbage(self, names: list[str], frames: int = 20) -> str:
        """Connect to each node's p2p port as a stranger and write malformed frames."""
        sent = 0
        for name in names:
            port = self.testnet.record(name).p2p_port
            host = self.testnet.host(name) if hasattr(self.testnet, "host") else "127.0.0.1"
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2) as sock:
                for _ in range(frames):
                    sock.sendall(len(body := os.urandom(48)).to_bytes(4, "big") + body)
                    sent += 1
                sock.sendall(b"\xff\xff\xff\xff")  # a length past the cap
        return f"{sent} malformed frames to {', '.join(names)} from an unauthenticated peer"

    # -- kernel faults (testnets in network namespaces) -------------------------------------------

    def _kernel(self) -> Any:
        if not hasattr(self.testnet, "cut"):
            raise UsageError("kernel faults need a testnet in network namespaces (--netns)")
        return self.testnet

    def kernel_cut(self, name: str) -> str:
        self._kernel().cut(name)
        self.kernel_cuts.add(name)
        return f"{name}'s veth down: every link of {name} cut in the kernel"

    def kernel_heal(self, name: str) -> str:
        self._kernel().uncut(name)
        self.kernel_cuts.discard(name)
        return f"{name}'s veth up again"

    def netem(self, name: str, delay_ms: float, loss: float) -> str:
        self._kernel().netem(name, delay_ms, loss)
        return f"tc netem on {name}'s veth: delay {delay_ms:g} ms, loss {loss:.0%}"

    # -- byzantine ---------------------------------------------------------------------------------

    def make_byzantine(self, name: str, flags: list[str]) -> str:
        from hedgerow.testnet.perturb_node import check_flags

        check_flags(flags)
        rec = self.testnet.record(name)
        if rec.role != "validator":
            raise UsageError(f"{name} is not a validator")
        self._note_byzantine(name)
        self.testnet.stop(name)
        path = Path(rec.home) / "config" / "node.toml"
        block = [BYZ_BEGIN, "[byzantine]", f"flags = {json.dumps(flags)}", BYZ_END, ""]
        path.write_text(_strip(path.read_text()).rstrip("\n") + "\n\n" + "\n".join(block))
        self.byzantine[name] = list(flags)
        self.testnet.start(name)
        wait_until(lambda: self._push_one(name), self.wait_s, f"{name} ({','.join(flags)}) to answer RPC")
        return f"restarted {name} as byzantine: {', '.join(flags)}"

    def _note_byzantine(self, name: str) -> None:
        path = self.testnet.dir / BYZANTINE_FILE
        names = set(json.loads(path.read_text())) if path.exists() else set()
        names.add(name)
        path.write_text(json.dumps(sorted(names)) + "\n")

    # -- undo --------------------------------------------------------------------------------------

    def restore(self) -> list[str]:
        """Undo what the scenario left behind: faults, clocks, pauses, byzantine flags, dead nodes."""
        done = []
        for name, rec in self.testnet.nodes.items():
            if rec.paused:
                self.testnet.resume(name)
                done.append(f"resumed {name}")
        for name in sorted(self.kernel_cuts):
            self.kernel_heal(name)
            done.append(f"{name}'s veth up")
        if not self.table.empty:
            self.heal()
            done.append("healed")
        for name in sorted(self.skewed):
            with contextlib.suppress(OSError, Exception):
                self.clock_skew(name, 0, 1.0)
                done.append(f"clock of {name} restored")
        for name in sorted(self.byzantine):
            path = Path(self.testnet.record(name).home) / "config" / "node.toml"
            path.write_text(_strip(path.read_text()))
            self.testnet.stop(name)
            self.testnet.start(name)
            done.append(f"restarted {name} honest")
        self.byzantine.clear()
        for name, rec in self.testnet.nodes.items():
            if rec.role == "validator" and (rec.pid is None or not pid_alive(rec.pid)):
                self.testnet.start(name)
                done.append(f"started {name}")
        for name in self.running():
            with contextlib.suppress(WaitTimeout):
                wait_until(lambda n=name: self._push_one(n), self.wait_s, f"{name} to answer RPC")  # type: ignore[misc]
        live = [n for n in self.running() if self.testnet.record(n).role == "validator"]
        top = max([self._safe_height(n) for n in live] + [0])
        try:
            wait_until(
                lambda: all(self._safe_height(n) > top for n in live),
                2 * self.wait_s,
                f"every validator to commit past height {top}",
            )
            done.append(f"every validator committing again past height {top}")
        except WaitTimeout as error:
            done.append(f"not committing again yet: {error}")
        return done


def previously_byzantine(directory: Path) -> set[str]:
    path = Path(directory) / BYZANTINE_FILE
    return set(json.loads(path.read_text())) if path.exists() else set()


def _strip(text: str) -> str:
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if line.strip() == BYZ_BEGIN:
            inside = True
            continue
        if inside:
            inside = line.strip() != BYZ_END
            continue
        out.append(line)
    return "".join(out).rstrip("\n") + "\n"


def monotonic_ms() -> int:
    return int(time.time() * 1000)
