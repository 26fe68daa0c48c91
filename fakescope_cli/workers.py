"""Run the analyzer over many files: in process, or in worker processes that can be killed.

Workers give two guarantees the in-process path cannot: a file that hangs a decoder is stopped
at --file-timeout (its worker is killed and replaced), and a file that crashes a C library costs
that file only. Results come back in input order whatever the workers' timing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any

from fakescope_cli.analyze import refused
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError
from fakescope_cli.inputs import Candidate
from fakescope_cli.media import Media, display_path
from fakescope_cli.record import ScanRecord


def error_record(candidate: Candidate, code: str, message: str, info: dict[str, Any] | None,
                 max_bytes: int | None = None) -> dict[str, Any]:
    """The record of a file whose worker was killed (timeout) or crashed on it. Its custody (sha256,
    size, date) is read again here: reading bytes is safe, it was the analysis that hung or crashed."""
    rec = ScanRecord(path=display_path(candidate.path))
    if info:
        rec.detector_id, rec.detector_version, rec.weights_sha256 = (
            info.get("id"), info.get("version"), info.get("weights_sha256"))
    facts: dict[str, Any] = {}
    if max_bytes is not None:
        try:
            media = Media.open(candidate.path, max_bytes=max_bytes, allow_pixels=False)
            facts = {"sha256": media.sha256, "bytes": media.size, "mtime_ns": media.mtime_ns}
        except InputError as exc:
            facts = exc.facts
    return refused(rec, code, message, facts)


def _worker_main(conn: Connection, config: Any) -> None:
    # The parent decides what Ctrl-C and SIGTERM mean; workers just stop when told or killed. (A forked
    # worker would otherwise inherit the parent's SIGTERM-as-Ctrl-C handler.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # held back by the parent around the fork
    from fakescope_cli.analyze import Analyzer

    try:
        analyzer = Analyzer(config)
    except (DetectorUnavailable, UsageError) as exc:
        conn.send(("fatal", str(exc)))
        return
    conn.send(("ready", analyzer.detector_info))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, candidate = task
        conn.send(("done", index, analyzer.analyze(candidate)))


TASKS_IN_FLIGHT = 2

PRELOAD = [
    "fakescope_cli.analyze",
    "fakescope_cli.evidence.c2pa",
    "fakescope_cli.evidence.xmp",
    "fakescope_cli.evidence.generators",
    "fakescope_cli.evidence.watermark",
    "fakescope_cli.evidence.exif",
]


# Imported, these run native thread pools that a forked child would inherit in an unknown state.
THREADED_NATIVE_MODULES = ("onnxruntime", "torch", "llama_cpp")


def fork_is_safe() -> bool:
    """Can a worker be forked straight from this process?

    Forking reuses everything this process has imported and loaded: a worker is ready in ~10 ms
    instead of the ~0.2 s a fork server needs to start and import the pipeline. It is safe only
    while this process runs no other thread (a lock held by a thread that does not exist in the
    child can never be released): no Python thread (Rich's progress refresh, a thread pool) and no
    native thread pool from the libraries above. OpenBLAS, which numpy starts, handles fork itself.
    Linux only: macOS system libraries are not fork-safe.
    """
    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and not any(name in sys.modules for name in THREADED_NATIVE_MODULES)
    )


def _fallback_context() -> Any:
    """A fork server where the platform has one (workers fork from a clean, preloaded process), else spawn."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # The fork server imports the pipeline once; each worker forks from it ready to go,
        # instead of paying ~0.3 s of imports (numpy, Pillow, c2pa, readers) per worker.
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


def worker_context() -> Any:
    """How the next worker starts: decided per worker, since a replacement may start mid-scan, when
    this process may have started a thread."""
    return mp.get_context("fork") if fork_is_safe() else _fallback_context()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while a worker starts. A forked child runs the parent's handlers until
    _worker_main replaces them, so a Ctrl-C in that window would print a traceback from the worker; held
    back, it reaches the parent just after the fork and the child never sees it."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: workers are spawned, nothing is inherited
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    def __init__(self, ctx: Any, config: Any):
        self.start_method = ctx.get_start_method()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, config), daemon=True)
        with _stop_signals_held():
            self.proc.start()
        child.close()
        # tasks sent and not yet answered, oldest first; the worker runs them in order, so the head is
        # the one in progress and its deadline is the one that counts
        self.tasks: deque[tuple[int, Candidate]] = deque()
        self.deadline = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class WorkerPool:
    def __init__(self, config: Any, jobs: int, file_timeout: float | None):
        self.config = config
        self.jobs = max(1, jobs)
        self.file_timeout = file_timeout
        self.workers: list[_Worker] = []
        self.detector_info: dict[str, Any] | None = None

    def __enter__(self) -> WorkerPool:
        self.workers = [_Worker(worker_context(), self.config) for _ in range(self.jobs)]
        for w in self.workers:
            self._await_ready(w)
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers:
            try:
                if w.proc.is_alive() and not w.tasks:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.proc.join(timeout=0.5)
            w.kill()

    def _await_ready(self, w: _Worker) -> None:
        try:
            msg = w.conn.recv()
        except EOFError:
            raise DetectorUnavailable("a worker process died while loading the detector") from None
        if msg[0] == "fatal":
            raise DetectorUnavailable(msg[1])
        self.detector_info = msg[1]

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        fresh = _Worker(worker_context(), self.config)
        self._await_ready(fresh)
        self.workers[self.workers.index(w)] = fresh
        return fresh

    def map(self, candidates: Sequence[Candidate]) -> Iterator[dict[str, Any]]:
        """Yield one record per candidate, in order."""
        pending = iter(enumerate(candidates))
        done: dict[int, dict[str, Any]] = {}
        next_out = 0
        total = len(candidates)
        exhausted = False

        # Tasks taken back from a worker that crashed or timed out before starting them.
        retry: deque[tuple[int, Candidate]] = deque()

        def feed(w: _Worker) -> None:
            # Two tasks in flight per worker: the next file is already waiting in the pipe when one
            # finishes, so a worker never idles while the main process (on a busy core) wakes up.
            nonlocal exhausted
            while len(w.tasks) < TASKS_IN_FLIGHT:
                if retry:
                    task = retry.popleft()
                elif exhausted:
                    return
                else:
                    try:
                        task = next(pending)
                    except StopIteration:
                        exhausted = True
                        return
                try:
                    w.conn.send(task)
                except OSError:
                    # The worker is gone: it crashed on the file it is running (the dead pipe shows
                    # up in wait() below, which blames that file), or it died between files (killed
                    # from outside) and no file is to blame. Either way this one never reached it.
                    retry.appendleft(task)
                    if not w.tasks:
                        feed(self._replace(w))
                    return
                w.tasks.append(task)
                if len(w.tasks) == 1:
                    self._start_clock(w)

        def fail(w: _Worker, code: str, message: str) -> _Worker:
            idx, cand = w.tasks.popleft()
            done[idx] = error_record(cand, code, message, self.detector_info, self.config.max_bytes)
            retry.extendleft(reversed(w.tasks))  # never started: another worker takes them
            w.tasks.clear()
            return self._replace(w)

        for w in self.workers:
            feed(w)
        while next_out < total:
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if next_out >= total:
                break
            busy = [w for w in self.workers if w.tasks]
            now = time.monotonic()
            timeout = max(0.0, min(w.deadline for w in busy) - now) if busy else None
            if timeout == float("inf"):
                timeout = None
            ready = wait([w.conn for w in busy], timeout=timeout)
            for w in list(busy):
                if w.conn in ready:
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        code = w.proc.exitcode
                        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                        w = fail(w, "internal-error", f"the worker analysing this file crashed ({why})")
                        feed(w)
                        continue
                    _, idx, record = msg
                    done[idx] = record
                    w.tasks.popleft()
                    if w.tasks:
                        self._start_clock(w)
                    feed(w)
                elif w.deadline <= time.monotonic():
                    w = fail(w, "timeout", f"analysis took longer than --file-timeout {self.file_timeout:g} s; stopped")
                    feed(w)

    def _start_clock(self, w: _Worker) -> None:
        w.deadline = time.monotonic() + self.file_timeout if self.file_timeout else float("inf")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
