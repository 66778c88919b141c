"""What a submission waits on: the mempool's verdicts, then its txs' speculative and final marks.

One `WaitGroup` per RPC submission (a single tx or a batch): two events that fire when every tx
the submission waits on has been marked, so a batch of thousands costs two events, not two per tx.
A `TxWaiter` per waited tx records when it was admitted, voted (speculative) and finalized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import trio


@dataclass(slots=True)
class WaitGroup:
    """Counts the txs of one submission still to reach each stage."""

    speculative_left: int = 0
    final_left: int = 0
    speculative: trio.Event = field(default_factory=trio.Event)
    final: trio.Event = field(default_factory=trio.Event)

    def expect(self, count: int) -> None:
        self.speculative_left += count
        self.final_left += count
        self._fire()

    def _fire(self) -> None:
        if self.speculative_left <= 0:
            self.speculative.set()
        if self.final_left <= 0:
            self.final.set()

    def reached_speculative(self) -> None:
        self.speculative_left -= 1
        self._fire()

    def reached_final(self) -> None:
        self.final_left -= 1
        self._fire()

    def forget(self, waiter: TxWaiter) -> None:
        """Stop waiting for this tx (it was not admitted)."""
        if waiter.speculative_at is None:
            self.speculative_left -= 1
        if waiter.final_at is None:
            self.final_left -= 1
        self._fire()


@dataclass(slots=True)
class TxWaiter:
    group: WaitGroup
    admitted_at: float = field(default_factory=time.monotonic)
    speculative_at: float | None = None
    final_at: float | None = None
    height: int | None = None
    result: Any = None

    def mark_speculative(self) -> None:
        if self.speculative_at is None:
            self.speculative_at = time.monotonic()
            self.group.reached_speculative()

    def mark_final(self, height: int, result: Any) -> None:
        if self.final_at is not None:
            return
        self.mark_speculative()
        self.height, self.result = height, result
        self.final_at = time.monotonic()
        self.group.reached_final()

    @property
    def status(self) -> str:
        return "final" if self.final_at is not None else \
            "speculative" if self.speculative_at is not None else "pending"

    def latencies_ms(self) -> dict[str, float | None]:
        def since(at: float | None) -> float | None:
            return None if at is None else round((at - self.admitted_at) * 1000, 3)

        return {"speculative_ms": since(self.speculative_at), "final_ms": since(self.final_at)}


class Verdicts:
    """The mempool's answers to one submission, one per tx, in order (set once, as a list)."""

    __slots__ = ("event", "values")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.values: list[str] = []

    def set(self, values: list[str]) -> None:
        self.values = values
        self.event.set()
