"""End to end in headless Chromium: `hedgerow testnet up -n 4 --dir X --dashboard`, open the printed
URL, watch four nodes commit, pause one from the page (its height stops, the others go on), resume
it (it catches up), save a screenshot; then cut one node off with the page's partition control and
heal it.

Debian's `chromium` driven by Playwright through `executable_path` (never `playwright install`).
Skipped, with the reason, only where no Chromium binary can be found. Set
HEDGEROW_DASHBOARD_SCREENSHOT=docs/dashboard.png to keep the screenshot (the README's).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import log_tails

from hedgerow.testnet import launcher
from hedgerow.testnet.load import BackgroundLoad

pytestmark = pytest.mark.multiprocess

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
UP_DEADLINE_S = 90.0
STEP_TIMEOUT_MS = 30_000
LOAD_TPS = 40.0
HEIGHTS_JS = """() => Object.fromEntries([...document.querySelectorAll('tr.node')].map(
    (row) => [row.dataset.node, parseInt(row.querySelector('td.height').textContent, 10)]))"""


def chromium_path() -> str | None:
    for candidate in (os.environ.get("HEDGEROW_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def read_dashboard_url(proc: subprocess.Popen[str], deadline_s: float) -> str:
    """The `dashboard: URL` line `testnet up --dashboard` prints once the nodes commit."""
    assert proc.stdout is not None
    seen: list[str] = []
    end = time.monotonic() + deadline_s
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < end:
            if not selector.select(timeout=end - time.monotonic()):
                break
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("dashboard: "):
                return line.split(" ", 1)[1].strip()
    raise AssertionError("no dashboard URL from `testnet up --dashboard`; output:\n" + "\n".join(seen[-30:]))


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path / "net"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedgerow.node.cli", "testnet", "up", "-n", "4", "--dir", str(directory),
         "--dashboard"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        try:
            url = read_dashboard_url(proc, UP_DEADLINE_S)
        except AssertionError as error:
            pytest.fail(f"{error}\n{log_tails(directory)}")
        yield url, directory
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        if (directory / launcher.STATE_FILE).exists():
            launcher.Testnet.open(directory).kill_all()


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def wait_heights(page: Any, condition_js: str, arg: Any, what: str) -> dict[str, int]:
    """Wait (deadline STEP_TIMEOUT_MS) until `condition_js(heights, arg)` holds on the page."""
    body = f"(arg) => {{ const heights = ({HEIGHTS_JS})(); return ({condition_js})(heights, arg); }}"
    try:
        page.wait_for_function(body, arg=arg, timeout=STEP_TIMEOUT_MS)
    except Exception as error:
        raise AssertionError(f"timed out waiting for {what}; heights {page.evaluate(HEIGHTS_JS)}") from error
    heights: dict[str, int] = page.evaluate(HEIGHTS_JS)
    return heights


def test_pause_resume_and_partition_from_the_page(dashboard: tuple[str, Path], tmp_path: Path) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium binary (looked for $HEDGEROW_CHROMIUM, chromium, /usr/bin/chromium, "
                    "chromium-browser); install it with `apt-get install -y chromium`")
    url, directory = dashboard
    assert url.startswith("http://127.0.0.1:") and "#token=" in url
    testnet = launcher.Testnet.open(directory)
    load = BackgroundLoad([testnet.record(n).rpc_port for n in ("v0", "v1", "v2")], testnet.chain_id,
                          rate_tps=LOAD_TPS).start()
    try:
        drive_the_page(executable, url, directory, tmp_path)
    finally:
        load.stop()
    assert load.accepted > 0


def drive_the_page(executable: str, url: str, directory: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            watch_commits(page)
            pause_and_resume(page, directory, tmp_path)
            partition_and_heal(page)
        finally:
            browser.close()


def watch_commits(page: Any) -> None:
    """Four nodes listed, the stream live, tx/s shown, every height rising."""
    from playwright.sync_api import expect

    expect(page.locator("tr.node")).to_have_count(4, timeout=STEP_TIMEOUT_MS)
    expect(page.locator("#conn")).to_have_text("live", timeout=STEP_TIMEOUT_MS)
    start = wait_heights(page, "(h) => Object.values(h).every((x) => x >= 1)", None, "heights shown")
    page.wait_for_function("() => parseFloat(document.querySelector('tr[data-node=v0] td.tps')"
                           ".textContent) > 0", timeout=STEP_TIMEOUT_MS)  # tx/s from /metrics
    wait_heights(page, "(h, s) => Object.keys(s).every((n) => h[n] > s[n])", start, "every height to rise")


def pause_and_resume(page: Any, directory: Path, tmp_path: Path) -> None:
    """Pause v3 from the page: it is stopped and its height freezes while the others commit (the
    screenshot); resume it: it commits again."""
    from playwright.sync_api import expect

    page.click('tr[data-node="v3"] button[data-action="pause"]')
    v3_state = page.locator('tr[data-node="v3"] td.state')
    expect(v3_state).to_have_text("paused", timeout=STEP_TIMEOUT_MS)
    pid = launcher.Testnet.open(directory).record("v3").pid
    assert pid is not None and process_state(pid) == "T"  # really stopped (SIGSTOP)
    frozen = page.evaluate(HEIGHTS_JS)
    after = wait_heights(page, "(h, s) => ['v0', 'v1', 'v2'].every((n) => h[n] >= s[n] + 2)", frozen,
                         "v0..v2 to commit 2 more blocks while v3 is paused")
    assert after["v3"] == frozen["v3"], "the paused node's height moved"
    expect(page.locator("#timeline li[data-kind=paused]")).to_have_count(1, timeout=STEP_TIMEOUT_MS)
    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("HEDGEROW_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copy(screenshot, keep)

    page.click('tr[data-node="v3"] button[data-action="resume"]')
    expect(v3_state).to_have_text("alive", timeout=STEP_TIMEOUT_MS)
    wait_heights(page, "(h, s) => h.v3 > s.v3", after, "v3 to commit again after resume")
    assert process_state(pid) != "T"


def partition_and_heal(page: Any) -> None:
    """Tick v2, cut it off: the others go on without it; heal: it catches up."""
    from playwright.sync_api import expect

    page.check('input.cut[data-node="v2"]')
    page.click("#partition-btn")
    expect(page.locator("#partition-state")).to_have_text("v2 | v0,v1,v3", timeout=STEP_TIMEOUT_MS)
    cut = page.evaluate(HEIGHTS_JS)
    after = wait_heights(page, "(h, s) => ['v0', 'v1', 'v3'].every((n) => h[n] >= s[n] + 3)", cut,
                         "v0, v1, v3 to commit 3 more blocks while v2 is cut off")
    assert after["v2"] <= cut["v2"] + 2, "the cut-off node kept committing"
    page.click("#heal-btn")
    expect(page.locator("#partition-state")).to_have_text("none", timeout=STEP_TIMEOUT_MS)
    top = max(after[n] for n in ("v0", "v1", "v3"))
    wait_heights(page, "(h, top) => h.v2 > top", top, "v2 to catch up after heal")
