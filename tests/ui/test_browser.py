"""End to end in headless Chromium: `headrace serve` with its web page, driven like a person would.

Debian's chromium is installed by `make test`; Playwright only drives it (no browser download).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Seeded

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def served(seeded: Seeded, headrace_home: Path) -> Iterator[str]:
    """`headrace serve` (scheduler, one worker, the web page on a free port) in its own process."""
    env = {**os.environ, "HEADRACE_HOME": str(headrace_home), "HEADRACE_STORE": seeded.store.url}
    env.pop("HEADRACE_UI_TOKEN", None)
    exe = Path(sys.executable).with_name("headrace")
    proc = subprocess.Popen([str(exe), "serve", "--workers", "1", "--ui-port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=30)
            found = re.search(r"Web page on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_watch_and_act_on_runs_in_a_browser(seeded: Seeded, served: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "make test installs Debian's chromium; run `make test` or apt-get install chromium"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.set_default_timeout(20_000)

        page.goto(f"{served}/runs")
        expect(page.locator("#runs-table tbody tr")).to_have_count(4)
        page.screenshot(path=str(shots / "1-runs.png"), full_page=True)

        page.locator("#runs-table tr:has(.state.bad) a[href^='/runs/']").first.click()
        expect(page.locator("h1")).to_contain_text("orders-bad")
        expect(page.locator("#run-state")).to_contain_text("Failed")
        expect(page.locator("#gantt svg rect").first).to_be_visible()
        page.screenshot(path=str(shots / "2-failed-run.png"), full_page=True)

        page.locator("#tasks-table tr:has-text('explode-0') a:has-text('log')").click()
        expect(page.locator("h1")).to_contain_text("task explode-0")
        expect(page.locator("#log-lines")).to_contain_text("load refused")
        page.screenshot(path=str(shots / "3-task-log.png"), full_page=True)

        page.goto(f"{served}/deployments")
        page.locator("tr:has-text('on-demand') button:has-text('Run now')").click()
        expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
        page.evaluate("window.__sameDocument = true")
        expect(page.locator("#run-state")).to_contain_text("Completed", timeout=45_000)
        assert page.evaluate("window.__sameDocument === true")  # it changed live, without a reload
        expect(page.locator("#tasks-table tbody tr")).to_have_count(3)
        page.screenshot(path=str(shots / "4-triggered-run.png"), full_page=True)
        browser.close()
    assert not problems, problems
    assert sorted(p.name for p in shots.iterdir()) == ["1-runs.png", "2-failed-run.png", "3-task-log.png",
                                                      "4-triggered-run.png"]
