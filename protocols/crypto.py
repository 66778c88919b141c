"""Ed25519 identity and domain-separated signing, all through `cryptography`. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hedgerow.protocols.canonical import canonical_pack

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
NODE_ID_BYTES = 20


def node_id_of(public_key: bytes) -> bytes:
    """Node id: SHA-256 of the raw Ed25519 public key, truncated to 20 bytes."""
    return hashlib.sha256(public_key).digest()[:NODE_ID_BYTES]


def sign_bytes(domain: str, chain_id: str, payload: Any) -> bytes:
    """Domain tag || chain id || canonical msgpack of the payload (each part length-delimited)."""
    return canonical_pack([domain, chain_id]) + canonical_pack(payload)


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under the raw 32-byte
    `public_key`; never raises on bad input."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A raw 32-byte Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_BYTES:
            raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(self.raw)}")

    @property
    def node_id(self) -> bytes:
        return node_id_of(self.raw)

    @property
    def short_id(self) -> str:
        return self.node_id.hex()[:8]

    def verify_raw(self, signature: bytes, message: bytes) -> bool:
        """True when `signature` is valid for `message`; never raises on bad input."""
        return verify_signature(self.raw, signature, message)

    def verify(self, signature: bytes, domain: str, chain_id: str, payload: Any) -> bool:
        return self.verify_raw(signature, sign_bytes(domain, chain_id, payload))


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its public half."""

    seed: bytes = field(repr=False)
    _key: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    public: VerifyKey = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("Ed25519 seed must be 32 bytes")
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        object.__setattr__(self, "_key", key)
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        object.__setattr__(self, "public", VerifyKey(raw))

    @classmethod
    def generate(cls) -> SigningKey:
        key = Ed25519PrivateKey.generate()
        return cls(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption()))

    @classmethod
    def from_label(cls, label: str) -> SigningKey:
        """A deterministic key for simulations and tests (never for real deployments)."""
        return cls(hashlib.sha256(b"hedgerow-test-key:" + label.encode()).digest())

    @property
    def node_id(self) -> bytes:
        return self.public.node_id

    def sign_raw(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def sign(self, domain: str, chain_id: str, payload: Any) -> bytes:
        return self._key.sign(sign_bytes(domain, chain_id, payload))


def verify_batch(items: Iterable[tuple[VerifyKey, bytes, bytes]]) -> list[bool]:
    """Verify (key, message, signature) triples; one bool each. Ed25519 in `cryptography` has no
    true batch mode, so this is a tight loop with the public-key objects cached."""
    return [key.verify_raw(signature, message) for key, message, signature in items]


def all_valid(items: Sequence[tuple[VerifyKey, bytes, bytes]]) -> bool:
    return all(verify_batch(items))
