"""A small 4-validator loopback testnet for tests that need real node processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hedgerow.testnet.launcher import Testnet, up
from hedgerow.testnet.manifest import parse_manifest


def fast_testnet(directory: Path) -> Iterator[Testnet]:
    """Bring up 4 validators with short consensus delays in `directory`; kill them all afterwards."""
    manifest = parse_manifest({"validators": 4, "consensus": {"delta_ms": 50, "local_processing_ms": 50}})
    result = up(directory, manifest, deadline_s=60)
    try:
        yield result.testnet
    finally:
        result.testnet.kill_all()
