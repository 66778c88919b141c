"""Run the dashboard in the foreground: `run_dashboard(directory, port)` (what the CLI calls)."""

from __future__ import annotations

import signal
from functools import partial
from pathlib import Path

import trio

from hedgerow.node.errors import HedgerowError
from hedgerow.testnet.dashboard.collector import Collector
from hedgerow.testnet.dashboard.server import TOKEN_FILE, serve, testnet_token
from hedgerow.testnet.launcher import Testnet


def run_dashboard(directory: Path, port: int = 0, testnet: Testnet | None = None,
                  accounts: list[str] | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM; prints the URL (token after '#', so no server log sees it)."""
    collector = Collector(directory, testnet, accounts=accounts)
    token = testnet_token(directory)

    stopped_by: list[int] = []

    async def serve_and_announce() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                base = await nursery.start(partial(serve, collector, token, port))
                print(f"dashboard: {base}/#token={token}", flush=True)
                print(f"control token: {token} (also in {Path(directory) / TOKEN_FILE}); Ctrl-C stops the "
                      "dashboard, the nodes keep running", flush=True)
                async for signum in signals:
                    stopped_by.append(signum)
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(serve_and_announce)
    except BaseExceptionGroup as group:  # an operator error from inside the nurseries: show it alone
        raise _first(group, HedgerowError) or group from None
    print("dashboard stopped", flush=True)
    return 130 if stopped_by == [signal.SIGINT] else 0


def _first(group: BaseExceptionGroup[BaseException], kind: type[HedgerowError]) -> HedgerowError | None:
    for error in group.exceptions:
        if isinstance(error, kind):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _first(error, kind)
            if found is not None:
                return found
    return None
