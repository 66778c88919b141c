"""A timer heap that releases payloads at their due time (for delayed, duplicated, reordered frames)."""

from __future__ import annotations

import heapq
from collections.abc import Callable

import trio


class DelayLine:
    """`push(delay_s, peer, payload)`; `run()` calls `release(peer, payload)` when each is due, in due
    order (ties in push order). Bounded by `entries_max`: beyond it a push is refused."""

    def __init__(self, release: Callable[[bytes, bytes], None], *, entries_max: int) -> None:
        self._release = release
        self._entries_max = entries_max
        self._heap: list[tuple[float, int, bytes, bytes]] = []
        self._seq = 0
        self._wakeup = trio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, delay_s: float, peer: bytes, payload: bytes) -> bool:
        if len(self._heap) >= self._entries_max:
            return False
        self._seq += 1
        heapq.heappush(self._heap, (trio.current_time() + delay_s, self._seq, peer, payload))
        self._wakeup.set()
        return True

    async def run(self) -> None:
        while True:
            wakeup = self._wakeup
            if not self._heap:
                await wakeup.wait()
            else:
                with trio.move_on_at(self._heap[0][0]):
                    await wakeup.wait()
            if wakeup.is_set():
                self._wakeup = trio.Event()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, peer, payload = heapq.heappop(self._heap)
                self._release(peer, payload)
