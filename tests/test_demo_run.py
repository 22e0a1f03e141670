"""``make demo`` (``python -m demo.run``): prints the page's URL; with ``--serve`` (the default in
a terminal) keeps the collector serving it until Ctrl-C, otherwise stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from testsupport.harness import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def test_demo_serves_the_page_until_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "demo.run", "--dir", str(tmp_path / "demo"), "--serve"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C below goes to the demo's process group only
        )
    try:
        wait_until(lambda: "serving until Ctrl-C" in log.read_text(), 300, "the demo to start serving")
        match = re.search(r"the built-in page: (http://\S+)", log.read_text())
        assert match, log.read_text()
        page = httpx.get(match.group(1), timeout=10)
        assert page.status_code == 200
        assert "featurecost" in page.text
        assert demo.poll() is None  # still serving
        # Ctrl-C in a terminal signals the whole foreground process group
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(120) == 0, log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    output = log.read_text()
    assert "done: all processes stopped" in output
    assert "exited with" not in output  # the collector drained and exited cleanly


def test_demo_without_a_terminal_exits_after_the_reports(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "demo.run", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "the built-in page: http://127.0.0.1:" in completed.stdout
    assert "serving until Ctrl-C" not in completed.stdout
    assert "done: all processes stopped" in completed.stdout
