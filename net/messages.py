"""Transport messages (wire tags 1-19). Applications never see these."""

from __future__ import annotations

from dataclasses import dataclass

from hedgerow.protocols.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from hedgerow.protocols.wire import message

CHAIN_ID_CHARS_MAX = 64


@message(1)
@dataclass(frozen=True, slots=True)
class Hello:
    """First frame each way, in clear: who I am (static Ed25519 key) and my ephemeral X25519 key."""

    version: int
    chain_id: str
    static_key: bytes
    ephemeral_key: bytes

    def validate(self) -> None:
        if not 0 <= self.version < 2**16:
            raise ValueError("version out of range")
        if not 0 < len(self.chain_id) <= CHAIN_ID_CHARS_MAX:
            raise ValueError("chain id length out of range")
        if len(self.static_key) != PUBLIC_KEY_BYTES or len(self.ephemeral_key) != 32:
            raise ValueError("keys must be 32 bytes")


@message(2)
@dataclass(frozen=True, slots=True)
class Auth:
    """First encrypted frame each way: the Ed25519 signature of the handshake transcript."""

    signature: bytes

    def validate(self) -> None:
        if len(self.signature) != SIGNATURE_BYTES:
            raise ValueError("signature must be 64 bytes")


@message(3)
@dataclass(frozen=True, slots=True)
class Ping:
    """Keepalive, sent when nothing else was sent for `keepalive_interval_s`."""

    seq: int

    def validate(self) -> None:
        if self.seq < 0:
            raise ValueError("seq must be non-negative")


@message(9)
@dataclass(frozen=True, slots=True)
class Note:
    """A signed free-form payload for the demo and the transport benchmark."""

    seq: int
    body: bytes
    signature: bytes

    def validate(self) -> None:
        if self.seq < 0 or len(self.signature) not in (0, SIGNATURE_BYTES):
            raise ValueError("bad note")
