"""The dashboard's API, token and loopback checks, partition config, timeline and live stream.

Runs against real testnet directories (keys, homes, genesis from `Testnet.create`) whose nodes are
not started, so every answer is deterministic; the browser test drives a live testnet.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tomllib
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import trio
from starlette.testclient import TestClient

from hedgerow.net.faults import FaultLayer
from hedgerow.node.cli import main as cli_main
from hedgerow.protocols.crypto import node_id_of
from hedgerow.testnet import launcher
from hedgerow.testnet.dashboard.collector import Collector, diff_nodes, summarize, view_changes
from hedgerow.testnet.dashboard.control import current_partition, heal, partition
from hedgerow.testnet.dashboard.server import STATIC_DIR, TOKEN_HEADER, build_app, serve
from hedgerow.testnet.dashboard.server import testnet_token as token_of
from hedgerow.testnet.dashboard.sources import LogTail, parse_event_line, read_jobs
from hedgerow.testnet.joblog import JobLog
from hedgerow.testnet.manifest import default_manifest

LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture
def net_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "net"
    launcher.Testnet.create(directory, default_manifest(4))
    return directory


def client_for(directory: Path, client: tuple[str, int] = LOOPBACK) -> TestClient:
    app = build_app(Collector(directory, interval_s=0.2), token_of(directory))
    return TestClient(app, base_url="http://127.0.0.1", backend="trio", client=client)


def test_status_is_the_cli_status_json(net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["testnet", "status", "--dir", str(net_dir), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    with client_for(net_dir) as client:
        reply = client.get("/api/status")
    assert reply.status_code == 200
    assert reply.json() == cli
    assert [n["name"] for n in cli["nodes"]] == ["v0", "v1", "v2", "v3"]


def test_control_needs_the_token(net_dir: Path) -> None:
    token = token_of(net_dir)
    with client_for(net_dir) as client:
        assert client.post("/api/nodes/v1/pause").status_code == 401
        assert client.post("/api/nodes/v1/pause", headers={TOKEN_HEADER: "wrong"}).status_code == 401
        assert client.post("/api/heal", headers={TOKEN_HEADER: token[:-1]}).status_code == 401
        refused = client.post("/api/nodes/v1/pause", headers={TOKEN_HEADER: token})
    # With the token the action runs: v1 is not running, which the testnet library refuses.
    assert refused.status_code == 409
    assert "not running" in refused.json()["error"]


def test_control_refused_from_non_loopback(net_dir: Path) -> None:
    token = token_of(net_dir)
    with client_for(net_dir, client=("192.0.2.7", 40000)) as client:
        reply = client.post("/api/nodes/v1/kill", headers={TOKEN_HEADER: token})
        assert reply.status_code == 403
        cut = client.post("/api/partition", json={"a": ["v3"]}, headers={TOKEN_HEADER: token})
        assert cut.status_code == 403
    with client_for(net_dir, client=("::1", 40000)) as client:
        assert client.post("/api/nodes/v1/kill", headers={TOKEN_HEADER: token}).status_code == 409


def test_bad_requests_are_named(net_dir: Path) -> None:
    headers = {TOKEN_HEADER: token_of(net_dir)}
    with client_for(net_dir) as client:
        assert client.post("/api/nodes/v1/explode", headers=headers).status_code == 409
        unknown = client.post("/api/nodes/zz/start", headers=headers)
        assert unknown.status_code == 409 and "no node 'zz'" in unknown.json()["error"]
        assert client.post("/api/partition", json={"b": ["v1"]}, headers=headers).status_code == 400
        assert client.get("/api/status", headers={"host": "evil.example"}).status_code == 400


def test_token_is_per_testnet_private_and_stable(net_dir: Path, tmp_path: Path) -> None:
    token = token_of(net_dir)
    assert len(token) >= 32
    assert token_of(net_dir) == token
    assert stat.S_IMODE(os.stat(net_dir / "dashboard.token").st_mode) == 0o600
    other = tmp_path / "other"
    other.mkdir()
    assert token_of(other) != token


def test_page_and_vendored_chart_are_served_locally(net_dir: Path) -> None:
    with client_for(net_dir) as client:
        page = client.get("/")
        assert page.status_code == 200 and "Hedgerow testnet" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        for path in ("/static/app.js", "/static/style.css", "/static/vendor/uPlot.iife.min.js",
                     "/static/vendor/uPlot.min.css"):
            assert client.get(path).status_code == 200, path
    assert (STATIC_DIR / "vendor" / "uPlot.LICENSE").read_text().startswith("The MIT License")
    for name in ("index.html", "app.js"):
        text = (STATIC_DIR / name).read_text()
        assert "http://" not in text and "https://" not in text, f"{name} refers to a remote URL"


def node_ids(testnet: launcher.Testnet) -> dict[str, bytes]:
    return {name: node_id_of(bytes.fromhex(rec.public_key)) for name, rec in testnet.nodes.items()}


def test_partition_goes_into_every_fault_layer_and_heals(net_dir: Path) -> None:
    testnet = launcher.Testnet.open(net_dir)
    configs = {name: Path(rec.home) / "config" / "node.toml" for name, rec in testnet.nodes.items()}
    before = {name: path.read_text() for name, path in configs.items()}
    opened = partition(testnet, ["v3"])
    assert (opened.side_a, opened.side_b) == (["v3"], ["v0", "v1", "v2"])
    assert opened.configured_on == ["v0", "v1", "v2", "v3"]
    assert (opened.synced, opened.restarted) == ([], [])  # nothing runs
    assert current_partition(net_dir) == opened
    ids = node_ids(testnet)
    for name in configs:
        layer = FaultLayer.from_config(tomllib.loads(configs[name].read_text())["faults"])
        for other in ("v0", "v1", "v2"):
            assert not layer.allows(ids[other], ids["v3"]) and not layer.allows(ids["v3"], ids[other])
        assert layer.allows(ids["v0"], ids["v1"]) and layer.allows(ids["v2"], ids["v1"])
    with pytest.raises(Exception, match="already open"):
        partition(testnet, ["v0"])
    heal(testnet)
    assert {name: path.read_text() for name, path in configs.items()} == before
    assert current_partition(net_dir) is None


def test_partition_and_heal_through_the_api(net_dir: Path) -> None:
    headers = {TOKEN_HEADER: token_of(net_dir)}
    with client_for(net_dir) as client:
        opened = client.post("/api/partition", json={"a": ["v0", "v1"], "b": ["v2"]}, headers=headers)
        assert opened.status_code == 200, opened.text
        assert opened.json()["partition"]["side_b"] == ["v2"]
        assert client.post("/api/heal", headers=headers).status_code == 200
        assert client.post("/api/heal", headers=headers).status_code == 409


def view(state: str, height: int | None, round_: int | None = None,
         timeouts: float | None = None) -> dict[str, Any]:
    return {"state": state, "height": height, "round": round_, "timeouts": timeouts}


def test_timeline_entries_from_state_changes() -> None:
    prev = {"v0": view("alive", 5, 9, 1.0), "v1": view("alive", 5, 9), "v2": view("paused", 4),
            "v3": view("killed", None)}
    cur = {"v0": view("alive", 6, 10, 1.0), "v1": view("paused", None), "v2": view("alive", 6, 10),
           "v3": view("alive", 2, 3)}
    entries = diff_nodes(prev, cur)
    assert ("fault", "paused", "v1", "height 5") in entries
    assert ("recovery", "resumed", "v2", "height 6") in entries
    assert ("recovery", "started", "v3", "height 2") in entries
    assert len(entries) == 3
    assert diff_nodes({}, cur) == []


def test_rounds_without_commits_are_one_view_change() -> None:
    gaps: dict[str, int] = {}
    first = {"v0": view("alive", 5, 9), "v1": view("alive", 5, 8), "v2": view("paused", 4)}
    assert view_changes(first, gaps) == []
    assert gaps == {"v0": 4, "v1": 3}
    # One block in flight (gap + 1) is no view change; v1's gap shrinking moves its reference down.
    assert view_changes({"v0": view("alive", 6, 11), "v1": view("alive", 7, 9)}, gaps) == []
    assert gaps == {"v0": 4, "v1": 2}
    entries = view_changes({"v0": view("alive", 6, 13), "v1": view("alive", 7, 12)}, gaps)
    assert entries == [("view", "view change", "v0,v1",
                        "3 round(s) ended without a commit (timeouts); now round 13")]
    assert gaps == {"v0": 7, "v1": 5}


def test_log_tail_reads_new_whole_event_lines(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("event=started name=v0\n")
    tail = LogTail()
    assert tail.read("v0", log) == []  # starts at the end
    with open(log, "a") as out:
        out.write("WARNING:hedgerow.consensus:event=spec_revert node=v1 block=ab12\n"
                  "noise\nevent=evidence pro")
    assert tail.read("v0", log) == [{"event": "spec_revert", "node": "v1", "block": "ab12"}]
    with open(log, "a") as out:
        out.write("of='Equivocation(round=3)'\n")
    assert tail.read("v0", log) == [{"event": "evidence", "proof": "Equivocation(round=3)", "node": "v0"}]
    assert parse_event_line("no events here") is None


def test_evidence_lines_are_summarized() -> None:
    line = ("WARNING:hedgerow.consensus:event=evidence node=v0 "
            "proof=EvidenceProof(kind='EQUIVOCATION_HEADER', offender=3, round=19, "
            "a=SignedStatement(domain='hedgerow/monadbft/v1/tip', payload=b'\\x97&'))")
    fields = parse_event_line(line)
    assert fields is not None and fields["event"] == "evidence"
    detail = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("event", "node"))
    assert summarize(detail) == "EQUIVOCATION_HEADER by validator #3 at round 19"
    assert len(summarize("x" * 1000)) == 160


def test_jobs_progress_files(tmp_path: Path) -> None:
    log = JobLog(tmp_path, "deer-1", "newton")
    for i in range(4):
        log.point(i, residual=10.0 ** -i, stragglers=[2] if i == 1 else None, done=i == 3)
    with open(log.path, "a") as out:
        out.write("not json\n")
    JobLog(tmp_path, "train-1", "gradcoding").point(0, loss=0.7)
    deer, train = read_jobs(tmp_path)
    assert (deer["job"], deer["metric"], deer["iteration"], deer["done"]) == ("deer-1", "residual", 3, True)
    assert deer["curve"] == [[i, 10.0 ** -i] for i in range(4)]
    assert (train["metric"], train["curve"], train["done"]) == ("loss", [[0, 0.7]], False)
    with pytest.raises(ValueError):
        JobLog(tmp_path, "../escape", "newton")


async def test_stream_pushes_a_snapshot_after_a_control_action(net_dir: Path) -> None:
    token = token_of(net_dir)
    collector = Collector(net_dir, interval_s=0.2)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            base = await nursery.start(serve, collector, token, 0)
            assert base.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=base) as client:
                snapshot = await partition_seen_on_stream(client, token)
            nursery.cancel_scope.cancel()
    assert snapshot["partition"]["side_a"] == ["v3"]
    assert [n["state"] for n in snapshot["nodes"]] == ["killed"] * 4
    assert any(e["name"] == "partition" for e in snapshot["events"])


async def partition_seen_on_stream(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Open the stream, read `init`, open a partition, return the first snapshot that shows it."""
    async with client.stream("GET", "/api/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: init"
        init = json.loads((await anext(lines)).removeprefix("data: "))
        assert init["history"]["names"] == ["v0", "v1", "v2", "v3"]
        reply = await client.post("/api/partition", json={"a": ["v3"]}, headers={TOKEN_HEADER: token})
        assert reply.status_code == 200
        async for line in lines:
            if line.startswith("data: "):
                snapshot: dict[str, Any] = json.loads(line.removeprefix("data: "))
                if snapshot.get("partition"):
                    return snapshot
    raise AssertionError("the stream ended before showing the partition")


def test_cli_partition_heal_and_dashboard_options(net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["testnet", "partition", "v2,v3", "--from", "v0,v1", "--dir", str(net_dir), "--json"]
    assert cli_main(argv) == 0
    opened = json.loads(capsys.readouterr().out)
    assert opened == {"side_a": ["v2", "v3"], "side_b": ["v0", "v1"],
                      "configured_on": ["v0", "v1", "v2", "v3"], "synced": [], "restarted": []}
    assert cli_main(["testnet", "partition", "v0", "--dir", str(net_dir)]) == 2  # one is open already
    assert "already open" in capsys.readouterr().err
    assert cli_main(["testnet", "heal", "--dir", str(net_dir)]) == 0
    assert current_partition(net_dir) is None
    with pytest.raises(SystemExit):
        cli_main(["testnet", "up", "--help"])
    assert "--dashboard" in capsys.readouterr().out


def test_busy_port_is_a_one_line_error(net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main(["testnet", "dashboard", "--dir", str(net_dir), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert cli_main(["testnet", "dashboard", "--dir", str(net_dir / "nothing")]) == 2
    assert cli_main(["testnet", "dashboard", "--dir", str(net_dir), "--account", "zz"]) == 2
