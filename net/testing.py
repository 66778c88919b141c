"""Helpers for in-process tests: connect transports with memory streams, play a hostile peer."""

from __future__ import annotations

import trio
import trio.testing

from hedgerow.net.framing import FramedStream, frame
from hedgerow.net.handshake import HANDSHAKE_FRAME_BYTES_MAX
from hedgerow.net.messages import Auth, Hello
from hedgerow.net.secure import (
    Session,
    check_auth,
    derive_session,
    new_hello,
    sign_auth,
    transcript_hash,
)
from hedgerow.net.transport import Transport
from hedgerow.protocols.crypto import SigningKey, VerifyKey
from hedgerow.protocols.wire import decode, encode


def connect(dialer: Transport, listener: Transport) -> None:
    """Connect two running transports through an in-memory stream pair (`dialer` initiates)."""
    left, right = trio.testing.memory_stream_pair()
    dialer.add_stream(left, outbound=True, expected_peer=listener.node_id)
    listener.add_stream(right, outbound=False)


class ManualPeer:
    """A scripted peer that performs the initiator's handshake by hand, so tests can then send
    arbitrary (tampered, replayed, truncated...) bytes. `sign_with` forges the handshake signature."""

    def __init__(self, stream: trio.abc.Stream, key: SigningKey, chain_id: str, *,
                 sign_with: SigningKey | None = None) -> None:
        self.framed = FramedStream(stream, frame_bytes_max=HANDSHAKE_FRAME_BYTES_MAX)
        self.key = key
        self.chain_id = chain_id
        self.sign_with = sign_with or key
        self.session: Session | None = None

    async def handshake(self) -> Session:
        ephemeral, hello = new_hello(self.key, self.chain_id)
        await self.framed.send_all(frame(encode(hello)))
        peer_hello = decode(await self.framed.receive_frame(), expected=Hello)
        transcript = transcript_hash(hello, peer_hello)
        session = derive_session(ephemeral, peer_hello.ephemeral_key, transcript, initiator=True)
        peer_auth = decode(session.open(await self.framed.receive_frame()), expected=Auth)
        check_auth(VerifyKey(peer_hello.static_key), peer_auth, self.chain_id, transcript,
                   peer_initiator=False)
        auth = sign_auth(self.sign_with, self.chain_id, transcript, initiator=True)
        await self.framed.send_all(session.seal(encode(auth)))
        self.session = session
        return session

    def seal(self, message: object) -> bytes:
        """A complete sealed frame carrying `message`."""
        if self.session is None:
            raise RuntimeError("handshake first")
        return self.session.seal(encode(message))

    async def send_raw(self, data: bytes) -> None:
        await self.framed.send_all(data)
