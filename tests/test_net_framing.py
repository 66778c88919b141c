"""Sans-IO pieces of the transport: framing, the AEAD session, key agreement, backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgerow.net.backoff import Backoff
from hedgerow.net.errors import PeerProtocolError
from hedgerow.net.framing import FrameDecoder, frame
from hedgerow.net.secure import (
    SEAL_OVERHEAD,
    Session,
    check_auth,
    check_hello,
    derive_session,
    new_hello,
    sign_auth,
    transcript_hash,
)
from hedgerow.protocols.crypto import SigningKey


@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_frames_survive_any_chunking(bodies: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(body) for body in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder(frame_bytes_max=300)
    received: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received.extend(decoder.receive_data(stream[start:end]))
    assert received == bodies and decoder.buffered_bytes == 0


def test_oversized_prefix_is_refused_before_buffering() -> None:
    decoder = FrameDecoder(frame_bytes_max=100)
    assert decoder.receive_data(frame(b"x" * 100)) == [b"x" * 100]
    with pytest.raises(PeerProtocolError) as caught:
        decoder.receive_data((101).to_bytes(4, "big"))
    assert caught.value.reason == "frame_too_large"


def pair_of_sessions() -> tuple[Session, Session]:
    key_i, key_r = SigningKey.from_label("i"), SigningKey.from_label("r")
    eph_i, hello_i = new_hello(key_i, "chain")
    eph_r, hello_r = new_hello(key_r, "chain")
    transcript = transcript_hash(hello_i, hello_r)
    initiator = derive_session(eph_i, hello_r.ephemeral_key, transcript, initiator=True)
    responder = derive_session(eph_r, hello_i.ephemeral_key, transcript, initiator=False)
    check_auth(key_i.public, sign_auth(key_i, "chain", transcript, initiator=True), "chain", transcript,
               peer_initiator=True)
    with pytest.raises(PeerProtocolError, match="bad_signature"):  # a role cannot be reflected
        check_auth(key_i.public, sign_auth(key_i, "chain", transcript, initiator=True), "chain", transcript,
                   peer_initiator=False)
    return initiator, responder


def test_sessions_agree_in_both_directions_and_refuse_replay_and_tamper() -> None:
    initiator, responder = pair_of_sessions()
    for n in range(3):
        sealed = initiator.seal(b"hello %d" % n)
        assert len(sealed) == 4 + SEAL_OVERHEAD + len(b"hello %d" % n)
        assert responder.open(sealed[4:]) == b"hello %d" % n
        assert initiator.open(responder.seal(b"back")[4:]) == b"back"
    old = initiator.seal(b"x")[4:]
    responder.open(old)
    for body, reason in [(old, "replay"), (initiator.seal(b"y")[4:], None)]:
        if reason:
            with pytest.raises(PeerProtocolError, match=reason):
                responder.open(body)
    skipped = initiator.seal(b"z")[4:]
    with pytest.raises(PeerProtocolError, match="bad_counter"):
        responder.open(skipped)  # the "y" frame in between was never opened


def test_tampered_or_short_bodies() -> None:
    initiator, responder = pair_of_sessions()
    body = bytearray(initiator.seal(b"payload")[4:])
    body[-1] ^= 0x80
    with pytest.raises(PeerProtocolError, match="bad_mac"):
        responder.open(bytes(body))
    with pytest.raises(PeerProtocolError, match="short_frame"):
        responder.open(b"\x00" * (SEAL_OVERHEAD - 1))


def test_hello_checks() -> None:
    key = SigningKey.from_label("me")
    _, hello = new_hello(SigningKey.from_label("peer"), "chain")
    peer = check_hello(hello, chain_id="chain", own_id=key.node_id, expected_peer=None)
    assert peer.raw == hello.static_key
    for kwargs, reason in [
        ({"chain_id": "other"}, "wrong_chain"),
        ({"own_id": SigningKey.from_label("peer").node_id}, "self_connection"),
        ({"expected_peer": key.node_id}, "wrong_peer"),
    ]:
        args = {"chain_id": "chain", "own_id": key.node_id, "expected_peer": None, **kwargs}
        with pytest.raises(PeerProtocolError, match=reason):
            check_hello(hello, **args)  # type: ignore[arg-type]
    from dataclasses import replace

    with pytest.raises(PeerProtocolError, match="wrong_version"):
        check_hello(replace(hello, version=99), chain_id="chain", own_id=key.node_id, expected_peer=None)


def test_low_order_ephemeral_key_is_refused() -> None:
    eph, hello = new_hello(SigningKey.from_label("i"), "chain")
    with pytest.raises(PeerProtocolError, match="bad_key_exchange"):
        derive_session(eph, bytes(32), transcript_hash(hello, hello), initiator=True)


def test_backoff_is_exponential_jittered_and_capped() -> None:
    backoff = Backoff(base_s=0.1, max_s=2.0, rng=random.Random(0))
    for attempt in range(12):
        cap_s = min(2.0, 0.1 * 2**attempt)
        assert cap_s / 2 <= backoff.next_delay_s() <= cap_s
    backoff.reset()
    assert backoff.next_delay_s() <= 0.1
    delays = {round(Backoff(base_s=1, max_s=1, rng=random.Random(s)).next_delay_s(), 6) for s in range(20)}
    assert len(delays) > 10  # jittered
