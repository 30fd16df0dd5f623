"""`headrace ui` serves the page (and opens it on a run), and the demo ends by printing that command."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from conftest import Seeded

DEMO = Path(__file__).resolve().parents[2] / "demo" / "sales_etl.py"


def test_headrace_ui_serves_the_run_page(seeded: Seeded, headrace_home: Path) -> None:
    env = {**os.environ, "HEADRACE_HOME": str(headrace_home), "HEADRACE_STORE": seeded.store.url,
           "BROWSER": "true"}  # `webbrowser` runs `true` instead of opening a real browser
    exe = Path(sys.executable).with_name("headrace")
    proc = subprocess.Popen([str(exe), "ui", "--port", "0", "--run", seeded.bad], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        url = None
        while url is None:
            found = re.search(r"Run page: (http://127\.0\.0\.1:\d+/runs/[0-9a-f]+)", lines.get(timeout=30))
            url = found.group(1) if found else None
        page = httpx.get(url, timeout=20)
        assert page.status_code == 200 and "orders-bad" in page.text and "explode-0" in page.text
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode in (0, -15)


def test_the_demo_ends_with_the_command_that_opens_its_run() -> None:
    spec = importlib.util.spec_from_file_location("headrace_demo_ui_line", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command = module.ui_command("0123abcd")
    assert command.endswith("headrace ui --run 0123abcd")
    assert "ui_command(str(state.run_id))" in DEMO.read_text()  # main() prints it last
