"""The handshake over a framed trio stream (the cryptography is in `secure`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from hedgerow.net.errors import PeerProtocolError
from hedgerow.net.framing import FramedStream, frame
from hedgerow.net.messages import Auth, Hello
from hedgerow.net.secure import (
    Session,
    check_auth,
    check_hello,
    derive_session,
    new_hello,
    sign_auth,
    transcript_hash,
)
from hedgerow.protocols.crypto import SigningKey, VerifyKey
from hedgerow.protocols.wire import DecodeError, decode, encode

HANDSHAKE_FRAME_BYTES_MAX = 512
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    peer: VerifyKey
    session: Session


def _decode(body: bytes, expected: type[M]) -> M:
    try:
        message = decode(body, frame_bytes_max=HANDSHAKE_FRAME_BYTES_MAX, expected=expected)
    except DecodeError as error:
        raise PeerProtocolError("malformed", f"handshake: {error}") from None
    if not isinstance(message, expected):  # decode(expected=...) already guarantees it
        raise PeerProtocolError("malformed", f"handshake: expected {expected.__name__}")
    return message


async def run_handshake(framed: FramedStream, key: SigningKey, chain_id: str, *, initiator: bool,
                        expected_peer: bytes | None = None) -> HandshakeResult:
    """Authenticate both ends, in three strictly alternating flights (never both sending at once):
    I -> R Hello; R -> I Hello, Auth; I -> R Auth. Raises PeerProtocolError. The caller bounds it
    with a timeout, and raises the stream's frame cap afterwards (`framed.decoder.frame_bytes_max`)."""
    framed.decoder.frame_bytes_max = HANDSHAKE_FRAME_BYTES_MAX
    ephemeral, hello = new_hello(key, chain_id)
    if initiator:
        await framed.send_all(frame(encode(hello)))
    peer_hello = _decode(await framed.receive_frame(), Hello)
    peer = check_hello(peer_hello, chain_id=chain_id, own_id=key.node_id, expected_peer=expected_peer)
    if not initiator:
        await framed.send_all(frame(encode(hello)))
    transcript = transcript_hash(hello, peer_hello) if initiator else transcript_hash(peer_hello, hello)
    session = derive_session(ephemeral, peer_hello.ephemeral_key, transcript, initiator=initiator)
    own_auth = session.seal(encode(sign_auth(key, chain_id, transcript, initiator=initiator)))
    if not initiator:
        await framed.send_all(own_auth)
    auth = _decode(session.open(await framed.receive_frame()), Auth)
    check_auth(peer, auth, chain_id, transcript, peer_initiator=not initiator)
    if initiator:
        await framed.send_all(own_auth)
    return HandshakeResult(peer, session)
