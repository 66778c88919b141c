"""The transport over real loopback TCP: listen, dial the genesis peers, talk, reconnect."""

from __future__ import annotations

import trio

from hedgerow.net import Transport, TransportConfig
from hedgerow.net.messages import Note
from hedgerow.protocols.crypto import SigningKey

CHAIN = "tcp-chain"


async def test_three_nodes_over_loopback_tcp_with_reconnect() -> None:
    keys = [SigningKey.from_label(f"tcp-{i}") for i in range(3)]
    validators = [key.node_id for key in keys]
    config = TransportConfig(reconnect_base_s=0.05, reconnect_max_s=0.2, seed=0)
    nodes = [Transport(key, chain_id=CHAIN, validators=validators, config=config) for key in keys]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for node in nodes:
                await nursery.start(node.run)
            addresses = {node.node_id: await node.listen("127.0.0.1", 0) for node in nodes}
            dialled = [node.dial_peers(addresses) for node in nodes]
            assert sum(len(d) for d in dialled) == 3  # one connection per pair: the lower id dials
            for node in nodes:
                await node.wait_connected([n.node_id for n in nodes if n is not node])
            for sender in nodes:
                assert sender.broadcast(Note(1, sender.node_id, b"")) == 2
            for node in nodes:
                got = {(await node.inbox.receive()).peer for _ in range(2)}
                assert got == {n.node_id for n in nodes if n is not node}
            big = Note(2, b"\x5a" * 1_000_000, b"")
            assert await nodes[0].send(nodes[1].node_id, big)
            assert (await nodes[1].inbox.receive()).message == big
            # Drop a link from the listening side: the dialler reconnects on its own.
            low, high = sorted(nodes[:2], key=lambda n: n.node_id)
            await high.wait_connected([low.node_id])
            high.disconnect(low.node_id)
            while low.stats.counts["handshakes_ok"] < 3:
                await trio.sleep(0.01)
            await low.wait_connected([high.node_id])
            await high.wait_connected([low.node_id])
            assert await low.send(high.node_id, Note(3, b"again", b""))
            assert (await high.inbox.receive()).message == Note(3, b"again", b"")
            nursery.cancel_scope.cancel()
