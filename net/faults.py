"""Seeded fault injection per directed link: drop, delay (fixed + jitter), duplicate, reorder, partition.

Sans-IO: `plan(src, dst)` says what happens to one message on that link, as the list of delays (s)
of the copies to send (empty: dropped). The transport applies plans on the sending side, and also
checks `allows(src, dst)` on the receiving side, so a partition configured on either end of a link
cuts it exactly. Each link draws from its own RNG seeded by (seed, src, dst): the same seed and the
same sequence of messages per link give the same plans, whatever the interleaving across links.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANY = b"*"  # wildcard node id in link rules


@dataclass(frozen=True, slots=True)
class LinkFaults:
    drop: float = 0.0  # probability a message is lost
    delay_s: float = 0.0  # fixed delay
    jitter_s: float = 0.0  # plus uniform [0, jitter_s]
    duplicate: float = 0.0  # probability a second copy is sent (with its own jitter)
    reorder: float = 0.0  # probability a message is held back by uniform [0, reorder_window_s]
    reorder_window_s: float = 0.05

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1]")
        if min(self.delay_s, self.jitter_s, self.reorder_window_s) < 0:
            raise ValueError("delays must be non-negative")

    @property
    def is_noop(self) -> bool:
        return self == LinkFaults()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> LinkFaults:
        allowed = {"drop", "delay_s", "jitter_s", "duplicate", "reorder", "reorder_window_s"}
        unknown = set(table) - allowed - {"src", "dst"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        return cls(**{key: float(value) for key, value in table.items() if key in allowed})


class FaultLayer:
    """The fault rules of one node. Disabled (and free) until a rule or partition is set."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.counters: Counter[str] = Counter()
        self._rules: dict[tuple[bytes, bytes], LinkFaults] = {}
        self._cut: set[tuple[bytes, bytes]] = set()
        self._rngs: dict[tuple[bytes, bytes], random.Random] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._rules or self._cut)

    # -- rules ---------------------------------------------------------------------------------
    def set_link(self, src: bytes, dst: bytes, faults: LinkFaults) -> None:
        """Rule for messages src -> dst (either may be ANY); exact links win over wildcards."""
        if faults.is_noop:
            self._rules.pop((src, dst), None)
        else:
            self._rules[(src, dst)] = faults

    def cut(self, src: bytes, dst: bytes) -> None:
        """One-way partition: nothing from src reaches dst."""
        self._cut.add((src, dst))

    def partition(self, side_a: Iterable[bytes], side_b: Iterable[bytes], *, symmetric: bool = True) -> None:
        """Cut every link from side_a to side_b (and back when symmetric)."""
        side_b = list(side_b)
        for a in side_a:
            for b in side_b:
                self.cut(a, b)
                if symmetric:
                    self.cut(b, a)

    def heal(self) -> None:
        """Remove every partition (link rules stay)."""
        self._cut.clear()

    def clear(self) -> None:
        """Remove every rule and partition."""
        self._cut.clear()
        self._rules.clear()

    # -- decisions -----------------------------------------------------------------------------
    def allows(self, src: bytes, dst: bytes) -> bool:
        return (src, dst) not in self._cut

    def rule(self, src: bytes, dst: bytes) -> LinkFaults | None:
        for key in ((src, dst), (src, ANY), (ANY, dst), (ANY, ANY)):
            faults = self._rules.get(key)
            if faults is not None:
                return faults
        return None

    def plan(self, src: bytes, dst: bytes) -> tuple[float, ...]:
        """Delays (s) of the copies of one message src -> dst; () when it is dropped."""
        if (src, dst) in self._cut:
            self.counters["partition"] += 1
            return ()
        faults = self.rule(src, dst)
        if faults is None:
            return (0.0,)
        rng = self._rng(src, dst)
        if rng.random() < faults.drop:
            self.counters["drop"] += 1
            return ()
        copies = 2 if rng.random() < faults.duplicate else 1
        if copies == 2:
            self.counters["duplicate"] += 1
        delays = []
        for _ in range(copies):
            delay_s = faults.delay_s + (rng.uniform(0.0, faults.jitter_s) if faults.jitter_s else 0.0)
            if rng.random() < faults.reorder:
                self.counters["reorder"] += 1
                delay_s += rng.uniform(0.0, faults.reorder_window_s)
            delays.append(delay_s)
        return tuple(delays)

    def _rng(self, src: bytes, dst: bytes) -> random.Random:
        rng = self._rngs.get((src, dst))
        if rng is None:
            rng = self._rngs[(src, dst)] = random.Random(f"{self.seed}:{src.hex()}:{dst.hex()}")
        return rng

    # -- config --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> FaultLayer:
        """From a `[faults]` table: `seed`, `enabled`, `[[faults.link]]` entries with `src`/`dst` (hex
        node ids or "*") and LinkFaults keys, and `[[faults.partition]]` entries with `a`, `b` (lists of
        hex ids) and `symmetric`. Raises ValueError on anything unknown."""
        unknown = set(table) - {"seed", "enabled", "link", "partition"}
        if unknown:
            raise ValueError(f"unknown [faults] keys: {sorted(unknown)}")
        layer = cls(seed=int(table.get("seed", 0)))
        if not table.get("enabled", True):
            return layer
        for link in table.get("link", []):
            src, dst = _node(link.get("src", "*")), _node(link.get("dst", "*"))
            layer.set_link(src, dst, LinkFaults.from_mapping(link))
        for cut in table.get("partition", []):
            layer.partition([_node(x) for x in cut["a"]], [_node(x) for x in cut["b"]],
                            symmetric=bool(cut.get("symmetric", True)))
        return layer


def _node(text: str) -> bytes:
    return ANY if text == "*" else bytes.fromhex(text)
