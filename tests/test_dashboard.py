"""The dashboard's API, token and loopback checks, partition config, timeline and live stream.

Runs against real testnet directories (keys, homes, genesis from `Testnet.create`) whose nodes are
not started, so every answer is deterministic; the browser test drives a live testnet.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import tomllib
from collections import Counter, OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2 as httpx
import pytest
import trio
from starlette.testclient import TestClient

from hedgerow.net.faults import FaultLayer
from hedgerow.node.cli import main as cli_main
from hedgerow.node.consensus import ConsensusDriver
from hedgerow.protocols.actions import Broadcast
from hedgerow.protocols.crypto import node_id_of
from hedgerow.protocols.monadbft import messages as m
from hedgerow.protocols.monadbft.records import SpecRevert
from hedgerow.testnet import launcher
from hedgerow.testnet.dashboard.collector import Collector, diff_nodes, log_entries, summarize, view_changes
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


def test_nodes_that_report_view_changes_are_not_inferred() -> None:
    gaps: dict[str, int] = {}
    reporting = {"state": "alive", "tcs": 0.0}
    assert view_changes({"v0": view("alive", 5, 9) | reporting, "v1": view("alive", 5, 9)}, gaps) == []
    assert gaps == {"v1": 4}
    entries = view_changes({"v0": view("alive", 5, 19) | reporting, "v1": view("alive", 5, 12)}, gaps)
    assert entries == [("view", "view change", "v1",
                        "3 round(s) ended without a commit (timeouts); now round 12")]


def driver_lines(caplog: pytest.LogCaptureFixture, name: str, *events: tuple[str, str, int, dict[str, Any]]
                 ) -> list[str]:
    """The `event=` lines the consensus driver logs for these (event, counter, round, fields), in the
    node's log format."""
    driver = SimpleNamespace(view_counts=Counter(), node=SimpleNamespace(config=SimpleNamespace(name=name)))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hedgerow.consensus"):
        for event, counter, round_, fields in events:
            ConsensusDriver._view_event(driver, event, counter, round_, **fields)  # type: ignore[arg-type]
    assert sum(driver.view_counts.values()) == len(events)
    form = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    return [form.format(record) for record in caplog.records]


def test_reported_view_changes_become_their_own_timeline_entries(caplog: pytest.LogCaptureFixture) -> None:
    v0 = driver_lines(caplog, "v0", ("timeout", "round_timeouts", 12, {"high_qc": 10, "high_tip": 0}),
                      ("tc", "tcs", 12, {"high": "qc"}))
    v1 = driver_lines(caplog, "v1", ("tc", "tcs", 12, {"high": "qc"}),
                      ("timeout", "round_timeouts", 12, {"high_qc": 10, "high_tip": 0}),
                      ("nec", "necs", 15, {"tip_qc": 13, "signers": 3}))
    assert v0[1].endswith(" WARNING hedgerow.consensus event=tc node=v0 round=12 high=qc")
    reverts = ["2026-12-04 18:00:00,000 WARNING hedgerow.consensus event=revert node=v2 height=40 round=20 "
               "block=ab12cd34ef567890 anchor=99 evidence=EQUIVOCATION_PROPOSAL offender=3",
               "WARNING:hedgerow.consensus:event=revert node=v1 height=40 round=20 block=ab12 anchor=99 "
               "evidence=pending"]
    events = [parse_event_line(line) for line in v0 + v1 + reverts]
    assert events[2] == {"event": "tc", "node": "v1", "round": "12", "high": "qc"}
    seen: OrderedDict[tuple[str, str], None] = OrderedDict()
    entries = log_entries([e for e in events if e is not None], seen)
    assert entries == [
        ("view", "timeout r=12", "v0,v1", "round 12 timed out (high QC round 10)"),
        ("view", "TC r=12", "v0,v1", "timeout certificate for round 12, extending a QC"),
        ("view", "NEC r=15", "v1", "no-endorsement certificate for round 15 (3 signers, tip QC round 13)"),
        ("view", "revert + evidence", "v2",
         "height 40 round 20 block ab12cd34ef56; EQUIVOCATION_PROPOSAL by validator #3"),
        ("view", "revert", "v1", "height 40 round 20 block ab12; evidence pending"),
    ]
    # A node that logs the same certificate in a later poll adds nothing; a new round does.
    later = [parse_event_line(line) for line in driver_lines(caplog, "v2", ("tc", "tcs", 12, {"high": "tip"}),
                                                            ("tc", "tcs", 16, {"high": "tip"}))]
    assert log_entries([e for e in later if e is not None], seen) == [
        ("view", "TC r=16", "v2", "timeout certificate for round 16, extending a tip")]


def bare_driver(core: Any) -> ConsensusDriver:
    """A consensus driver with only what `observe_view` and `_deliver(SpecRevert)` read."""
    driver = object.__new__(ConsensusDriver)
    driver.core, driver.evidence = core, []
    driver.node = SimpleNamespace(index=0, config=SimpleNamespace(name="v0"))  # type: ignore[assignment]
    driver.view_counts, driver._view_seen = Counter(), {"timeout": 0, "tc": 0, "nec": 0}
    return driver


def test_the_driver_reports_what_the_core_shows(caplog: pytest.LogCaptureFixture) -> None:
    """Own timeout, the core's new high TC and an accepted NEC proposal: one line and count each,
    once per round; a speculative revert names the evidence against the anchor's leader."""
    sigs = (b"s" * 64,) * 3
    qc = m.QC(b"\x01" * 32, 4, (0, 1, 2), sigs)
    tc = m.TC(5, (m.TcGroup(4, 0, (0, 1, 2), sigs),), qc)
    tip = m.Tip(m.Header(6, qc, 1, 7, 1000, b"\x00" * 32), b"s" * 64, m.NEC(6, 4, (0, 1, 2), sigs))
    proposal = m.Proposal(6, tip, (), tc, 1, b"s" * 64)
    timeout = m.TimeoutMsg(m.TimeoutInfo(5, 4, 0), 0, b"s" * 64, qc, None, None)
    anchor = m.Block(tip, ())
    tree = SimpleNamespace(get=lambda block_id: anchor if block_id == anchor.block_id else None)
    core = SimpleNamespace(high_cert=tc, handled_proposal={6: tip.block_id}, tree=tree)
    driver = bare_driver(core)
    with caplog.at_level(logging.WARNING, logger="hedgerow.consensus"):
        driver.observe_view(proposal, [Broadcast(timeout)])
        driver.observe_view(proposal, [Broadcast(timeout)])  # the same round again: nothing new
        unhandled = m.Proposal(7, m.Tip(tip.header, b"t" * 64, m.NEC(7, 4, (0, 1, 2), sigs)), (), tc, 1, b"")
        driver.observe_view(unhandled, [])  # the core did not accept it: no NEC
        driver.evidence.append(SimpleNamespace(kind="EQUIVOCATION_PROPOSAL", offender=1, round=6))
        trio.run(driver._deliver, SpecRevert(m.Block(tip, (b"tx",)), anchor.block_id))
    assert driver.view_counts == Counter(round_timeouts=1, tcs=1, necs=1, reverts=1)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[:3] == ["event=timeout node=v0 round=5 high_qc=4 high_tip=0",
                         "event=tc node=v0 round=5 high=qc", "event=nec node=v0 round=6 tip_qc=4 signers=3"]
    events = [parse_event_line(line) for line in lines]
    entries = log_entries([e for e in events if e is not None], OrderedDict())
    assert [name for _, name, _, _ in entries] == ["timeout r=5", "TC r=5", "NEC r=6", "revert + evidence"]
    assert entries[-1][3].endswith("; EQUIVOCATION_PROPOSAL by validator #1")


def test_collector_timeline_shows_logged_tcs(net_dir: Path) -> None:
    logs = {name: net_dir / name / "data" / "logs" / "node.log" for name in ("v0", "v1", "v2", "v3")}
    for log in logs.values():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("event=started\n")
    collector = Collector(net_dir)
    collector.poll()
    with open(logs["v1"], "a") as out:
        out.write("2026-12-04 18:00:00,000 WARNING hedgerow.consensus event=tc node=v1 round=7 high=qc\n")
    collector.poll()
    shown = [(e["kind"], e["name"], e["node"]) for e in collector.events_after(0)]
    assert shown == [("view", "TC r=7", "v1")]


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
