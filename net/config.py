"""Transport limits and timeouts, and the counters it keeps (plain dicts; the node exports them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hedgerow.protocols.wire import FRAME_BYTES_MAX_DEFAULT

PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Every queue, frame and wait of the transport has a limit here."""

    frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT  # plaintext message cap
    handshake_timeout_s: float = 5.0  # whole handshake, from accept/connect to authenticated
    connect_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0  # nothing received for this long: close (`idle_timeout`)
    keepalive_interval_s: float = 5.0  # nothing sent for this long: send a Ping
    write_timeout_s: float = 30.0  # a peer that stops reading is closed (`write_timeout`)
    send_queue_max: int = 1024  # frames waiting per connection
    inbox_max: int = 4096  # decoded messages waiting for the node
    observers_max: int = 64  # connections from peers outside the genesis validator set
    handshakes_max: int = 64  # handshakes in progress at once; more are refused (`handshakes_full`)
    accept_observers: bool = True
    reconnect_base_s: float = 0.1
    reconnect_max_s: float = 10.0
    write_batch_max: int = 256  # frames coalesced into one send
    receive_bytes: int = 64 * 1024
    seed: int | None = None  # reconnect jitter; None draws from the OS

    def __post_init__(self) -> None:
        if self.frame_bytes_max < 1024:
            raise ValueError("frame_bytes_max must be at least 1024")
        if not 0 < self.keepalive_interval_s < self.idle_timeout_s:
            raise ValueError("need 0 < keepalive_interval_s < idle_timeout_s")
        if min(self.send_queue_max, self.inbox_max, self.write_batch_max, self.handshakes_max) < 1 \
                or self.observers_max < 0:
            raise ValueError("queue sizes must be positive")
        if not 0 < self.reconnect_base_s <= self.reconnect_max_s:
            raise ValueError("need 0 < reconnect_base_s <= reconnect_max_s")
        if min(self.handshake_timeout_s, self.connect_timeout_s, self.write_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")


@dataclass(slots=True)
class TransportStats:
    """Counters by reason. `closed`: connections closed; `dropped`: messages not delivered or not
    sent; `counts`: everything else (frames_in, frames_out, bytes_in, bytes_out, handshakes_ok, ...)."""

    closed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"closed": dict(self.closed), "dropped": dict(self.dropped), "counts": dict(self.counts)}
