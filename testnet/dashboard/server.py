"""The dashboard's ASGI app (Starlette) and its server (Hypercorn's trio worker) on 127.0.0.1.

    GET  /                           the page (static/index.html, app.js, style.css, vendored uPlot)
    GET  /api/status                 the same JSON as `hedgerow testnet status --json`
    GET  /api/snapshot               the collector's latest snapshot
    GET  /api/stream                 server-sent events: `init` (history, timeline), then `snapshot`
                                     whenever the view changes (about 1 Hz while nodes commit)
    POST /api/nodes/{name}/{action}  kill | pause | resume | start | stop
    POST /api/partition              {"a": ["v3"], "b": [...optional, default the rest]}
    POST /api/heal

Control requests need the testnet's token (`DIR/dashboard.token`, printed at start; header
`X-Hedgerow-Token`) and come from loopback only: another client gets 403, a missing or wrong
token 401. Hosts other than 127.0.0.1/localhost are refused (DNS rebinding).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, cast

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hedgerow.node.errors import HedgerowError
from hedgerow.testnet.dashboard.collector import Collector

Handler = Callable[[Request], Awaitable[Response]]
STATIC_DIR = Path(__file__).resolve().parent / "static"  # resolved: the editable install links files
TOKEN_FILE = "dashboard.token"
TOKEN_HEADER = "x-hedgerow-token"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STREAMS_MAX = 32
KEEPALIVE_S = 15.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def testnet_token(directory: Path) -> str:
    """The testnet's control token, created (mode 0600) on first use."""
    path = Path(directory) / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def control_refusal(request: Request, token: str) -> Response | None:
    """None when the request may steer the testnet, else the refusal to send."""
    client = request.client
    if client is None or not is_loopback(client.host):
        return JSONResponse({"error": "control is allowed from loopback only"}, status_code=403)
    given = request.headers.get(TOKEN_HEADER, "")
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return JSONResponse({"error": f"missing or wrong {TOKEN_HEADER} (printed at start, in "
                                      f"DIR/{TOKEN_FILE})"}, status_code=401)
    return None


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def build_app(collector: Collector, token: str) -> Starlette:
    streams = {"open": 0}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collector.run)
            yield
            nursery.cancel_scope.cancel()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)

    async def status(request: Request) -> Response:
        return JSONResponse(await trio.to_thread.run_sync(collector.status_document))

    async def snapshot(request: Request) -> Response:
        if collector.latest is None:
            return JSONResponse({"error": "no snapshot yet"}, status_code=503)
        return JSONResponse(collector.latest)

    async def events() -> AsyncIterator[bytes]:
        streams["open"] += 1
        try:
            version = collector.version  # read with `latest` below, no checkpoint in between
            yield _sse("init", {"history": collector.history_json(), "snapshot": collector.latest,
                                "events": collector.events_after(0)})
            seq = collector.latest["events_seq"] if collector.latest else 0
            while True:
                newer = None
                with trio.move_on_after(KEEPALIVE_S):  # no yield inside the scope (async generator)
                    newer = await collector.wait_newer(version)
                if newer is None:
                    yield b": keepalive\n\n"
                    continue
                version, latest = newer, collector.latest
                assert latest is not None
                yield _sse("snapshot", {**latest, "events": collector.events_after(seq)})
                seq = latest["events_seq"]
        finally:
            streams["open"] -= 1

    async def stream(request: Request) -> Response:
        if streams["open"] >= STREAMS_MAX:
            return JSONResponse({"error": f"too many open streams (max {STREAMS_MAX})"}, status_code=503)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            refusal = control_refusal(request, token)
            if refusal is not None:
                return refusal
            try:
                response = await handler(request)
            except HedgerowError as error:
                return JSONResponse({"error": str(error)}, status_code=409)
            collector.poke()
            return response
        return endpoint

    async def node(request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        done = await trio.to_thread.run_sync(collector.act, action, name)
        return JSONResponse({"ok": True, "result": done})

    async def open_partition(request: Request) -> Response:
        try:
            body = await request.json()
            side_a = [str(n) for n in body["a"]]
            side_b = [str(n) for n in body.get("b") or []] or None
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"error": 'body must be {"a": [names], "b": [names] (optional)}'},
                                status_code=400)
        found = await trio.to_thread.run_sync(collector.open_partition, side_a, side_b)
        return JSONResponse({"ok": True, "partition": found.to_json()})

    async def heal(request: Request) -> Response:
        found = await trio.to_thread.run_sync(collector.heal_partition)
        return JSONResponse({"ok": True, "healed": found.to_json()})

    routes = [
        Route("/", index),
        Route("/api/status", status),
        Route("/api/snapshot", snapshot),
        Route("/api/stream", stream),
        Route("/api/nodes/{name}/{action}", guarded(node), methods=["POST"]),
        Route("/api/partition", guarded(open_partition), methods=["POST"]),
        Route("/api/heal", guarded(heal), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=ALLOWED_HOSTS)])


async def serve(collector: Collector, token: str, port: int = 0, *,
                task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the dashboard on 127.0.0.1:port (0: a free port); `task_status` gets its base URL."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    from hedgerow.node.errors import ConfigError

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    if port:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Hypercorn's own socket
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}") from None
        finally:
            probe.close()
    app = build_app(collector, token)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(hypercorn_serve, cast(Any, app), config))
        task_status.started(str(binds[0]))
