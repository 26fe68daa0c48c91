"""A headless Chromium driven over the DevTools protocol (CDP), for tests and docs/make_screenshot.py.

Pure Python: the Debian `chromium` binary plus the `websocket-client` package, nothing downloaded.
The browser runs with networking features off and a throw-away profile; the page session records
every console message, uncaught exception, log entry (CSP violations arrive there) and network
request, so a test can assert that a page loaded cleanly and fetched nothing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    explicit = os.environ.get("FAKESCOPE_CHROMIUM")
    if explicit:
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    pass


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, binary: str, *, width: int = 1280, height: int = 900, timeout: float = 60):
        self.binary = binary
        self.width, self.height = width, height
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="fakescope-chromium-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: Any = None
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # --- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> Chromium:
        import websocket  # websocket-client (test dependency)

        args = [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
            "--mute-audio", "--hide-scrollbars", f"--window-size={self.width},{self.height}",
            f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CdpError(f"chromium exited with code {self.proc.returncode} before it listened")
            try:
                lines = port_file.read_text().split()
                if lines:
                    port = int(lines[0])
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        if port is None:
            self.close()
            raise CdpError("chromium did not open its DevTools port in time")
        page_ws = None
        while time.monotonic() < deadline and page_ws is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                targets = json.load(resp)
            page_ws = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
            if page_ws is None:
                time.sleep(0.05)
        if page_ws is None:
            self.close()
            raise CdpError("chromium has no page target")
        # No Origin header: Chromium refuses DevTools websockets from unlisted origins.
        self.ws = websocket.create_connection(page_ws, timeout=self.timeout, suppress_origin=True)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001
                pass
            self.ws = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- protocol ------------------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are recorded."""
        self._next_id += 1
        msg_id = self._next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CdpError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        for event in self.events:
            if event["method"] == method:
                return event
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    self.ws.settimeout(self.timeout)
                    return msg
        raise CdpError(f"no {method} event within the timeout")

    # --- conveniences -----------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate to `url` and wait for its load event; earlier events are dropped."""
        self.events.clear()
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"navigation failed: {result['errorText']}")
        self.wait_event("Page.loadEventFired")
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def eval(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error/warning log entries so far."""
        self.send("Runtime.evaluate", expression="0")  # flush events queued before this call
        out = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                entry = params["entry"]
                out.append(f"log {entry.get('source')} {entry['level']}: {entry.get('text')}")
        return out

    def requests(self) -> list[str]:
        """URLs of every network request the page made so far (data: URLs included)."""
        self.send("Runtime.evaluate", expression="0")
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, *, full_height: int | None = None) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_height is not None:
            params["clip"] = {"x": 0, "y": 0, "width": self.width, "height": full_height, "scale": 1}
            params["captureBeyondViewport"] = True
        return base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])

    def pdf(self) -> bytes:
        return base64.b64decode(self.send("Page.printToPDF", printBackground=True)["data"])
