"""An OpenAI-compatible endpoint over HTTP, standard library only: the URL forms, keep-alive
connections (one per thread), retries with backoff and jitter, cancellation, and errors that say
whether the server or this request is at fault (DetectorUnavailable vs InputError). The API key is
only ever sent in the Authorization header and scrubbed from any server text shown."""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import urllib.parse
from typing import Any

from fakescope_cli import __version__
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError

DEFAULT_API_KEY_ENV = "FAKESCOPE_API_KEY"
# Worth retrying: rate limiting and a server (or the proxy in front of it) that is momentarily
# unavailable. 500 is retried too, but if it persists it is this file's problem, not the server's.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_RESPONSE_BYTES = 64 << 20


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, API prefix) of a server URL. `http://h:8000`, `http://h:8000/v1` and
    `http://h:8000/v1/chat/completions` all mean the same endpoint."""
    # Everything wrong here is wrong on the command line (exit 2); only a server that does not
    # answer as asked is DetectorUnavailable.
    try:
        parsed = urllib.parse.urlsplit(url.strip())
    except ValueError as exc:  # e.g. an unbalanced [ in an IPv6 host
        raise UsageError(f"--url is not a URL ({exc})") from None
    if parsed.username is not None or parsed.password is not None:
        # First, and the URL not echoed: it holds a secret.
        raise UsageError(
            f"--url must not carry credentials; put the API key in ${DEFAULT_API_KEY_ENV} (or the variable --api-key-env names)"
        )
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--url must be an http:// or https:// URL, not {url!r}")
    path = parsed.path.rstrip("/")
    for suffix in ("/chat/completions", "/models"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    if not path.endswith("/v1"):
        path += "/v1"
    try:
        port = parsed.port
    except ValueError:  # not a number, or outside 0-65535
        raise UsageError(f"--url has a bad port (1-65535): {url!r}") from None
    if port == 0:  # `or 80` would silently turn :0 into the default port
        raise UsageError(f"--url has a bad port (1-65535): {url!r}")
    port = port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, parsed.hostname, port, path


class _Cancelled(Exception):
    pass


class Http:
    """Keep-alive connections, one per thread; retries with exponential backoff and jitter.

    `cancel()` closes every open socket and stops the retry sleeps, so that a scan ending early
    (Ctrl-C, the server gone) does not wait for in-flight requests to time out.
    """

    def __init__(self, url: str, api_key: str | None, timeout: float, retries: int, backoff: float):
        self.scheme, self.host, self.port, self.prefix = split_url(url)
        self.display = f"{self.scheme}://{self.host}:{self.port}{self.prefix}"
        self._api_key = api_key
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()
        self.cancelled = threading.Event()
        self.requests = 0  # round trips attempted (tests, benchmarks)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._open.add(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._open.discard(conn)

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json",
             "User-Agent": f"fakescope/{__version__}"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def scrub(self, text: str) -> str:
        """Server text shown to the user, without the API key should a server echo it."""
        text = " ".join(text.split())
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text[:400] + ("…" if len(text) > 400 else "")

    def roundtrip(self, method: str, path: str, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        """One request on this thread's connection. A reused keep-alive connection that the server
        has closed meanwhile is reopened once, at no retry cost."""
        if self.cancelled.is_set():
            raise _Cancelled
        for fresh_try in (False, True):
            conn = self._conn()
            reused = conn.sock is not None
            with self._lock:
                self.requests += 1
            try:
                conn.request(method, self.prefix + path, body=body, headers=self.headers())
                resp = conn.getresponse()
                data = resp.read(MAX_RESPONSE_BYTES + 1)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop()
                if self.cancelled.is_set():
                    raise _Cancelled from None
                if reused and not fresh_try:
                    continue
                raise
            except (OSError, http.client.HTTPException):
                self._drop()
                if self.cancelled.is_set():
                    raise _Cancelled from None
                raise
            if len(data) > MAX_RESPONSE_BYTES:
                self._drop()
                raise http.client.HTTPException(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            if resp.will_close:
                self._drop()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        raise AssertionError("unreachable")

    def delay(self, attempt: int, retry_after: str | None) -> float:
        d = min(30.0, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)
        if retry_after:
            try:
                d = max(d, min(60.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: keep the exponential delay
        return d

    def call(self, method: str, path: str, payload: dict[str, Any] | None,
             *, retries: int | None = None, retry_connect: bool = True) -> dict[str, Any]:
        """JSON in, JSON out. Raises DetectorUnavailable (server unreachable, refusing, or still
        busy after the retries) or InputError (the server rejected this request)."""
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            retry_after = None
            try:
                status, headers, data = self.roundtrip(method, path, body)
            except _Cancelled:
                raise DetectorUnavailable(f"requests to {self.display} were cancelled") from None
            except (OSError, http.client.HTTPException) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, TimeoutError):
                    why = f"no answer within {self.timeout:g} s (--request-timeout)"
                if not retry_connect or attempt >= retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise DetectorUnavailable(f"cannot reach the server at {self.display}{tries}: {why}") from None
                last = why
            else:
                if status == 200:
                    try:
                        obj = json.loads(data)
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        raise DetectorUnavailable(
                            f"{self.display}{path} answered HTTP 200 with something that is not JSON: "
                            f"{self.scrub(data[:200].decode('utf-8', 'replace'))}") from None
                    if not isinstance(obj, dict):
                        raise DetectorUnavailable(f"{self.display}{path} answered JSON that is not an object")
                    return obj
                message = self.scrub(_error_message(data))
                last = f"HTTP {status}: {message}"
                retry_after = headers.get("retry-after")
                if status not in RETRY_STATUSES or attempt >= retries:
                    raise self._status_error(status, path, message, attempt)
            if self.cancelled.wait(self.delay(attempt, retry_after)):
                raise DetectorUnavailable(f"requests to {self.display} were cancelled (last: {last})")
            attempt += 1

    def _status_error(self, status: int, path: str, message: str, attempt: int) -> Exception:
        tries = f" (after {attempt + 1} attempts)" if attempt else ""
        where = f"{self.display}{path}"
        if status in (401, 403):
            return DetectorUnavailable(
                f"{where} refused the request (HTTP {status}: {message}): set the API key in the environment "
                "variable that --api-key-env names (default FAKESCOPE_API_KEY)")
        if status == 404:
            return DetectorUnavailable(f"{where} not found (HTTP 404: {message}): check --url and --model")
        if status in UNAVAILABLE_STATUSES:
            return DetectorUnavailable(f"{where} is unavailable: HTTP {status}{tries}: {message}")
        return InputError(f"the server rejected the request: HTTP {status}{tries}: {message}", "detector-error")


def _error_message(data: bytes) -> str:
    text = data[:4000].decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return text or "(empty answer)"
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
            if isinstance(msg, str):
                return msg
        for key in ("message", "detail"):
            if isinstance(obj.get(key), str):
                return obj[key]
    return text
