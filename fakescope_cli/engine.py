"""The analysis engine shared by `scan` and `eval`: candidates in, one record each out, in order.

It loads the detector once, serves cached results from this process, and sends the rest to the
detector in process (batched, or several requests in flight for a server) or to worker processes
(killable, for --file-timeout). The commands around it (scan.py, eval_run.py) walk the inputs,
check the outputs and render or measure the records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fakescope_cli.analyze import Analyzer, ScanConfig
from fakescope_cli.detectors import Detector, backend_names, load_detector
from fakescope_cli.errors import UsageError
from fakescope_cli.inputs import Candidate

if TYPE_CHECKING:  # imported when workers start: multiprocessing is ~7 ms of a one-file scan
    from fakescope_cli.workers import WorkerPool

DEFAULT_FILE_TIMEOUT = 300.0


def refuse_unknown_backend(name: str) -> None:
    """A --backend name that no built-in or plugin has is a typo: a usage error (exit 2), not a
    detector that failed to load (exit 4). `module:Class` names are checked when loaded."""
    if ":" not in name and name not in backend_names():
        raise UsageError(f"unknown backend {name!r}; choose from: {', '.join(backend_names())}")


def load_checked_detector(config: ScanConfig) -> Detector | None:
    """The run's detector. The two --backend mistakes that are the user's, not the detector's, are
    usage errors (exit 2): a name no backend has, and a class that is not a detector. A known backend
    that cannot load (its extra missing, no model, no server) stays DetectorUnavailable (exit 4)."""
    if not config.allow_pixels:
        return None
    name = config.backend
    refuse_unknown_backend(name)
    return load_detector(name, config.backend_options)  # a class that is no Detector: UsageError


@contextmanager
def analysis_engine(
    config: ScanConfig, n_files: int, jobs: int = 0, file_timeout: float | None = None
) -> Iterator[tuple[dict[str, Any] | None, Callable[[Sequence[Candidate]], Iterator[dict[str, Any]]]]]:
    """Load the detector once and yield (detector_info, map).

    `map(candidates)` yields one record per candidate, in order. Cached results are served from
    this process; workers start only when some file actually needs analysing.
    DetectorUnavailable propagates.
    """
    requested_jobs = jobs
    # Metadata-only work is ~0.5 ms a file: shipping files to workers and records back costs about
    # as much, so by default it stays in this process (measured in bench/bench_metadata.py).
    jobs = jobs or (1 if not config.allow_pixels else default_jobs_for(n_files))
    analyzer = Analyzer(config, load_checked_detector(config))
    # An explicit --file-timeout needs a killable worker even for one job.
    detector = analyzer.detector
    in_process = detector is not None and detector.runs_in_process
    use_workers = not in_process and (jobs > 1 or file_timeout is not None)
    if not use_workers:
        # A detector that waits on a remote server says how many files may be in flight at once;
        # --jobs overrides that number. Everything else runs one file at a time here.
        parallel = detector.parallel_requests if detector is not None else 0
        in_flight = requested_jobs or parallel or 1
        batch = detector.batch_size if detector is not None else 1
        if in_flight > 1 and parallel:
            yield analyzer.detector_info, lambda cands: _threaded_in_order(analyzer, cands, in_flight)
        elif batch > 1:
            yield analyzer.detector_info, lambda cands: _batched_in_order(analyzer, cands, batch)
        else:
            yield analyzer.detector_info, lambda cands: (analyzer.analyze(c) for c in cands)
        return

    from fakescope_cli.workers import WorkerPool

    pools: list[WorkerPool] = []

    def analyse_all(cands: Sequence[Candidate]) -> Iterator[dict[str, Any]]:
        cached = [analyzer.cached(c) for c in cands]
        misses = [c for c, hit in zip(cands, cached, strict=True) if hit is None]
        fresh: Iterator[dict[str, Any]] = iter(())
        if misses:
            pool = WorkerPool(config, min(jobs, len(misses)), file_timeout or DEFAULT_FILE_TIMEOUT)
            pools.append(pool)
            pool.__enter__()
            fresh = pool.map(misses)
        for hit in cached:
            yield hit if hit is not None else next(fresh)

    try:
        yield analyzer.detector_info, analyse_all
    finally:
        for pool in pools:
            pool.__exit__(None, None, None)


def _batched_in_order(analyzer: Analyzer, cands: Sequence[Candidate], size: int) -> Iterator[dict[str, Any]]:
    """Records in candidate order; cache misses go to the detector `size` at a time."""
    window: list[tuple[Candidate, dict[str, Any] | None]] = []

    def flush() -> Iterator[dict[str, Any]]:
        misses = [c for c, hit in window if hit is None]
        fresh = iter(analyzer.compute_batch(misses)) if misses else iter(())
        for c, hit in window:
            if hit is None:
                hit = next(fresh)
                analyzer.remember(c, hit)
            yield hit
        window.clear()

    for c in cands:
        hit = analyzer.cached(c)
        window.append((c, hit))
        if sum(1 for _, h in window if h is None) >= size:
            yield from flush()
    yield from flush()


def _threaded_in_order(analyzer: Analyzer, cands: Sequence[Candidate], n: int) -> Iterator[dict[str, Any]]:
    """Records in candidate order, with up to `n` files being analysed at once in threads.

    Cache lookups and stores stay in this thread (the SQLite connection belongs to it). A
    DetectorUnavailable from any file surfaces when that file's turn comes, after every earlier
    record has been yielded; the detector's `cancel()` then stops the requests still in flight.
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="fakescope-analyze")
    pending: deque[tuple[Candidate, dict[str, Any] | Future[dict[str, Any]]]] = deque()
    running = 0
    it = iter(cands)
    exhausted = False
    finished = False
    try:
        while True:
            while not exhausted and running < n and len(pending) < 4 * n:
                c = next(it, None)
                if c is None:
                    exhausted = True
                    break
                hit = analyzer.cached(c)
                if hit is not None:
                    pending.append((c, hit))
                else:
                    pending.append((c, pool.submit(analyzer.compute, c)))
                    running += 1
            if not pending:
                finished = True
                return
            c, item = pending.popleft()
            if isinstance(item, Future):
                running -= 1
                record = item.result()
                analyzer.remember(c, record)
                yield record
            else:
                yield item
    finally:
        if not finished:
            if analyzer.detector is not None:
                analyzer.detector.cancel()
        pool.shutdown(wait=finished, cancel_futures=True)


def default_jobs_for(n_files: int) -> int:
    from fakescope_cli.workers import default_jobs

    # Starting workers costs ~0.3 s each; not worth it for a handful of files.
    return 1 if n_files < 4 else default_jobs()
