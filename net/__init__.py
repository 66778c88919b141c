"""Hedgerow's transport: authenticated, encrypted, framed trio TCP between nodes, with fault injection.

The whole API a node runtime needs::

    from hedgerow.net import Transport, TransportConfig, FaultLayer

    transport = Transport(signing_key, chain_id="local", validators=genesis_node_ids,
                          config=TransportConfig(), faults=FaultLayer.from_config(toml["faults"]))
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.run)                  # owns every connection task
        host, port = await transport.listen("0.0.0.0", 26656)
        transport.dial_peers({node_id: (host, port), ...})   # lower id dials; reconnects forever
        await transport.send(peer_id, msg)                  # waits while the peer's queue is full
        transport.send_nowait(peer_id, msg)                 # or drops it, counted `queue_full`
        transport.broadcast(msg)                            # every connected validator, not self
        async for peer_id, msg in transport.inbox:          # decoded, validated @message objects
            ...
        transport.close()

* `send` does not yield while the peer's queue has room, and the reader hands all frames of one
  read to `inbox` without yielding: a consumer that wants throughput awaits one `inbox.receive()`
  and then drains with `inbox.receive_nowait()` until `trio.WouldBlock` (see bench/transport.py).
* Messages are `hedgerow.protocols.wire` classes; `send`/`broadcast` encode, the receiver decodes
  with the frame cap and `validate()`. A peer that sends anything malformed is disconnected.
* Peers are 20-byte node ids (SHA-256 of the Ed25519 key). Peers in `validators` are validators;
  any other key that completes the handshake is an observer (`PeerInfo.validator` is False,
  `broadcast` skips it unless `include_observers=True`), up to `observers_max`.
* `transport.peers()`, `is_connected(id)`, `await wait_connected(ids)`, `disconnect(id)`.
* `transport.stats` holds plain counters: `closed[reason]` (connections: `bad_mac`, `replay`,
  `wrong_chain`, `bad_signature`, `handshake_timeout`, `idle_timeout`, `frame_too_large`, ...),
  `dropped[reason]` (messages: `queue_full`, `not_connected`, `fault_injected`, ...), and `counts`.
* `transport.faults` is the seeded `FaultLayer`; change its rules at run time (`set_link`,
  `partition`, `cut`, `heal`, `clear`).
* In-process tests connect transports with memory streams: `hedgerow.net.testing.connect(a, b)`.

Wire format and handshake: see `hedgerow.net.secure`. Nothing here knows about consensus.
"""

from hedgerow.net.config import PROTOCOL_VERSION, TransportConfig, TransportStats
from hedgerow.net.errors import PeerProtocolError
from hedgerow.net.faults import ANY, FaultLayer, LinkFaults
from hedgerow.net.transport import Inbound, PeerInfo, Transport

__all__ = [
    "ANY",
    "PROTOCOL_VERSION",
    "FaultLayer",
    "Inbound",
    "LinkFaults",
    "PeerInfo",
    "PeerProtocolError",
    "Transport",
    "TransportConfig",
    "TransportStats",
]
