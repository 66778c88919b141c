"""Fault control inside a testnet node process (issue 9): Byzantine behaviour, run-time fault rules,
clock skew. `hedgerow run` calls `install(node)` when the home's `node.toml` has a `[perturb]` or a
`[byzantine]` table (the launcher writes `[perturb] rpc = true` into testnet homes; a production
home has neither, so none of this is reachable there).

- `[byzantine] flags = ["equivocate" | "tail-fork" | "double-vote" | "mute" | "garbage", ...]`:
  the honest MonadBFT core is wrapped with the wrappers of `testnet/sim/byzantine.py` (the same
  ones the simulator uses), signing with the validator's real key. `mute` signs and sends nothing
  (a crashed-but-running validator); `garbage` also sends an undecodable (but correctly encrypted)
  frame to every peer after each broadcast.
- RPC `faults` `{table}`: replace the node's fault layer (`net/faults.py`) with
  `FaultLayer.from_config(table)` while it runs (no restart); returns the old layer's counters.
- RPC `clock_skew` `{offset_ms, rate}`: from now on the consensus clock (block timestamps, timer
  deadlines) reads `real + offset_ms + (rate - 1) * (real - t_set)`; `{0, 1.0}` restores it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hedgerow.protocols.actions import Broadcast, Send

BYZANTINE_FLAGS = ("equivocate", "tail-fork", "double-vote", "mute", "garbage")
GARBAGE_BYTES = 64


class SkewedClock:
    """Wall-clock milliseconds with an adjustable offset and rate (continuous at each change)."""

    def __init__(self) -> None:
        self.offset_ms = 0.0
        self.rate = 1.0
        self._set_at = time.time()

    def set(self, offset_ms: float, rate: float) -> None:
        if not 0.1 <= rate <= 10.0:
            raise ValueError(f"clock rate must be in [0.1, 10], got {rate}")
        self.offset_ms = float(offset_ms)
        self.rate = float(rate)
        self._set_at = time.time()

    def now_ms(self) -> int:
        real = time.time()
        return int(real * 1000 + self.offset_ms + (self.rate - 1.0) * (real - self._set_at) * 1000)


CLOCK = SkewedClock()


def check_flags(flags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [f for f in flags if f not in BYZANTINE_FLAGS]
    if unknown:
        raise ValueError(f"unknown byzantine flags {unknown} (have: {', '.join(BYZANTINE_FLAGS)})")
    return tuple(flags)


def wrap_core(core: Any, flags: tuple[str, ...], validators: int) -> Any:
    """The honest core wrapped by each flag's behaviour (innermost first)."""
    from hedgerow.testnet.sim.byzantine import DoubleVoter, Equivocator, TailForker, Wrapper

    class Mute(Wrapper):
        name = "mute"

        def outgoing(self, actions: list[Any], now: int) -> list[Any]:
            return [a for a in actions if not isinstance(a, Send | Broadcast)]

    others = tuple(i for i in range(validators) if i != core.index)
    half = (len(others) + 1) // 2
    for flag in flags:
        if flag == "equivocate":
            core = Equivocator(core, first=others[:half], second=others[half:])
        elif flag == "tail-fork":
            core = TailForker(core)
        elif flag == "double-vote":
            core = DoubleVoter(core)
        elif flag == "mute":
            core = Mute(core)
    return core


def _add_garbage(transport: Any) -> None:
    honest_broadcast = transport.broadcast

    def broadcast(message: Any, *, include_observers: bool = False) -> int:
        sent = int(honest_broadcast(message, include_observers=include_observers))
        for peer in list(transport.peers()):
            transport.send_encoded_nowait(peer, os.urandom(GARBAGE_BYTES))
        return sent

    transport.broadcast = broadcast


def control_handlers(node: Any) -> dict[str, Any]:
    from hedgerow.net.faults import FaultLayer

    async def faults(params: dict[str, Any]) -> Any:
        driver = node.consensus
        if driver is None or not hasattr(driver, "transport"):
            raise ValueError("this node has no transport to inject faults into")
        old = driver.transport.faults
        if "table" in params:
            driver.transport.faults = FaultLayer.from_config(dict(params["table"] or {}))
        return {"counters": dict(old.counters), "enabled": bool(driver.transport.faults.enabled)}

    async def clock_skew(params: dict[str, Any]) -> Any:
        CLOCK.set(float(params.get("offset_ms", 0)), float(params.get("rate", 1.0)))
        return {"now_ms": CLOCK.now_ms(), "offset_ms": CLOCK.offset_ms, "rate": CLOCK.rate}

    return {"faults": faults, "clock_skew": clock_skew}


def install(node: Any) -> None:
    """Wire the testnet fault controls into a `Node` before it runs (one node per process)."""
    from hedgerow.node import consensus
    from hedgerow.node.errors import ConfigError

    section = node.config.raw.get("byzantine") or {}
    try:
        flags = check_flags(list(section.get("flags", [])) if isinstance(section, dict) else [])
    except ValueError as error:
        raise ConfigError(f"[byzantine] in node.toml: {error}") from None
    clock = node.config.raw.get("clock") or {}
    if isinstance(clock, dict) and clock:
        CLOCK.set(float(clock.get("offset_ms", 0)), float(clock.get("rate", 1.0)))
    consensus.now_ms = CLOCK.now_ms  # the consensus actor and timers read the clock through it
    honest_build = consensus.ConsensusDriver.build_core

    async def build_core(self: Any) -> None:
        await honest_build(self)
        if flags:
            self.core = wrap_core(self.core, flags, len(self.node_ids))
            if "garbage" in flags:
                _add_garbage(self.transport)
            print(f"event=byzantine name={self.node.config.name} flags={','.join(flags)}", flush=True)

    setattr(consensus.ConsensusDriver, "build_core", build_core)  # noqa: B010 - one node per process
    honest_handlers = node.rpc_handlers
    setattr(node, "rpc_handlers", lambda: {**honest_handlers(), **control_handlers(node)})  # noqa: B010
