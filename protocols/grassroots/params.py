"""The genesis `grassroots` section (spec 8). These shape the app hash, so they never live in node.toml."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

CLOCKS = ("height", "timestamp")


@dataclass(frozen=True, slots=True)
class Params:
    """Ledger parameters; horizons are in days and scale by `ticks_per_day`."""

    chain_id: str = "hedgerow-local"
    clock: str = "height"
    ticks_per_day: int = 5
    max_tx_bytes: int = 4096
    max_lots: int = 16
    max_amount: int = 10**12
    max_maturity: int = 2**48
    max_offer_ttl: int = 10_000
    max_escrow_ttl: int = 1_000_000
    max_open_per_account: int = 64
    mempool_nonce_window: int = 16
    snapshot_interval: int = 100
    quick_horizon_days: int = 7
    current_horizon_days: int = 365

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"grassroots clock must be one of {CLOCKS}, got {self.clock!r}")
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name not in ("chain_id", "clock") and (type(value) is not int or value < 1):
                raise ValueError(f"grassroots {item.name} must be a positive integer, got {value!r}")

    @property
    def quick_horizon_ticks(self) -> int:
        return self.quick_horizon_days * self.ticks_per_day

    @property
    def current_horizon_ticks(self) -> int:
        return self.current_horizon_days * self.ticks_per_day

    @classmethod
    def from_genesis(cls, chain_id: str, section: dict[str, Any] | None) -> Params:
        """Build from genesis: `chain_id` plus the optional `grassroots` mapping (lower-case keys)."""
        section = dict(section or {})
        known = {item.name for item in fields(cls)} - {"chain_id"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown grassroots genesis keys: {', '.join(unknown)}")
        return cls(chain_id=chain_id, **section)

    def to_genesis(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name != "chain_id"}
