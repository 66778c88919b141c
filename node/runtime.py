"""The actor runtime: one trio nursery per process, bounded inboxes, one-cancels-all, signals.

An actor is a named async function that owns its state and talks to others only through bounded
memory channels (`Mailbox`). `run_actors` starts them all under one nursery; the first actor that
raises cancels the rest (one-cancels-all) and `ActorCrashed` names it. SIGINT/SIGTERM cancel the
nursery too, after which the `shutdown` callbacks run (flush, fsync, close peers) and the process
exits 0 (SIGTERM) or 130 (SIGINT). An actor that returns normally simply ends; the node keeps going.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")


class ActorCrashed(Exception):
    """An actor raised: the node stops (non-zero exit) and restarts cleanly from disk."""

    def __init__(self, actor: str, error: BaseException) -> None:
        super().__init__(f"actor {actor} crashed: {type(error).__name__}: {error}")
        self.actor = actor
        self.error = error


class Mailbox(Generic[T]):
    """A bounded inbox: `send` waits when full (backpressure), `try_send` reports a full box."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError("an inbox needs room for at least one message")
        self.name = name
        self.size = size
        self.send_channel, self.receive_channel = trio.open_memory_channel[T](size)
        self.dropped = 0

    async def send(self, item: T) -> None:
        await self.send_channel.send(item)

    def try_send(self, item: T) -> bool:
        try:
            self.send_channel.send_nowait(item)
        except trio.WouldBlock:
            self.dropped += 1
            return False
        return True

    async def receive(self) -> T:
        return await self.receive_channel.receive()

    def receive_nowait(self) -> T:
        return self.receive_channel.receive_nowait()

    def pending(self) -> int:
        return int(self.receive_channel.statistics().current_buffer_used)


@dataclass
class Supervisor:
    """Holds the actors of one node process and runs them."""

    actors: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stop_signal: int | None = None
    _cancel: trio.CancelScope | None = None

    def add(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        if name in self.actors:
            raise ValueError(f"actor {name!r} registered twice")
        self.actors[name] = body

    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None:
        self.shutdown.append(callback)

    def stop(self) -> None:
        """Ask the node to stop gracefully (as on SIGTERM)."""
        if self._cancel is not None:
            self._cancel.cancel()

    async def run(self, *, handle_signals: bool = True, signals: Any = None) -> int:
        """Run until a signal, `stop()`, or a crash. Returns the exit code (0, 130); raises
        ActorCrashed when an actor failed (after the shutdown callbacks ran)."""
        crashed: list[ActorCrashed] = []
        try:
            with trio.CancelScope() as scope:
                self._cancel = scope
                async with trio.open_nursery() as nursery:
                    if signals is not None:
                        nursery.start_soon(self._watch, signals, scope)
                    elif handle_signals:
                        nursery.start_soon(self._watch_signals, scope)
                    for name, body in self.actors.items():
                        nursery.start_soon(_supervised, name, body, crashed, scope, name=f"actor:{name}")
        finally:
            with trio.CancelScope(shield=True):
                for callback in reversed(self.shutdown):
                    try:
                        await callback()
                    except Exception as error:  # noqa: BLE001 - keep closing the rest
                        crashed.append(ActorCrashed("shutdown", error))
        if crashed:
            raise crashed[0]
        return 130 if self.stop_signal == signal.SIGINT else 0

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await self._watch(signals, scope)

    async def _watch(self, signals: Any, scope: trio.CancelScope) -> None:
        """`signals`: a trio signal receiver opened by the caller (possibly before start-up work)."""
        async for signum in signals:
            self.stop_signal = signum
            scope.cancel()
            return


async def _supervised(name: str, body: Callable[[], Awaitable[None]], crashed: list[ActorCrashed],
                      scope: trio.CancelScope) -> None:
    try:
        await body()
    except trio.Cancelled:
        raise
    except Exception as error:  # noqa: BLE001 - one-cancels-all, the error is re-raised by run()
        crashed.append(ActorCrashed(name, _unwrap(error)))
        scope.cancel()


def _unwrap(error: BaseException) -> BaseException:
    """The single leaf of nested one-exception groups (nurseries inside actors), else the group."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def drain(mailbox: Mailbox[Any], first: Any, limit: int) -> list[Any]:
    """`first` plus whatever is already waiting in the mailbox, up to `limit` items (batching)."""
    items = [first]
    while len(items) < limit:
        try:
            items.append(mailbox.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return items
