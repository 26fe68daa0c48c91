"""Servers for the server-backend tests and benchmark, on 127.0.0.1 with free ports.

- `LlamaServer`: llama-cpp-python's real OpenAI-compatible server (`python -m llama_cpp.server`,
  the `server` extra) over a GGUF model + projector, started as a subprocess and always stopped.
- `FaultServer`: a small threaded HTTP server that replays a recorded answer of that real server,
  with injected faults (429/5xx, delays, a missing logprobs block, going away after N answers),
  and records what it was sent (headers, concurrency).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1; `url` once `start()` returns."""

    def __init__(self, model: Path, mmproj: Path, log: Path, *, alias: str = "tiny", api_key: str | None = None,
                 threads: int = 1, chat_format: str = "mtmd", n_ctx: int = 1024):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.alias, self.api_key, self.log = alias, api_key, log
        self.cmd = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--clip_model_path", str(mmproj),
            "--chat_format", chat_format, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(n_ctx),
            "--model_alias", alias, "--verbose", "False",
        ]
        if api_key:
            # The test server's own key, on its own command line: fakescope reads it from the environment.
            self.cmd += ["--api_key", api_key]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> LlamaServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.log, "wb")  # noqa: SIM115 - kept open for the server's lifetime
        self.proc = subprocess.Popen(self.cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        fh.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                req = urllib.request.Request(self.url + "/v1/models")
                if self.api_key:
                    req.add_header("Authorization", f"Bearer {self.api_key}")
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as a crashed or pre-empted one does."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def chat(url: str, body: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    """One chat completion with urllib (to record a real answer)."""
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


# A fault: (status, extra headers, body override or None for the recorded answer, delay seconds).
Fault = tuple[int, dict[str, str], Any, float]


class FaultServer:
    """Replays `answer` to every chat completion, after the scripted faults are used up.

    `script` is consumed one entry per chat completion; `after` (if set) is called with the count
    of chat completions answered so far and may return "vanish" to stop listening and drop every
    later request (the server is gone).
    """

    def __init__(self, answer: dict[str, Any], *, script: list[Fault] | None = None, delay: float = 0.0,
                 vanish_after: int | None = None, models: list[str] | None = None):
        self.answer = answer
        self.script = list(script or [])
        self.delay = delay
        self.vanish_after = vanish_after
        self.models = ["tiny"] if models is None else models
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # {"method", "path", "authorization", "body"}
        self.answered = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.gone = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: bytes) -> None:
                with outer.lock:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "authorization": self.headers.get("Authorization"),
                                           "body": body.decode("utf-8", "replace")})

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._record(b"")
                if outer.gone:
                    self.close_connection = True
                    return
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in outer.models]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._record(body)
                with outer.lock:
                    if outer.gone:
                        self.close_connection = True
                        return
                    fault = outer.script.pop(0) if outer.script else None
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, headers, override, delay = fault or (200, {}, None, outer.delay)
                    if delay:
                        time.sleep(delay)
                    if status == 200:
                        self._send(200, outer.answer if override is None else override, headers)
                    else:
                        self._send(status, override or {"error": {"message": f"injected {status}"}}, headers)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                        if status == 200:
                            outer.answered += 1
                        vanish = outer.vanish_after is not None and outer.answered >= outer.vanish_after
                if vanish:
                    outer.vanish()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def vanish(self) -> None:
        """Stop listening (new connections are refused) and drop requests on open connections."""
        with self.lock:
            if self.gone:
                return
            self.gone = True
        threading.Thread(target=self._close, daemon=True).start()

    def _close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"]

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.gone:
            self.httpd.shutdown()
            self.httpd.server_close()


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def sigterm_when(args: list[str], ready: Callable[[], bool]) -> tuple[int, bytes, float]:
    """Run the CLI with `args`, send SIGTERM once `ready()` holds (requests in flight), and return
    (exit code, stderr, seconds from the signal to the exit)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "fakescope_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert wait_for(ready, timeout=60), "the requests never arrived"
        t = time.monotonic()
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
        return proc.returncode, err, time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()

