"""Errors by owner in the transport: a misbehaving or broken peer, never our own bug."""

from __future__ import annotations


class PeerProtocolError(Exception):
    """The peer sent something we refuse (or vanished): close that one connection and count `reason`.

    `reason` is a short stable name used as the counter key (`bad_mac`, `replay`, `wrong_chain`, ...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
