"""A small Hugging Face-compatible hub on 127.0.0.1 for `fakescope models pull` tests.

It serves the few endpoints huggingface_hub uses to download a model repository:
  GET  /api/models/{owner}/{name}[/revision/{rev}]   model info: sha (the commit) and siblings
                                                       (file names, sizes, LFS sha256 with ?blobs=true)
  HEAD /{owner}/{name}/resolve/{rev}/{file}           ETag (LFS: the sha256, also X-Linked-Etag /
                                                       X-Linked-Size), X-Repo-Commit, Content-Length
  GET  /{owner}/{name}/resolve/{rev}/{file}           the bytes; `Range: bytes=N-` gives 206 + Content-Range
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound) as the hub's do.

`drop_once[file] = n` makes the first full GET of that file send its headers and n bytes, then
close the connection (a download interrupted mid-file). Every request is logged in `requests`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx")


@dataclass
class Repo:
    repo_id: str
    files: dict[str, bytes]
    commit: str = ""
    branches: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit = hashlib.sha1(json.dumps(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in
                                                         self.files.items())).encode()).hexdigest()
        self.branches.setdefault("main", self.commit)


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    authorization: str | None


class LocalHub:
    def __init__(self, repos: list[Repo]):
        self.repos = {r.repo_id: r for r in repos}
        self.requests: list[Request] = []
        self.drop_once: dict[str, int] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def resolve(self, repo: Repo, rev: str) -> str | None:
        if rev in repo.branches:
            return repo.branches[rev]
        if re.fullmatch(r"[0-9a-f]{40}", rev) and rev in {repo.commit, *repo.branches.values()}:
            return rev
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _log(self) -> None:
                with hub._lock:
                    hub.requests.append(Request(self.command, self.path, self.headers.get("Range"),
                                                self.headers.get("Authorization")))

            def _error(self, status: int, code: str) -> None:
                body = json.dumps({"error": code}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802
                self._log()
                self._serve(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._log()
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
                if m:
                    return self._info(m.group(1), m.group(2) or "main", "blobs=true" in parts.query.lower())
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if m:
                    return self._file(m.group(1), m.group(2), m.group(3), body)
                self._error(404, "NotFound")

            def _repo_at(self, repo_id: str, rev: str) -> tuple[Any, str] | None:
                """The repo and the commit `rev` names, or None after answering 404 as the hub does."""
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound")
                    return None
                commit = hub.resolve(repo, rev)
                if commit is None:
                    self._error(404, "RevisionNotFound")
                    return None
                return repo, commit

            def _info(self, repo_id: str, rev: str, blobs: bool) -> None:
                found = self._repo_at(repo_id, rev)
                if found is None:
                    return
                repo, commit = found
                siblings = []
                for name, data in sorted(repo.files.items()):
                    entry: dict[str, Any] = {"rfilename": name}
                    if blobs:
                        entry["size"] = len(data)
                        entry["blobId"] = hashlib.sha1(data).hexdigest()
                        if name.endswith(LFS_SUFFIXES):
                            entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                            "pointerSize": 134}
                    siblings.append(entry)
                payload = json.dumps({"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                                      "siblings": siblings}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _file(self, repo_id: str, rev: str, name: str, body: bool) -> None:
                found = self._repo_at(repo_id, rev)
                if found is None:
                    return
                repo, commit = found
                data = repo.files.get(name)
                if data is None:
                    return self._error(404, "EntryNotFound")
                lfs = name.endswith(LFS_SUFFIXES)
                etag = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(data).hexdigest()
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    rm = re.fullmatch(r"bytes=(\d+)-", rng.strip())
                    if not rm or int(rm.group(1)) >= len(data):
                        return self._error(416, "RangeNotSatisfiable")
                    start = int(rm.group(1))
                chunk = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", commit)
                if lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(chunk)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                cut = hub.drop_once.get(name)
                if cut is not None and not rng and name not in hub._dropped:
                    hub._dropped.add(name)
                    self.wfile.write(chunk[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(chunk)

        return Handler
