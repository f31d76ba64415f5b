"""getfile-tui --web in a real browser: Debian's chromium, headless, loads the page.

The app draws on xterm.js's canvas, so its text is not in the page's DOM:
the test takes a screenshot through the DevTools protocol and reads it back
with tesseract (OCR), which is what "the text is on the screen" means for a
canvas. The screenshot is kept in ``test-artefacts/browser.png``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support import unused_port

PROJECT = Path(__file__).resolve().parents[2]
ARTEFACTS = PROJECT / "test-artefacts"
CHROMIUM = shutil.which("chromium")
TESSERACT = shutil.which("tesseract")


@pytest.fixture(autouse=True)
def _browser_tools() -> None:
    """No skip to go green: scripts/test installs both, so a missing one is a failure."""
    missing = [
        name for name, path in (("chromium", CHROMIUM), ("tesseract", TESSERACT)) if not path
    ]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (scripts/test installs them with apt)")


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)  # polling a port another process opens
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[int]:
    port = unused_port()
    (tmp_path / "dl").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--web", "--web-port", str(port), "--dest",
         str(tmp_path / "dl")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, 20)
        yield port
    finally:
        os.killpg(proc.pid, 15)  # the server and the app it started for the page
        proc.wait(10)


class DevTools:
    """Just enough of the Chrome DevTools protocol: call a method, get its result."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def __call__(self, method: str, **params: object) -> dict[str, object]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        async with asyncio.timeout(20):
            while True:
                message = await self.ws.receive_json()
                if message.get("id") == self.next_id:
                    return message["result"]


async def screenshot_text(url: str, profile: Path, shot: Path) -> str:
    """Open ``url`` in headless chromium; OCR its screenshots until the app's text shows."""
    assert CHROMIUM is not None and TESSERACT is not None
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1200,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        active = profile / "DevToolsActivePort"
        for _ in range(200):
            if active.exists() and active.read_text().count("\n") >= 1:
                break
            await asyncio.sleep(0.1)
        devtools_port = int(active.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{devtools_port}/json") as reply:
                targets = json.loads(await reply.text())
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                call = DevTools(ws)
                await call("Page.navigate", url=url)
                text = ""
                for _ in range(30):  # bounded: 30 looks, a second or so apart
                    await asyncio.sleep(0.5)
                    result = await call("Page.captureScreenshot", format="png")
                    shot.write_bytes(base64.b64decode(str(result["data"])))
                    ocr = subprocess.run(
                        [TESSERACT, str(shot), "-"], capture_output=True, text=True, timeout=30
                    )
                    text = ocr.stdout
                    if "Ready" in text and "Transfers" in text:
                        break
                return text
    finally:
        browser.terminate()
        browser.wait(10)


async def test_the_app_renders_in_a_browser(web_app: int, tmp_path: Path) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / "browser.png"
    text = await screenshot_text(f"http://127.0.0.1:{web_app}/", tmp_path / "profile", shot)
    assert "Download" in text and "Transfers" in text, text
    assert "Ready. Enter in the form downloads" in text, text
    # A browser session says where files land and how to get one into the browser.
    assert "machine running the app" in text, text
