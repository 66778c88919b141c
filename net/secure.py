"""The authenticated channel's cryptography, sans-IO: handshake pieces and the AEAD session.

Handshake (initiator I, responder R; `Hello` in clear, everything after encrypted):
    I -> R  Hello(version, chain_id, static_I, ephemeral_I)
    R -> I  Hello(version, chain_id, static_R, ephemeral_R)
    transcript = SHA-256(domain || encode(Hello_I) || encode(Hello_R))
    keys       = HKDF-SHA256(X25519(ephemeral_I, ephemeral_R), salt=transcript) -> k_I->R, k_R->I
    R -> I  Auth_R, then I -> R  Auth_I: the Ed25519 signature of [role, transcript] under the chain id,
            sealed with counter 0 (the initiator checks R's before it signs)
Sealed frame body: counter (8 bytes, big-endian) || ChaCha20-Poly1305(nonce = 0^4 || counter).
The receiver accepts exactly the next counter: a smaller one is a `replay`, a larger one `bad_counter`,
a failed tag `bad_mac`.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hedgerow.net.config import PROTOCOL_VERSION
from hedgerow.net.errors import PeerProtocolError
from hedgerow.net.framing import PREFIX_BYTES
from hedgerow.net.messages import Auth, Hello
from hedgerow.protocols.crypto import SigningKey, VerifyKey
from hedgerow.protocols.wire import encode

TRANSCRIPT_DOMAIN = b"hedgerow/handshake/transcript/v1"
AUTH_DOMAIN = "hedgerow/handshake/auth/v1"
KEYS_INFO = b"hedgerow/handshake/keys/v1"
COUNTER_BYTES = 8
TAG_BYTES = 16
SEAL_OVERHEAD = COUNTER_BYTES + TAG_BYTES
_NONCE_PAD = bytes(4)


def new_hello(key: SigningKey, chain_id: str) -> tuple[X25519PrivateKey, Hello]:
    """A fresh ephemeral key and the Hello announcing it."""
    ephemeral = X25519PrivateKey.generate()
    raw = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return ephemeral, Hello(PROTOCOL_VERSION, chain_id, key.public.raw, raw)


def check_hello(hello: Hello, *, chain_id: str, own_id: bytes, expected_peer: bytes | None) -> VerifyKey:
    """The peer's static key, after checking version, chain id and identity."""
    if hello.version != PROTOCOL_VERSION:
        raise PeerProtocolError("wrong_version", f"peer speaks v{hello.version}, we v{PROTOCOL_VERSION}")
    if hello.chain_id != chain_id:
        raise PeerProtocolError("wrong_chain", f"peer is on {hello.chain_id!r}, we on {chain_id!r}")
    peer = VerifyKey(hello.static_key)
    if peer.node_id == own_id:
        raise PeerProtocolError("self_connection")
    if expected_peer is not None and peer.node_id != expected_peer:
        raise PeerProtocolError("wrong_peer", f"dialled {expected_peer.hex()[:8]}, got {peer.short_id}")
    return peer


def transcript_hash(hello_initiator: Hello, hello_responder: Hello) -> bytes:
    return hashlib.sha256(TRANSCRIPT_DOMAIN + encode(hello_initiator) + encode(hello_responder)).digest()


def _role(initiator: bool) -> str:
    return "initiator" if initiator else "responder"


def sign_auth(key: SigningKey, chain_id: str, transcript: bytes, *, initiator: bool) -> Auth:
    return Auth(key.sign(AUTH_DOMAIN, chain_id, [_role(initiator), transcript]))


def check_auth(peer: VerifyKey, auth: Auth, chain_id: str, transcript: bytes, *,
               peer_initiator: bool) -> None:
    if not peer.verify(auth.signature, AUTH_DOMAIN, chain_id, [_role(peer_initiator), transcript]):
        raise PeerProtocolError("bad_signature", f"handshake signature of {peer.short_id} does not verify")


def derive_session(ephemeral: X25519PrivateKey, peer_ephemeral: bytes, transcript: bytes, *,
                   initiator: bool) -> Session:
    """Both directional keys from the X25519 secret; the initiator sends with the first."""
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(peer_ephemeral))
    except ValueError as error:  # low-order point: an all-zero shared secret
        raise PeerProtocolError("bad_key_exchange", str(error)) from None
    keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=transcript, info=KEYS_INFO).derive(shared)
    forward, backward = keys[:32], keys[32:]
    return Session(forward, backward) if initiator else Session(backward, forward)


class Session:
    """ChaCha20-Poly1305 in both directions with counter nonces. Sans-IO."""

    __slots__ = ("_seal", "_open", "sent", "received")

    def __init__(self, send_key: bytes, receive_key: bytes) -> None:
        self._seal = ChaCha20Poly1305(send_key)
        self._open = ChaCha20Poly1305(receive_key)
        self.sent = 0
        self.received = 0

    def seal(self, plaintext: bytes) -> bytes:
        """A complete frame (length prefix included) carrying `plaintext`."""
        counter = self.sent.to_bytes(COUNTER_BYTES, "big")
        self.sent += 1
        sealed = self._seal.encrypt(_NONCE_PAD + counter, plaintext, None)
        return (COUNTER_BYTES + len(sealed)).to_bytes(PREFIX_BYTES, "big") + counter + sealed

    def open(self, body: bytes) -> bytes:
        """The plaintext of one frame body, or PeerProtocolError (`short_frame`, `replay`, ...)."""
        if len(body) < SEAL_OVERHEAD:
            raise PeerProtocolError("short_frame", f"{len(body)} B")
        counter = int.from_bytes(body[:COUNTER_BYTES], "big")
        if counter != self.received:
            reason = "replay" if counter < self.received else "bad_counter"
            raise PeerProtocolError(reason, f"counter {counter}, expected {self.received}")
        try:
            plaintext = self._open.decrypt(_NONCE_PAD + body[:COUNTER_BYTES], body[COUNTER_BYTES:], None)
        except InvalidTag:
            raise PeerProtocolError("bad_mac", f"frame {counter} fails authentication") from None
        self.received += 1
        return plaintext
