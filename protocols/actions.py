"""The actions every sans-IO core returns (DESIGN.md, core contract).

A core exposes `start(now)`, `on_message(sender, message, now)` and `on_timer(timer, now)`; each
returns a list of these actions, which the node (or the simulator) executes in order. A `Persist`
is always executed (written and fsynced) before any later `Send`/`Broadcast` of the same list.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to the replica with index `to`."""

    to: int
    message: Any


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send `message` to every replica, the sender included."""

    message: Any


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Arm (or re-arm) the named timer to fire at absolute time `at`, on the emitting core's clock
    and in its unit (MonadBFT: milliseconds; Heard-Of and the compute coordinators: seconds)."""

    timer: Hashable
    at: float


@dataclass(frozen=True, slots=True)
class Persist:
    """Durably record safety state before anything after it in the action list leaves."""

    record: Any


@dataclass(frozen=True, slots=True)
class Deliver:
    """A committed block, decision or result handed to the layer above."""

    value: Any


@dataclass(frozen=True, slots=True)
class Evidence:
    """A proof of misbehaviour that a third party can check."""

    proof: Any


Action = Send | Broadcast | SetTimer | Persist | Deliver | Evidence


class InvariantViolation(Exception):
    """Our own bug or a safety breach detected in local state: halt loudly (exit code 3)."""
