"""The scan command's engine: inputs → analysis (in process or in workers) → renderer → exit code."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.analyze import Analyzer, ScanConfig
from fakescope_cli.errors import (
    EXIT_GATE,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DetectorUnavailable,
    UsageError,
)
from fakescope_cli.inputs import Candidate, InputExpander
from fakescope_cli.output import check_output_target, output_stream, refuse_overwriting_images_in
from fakescope_cli.record import count_records, run_header, utc_now
from fakescope_cli.workers import WorkerPool

# Backends that hold a large model: one copy in this process, batching inside the backend.
IN_PROCESS_BACKENDS = frozenset({"hf", "gguf", "server", "classifier"})
DEFAULT_FILE_TIMEOUT = 300.0


@dataclass
class RunOptions:
    paths: list[str]
    config: ScanConfig
    fmt: str = "table"
    output: str | None = None
    jobs: int = 0  # 0: one per core
    file_timeout: float | None = None  # None: DEFAULT_FILE_TIMEOUT, and only when workers run anyway
    recursive: bool = True
    follow_symlinks: bool = False
    exts: frozenset[str] | None = None
    fail_above: float | None = None
    shard: tuple[int, int] | None = None  # (K, N): scan only the K-th of N path-hash shards
    quiet: bool = False
    color: bool = True
    arguments: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    exit_code: int
    counts: dict[str, int]
    interrupted: bool = False


class _Interrupted(Exception):
    pass


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI timeout, `kill`) ends the scan the same orderly way Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(file=sys.stderr), transient=True,
    )
    progress.start()
    progress.add_task("scan", total=total)
    return progress


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
    analyzer = Analyzer(config)
    # An explicit --file-timeout needs a killable worker even for one job.
    use_workers = config.backend not in IN_PROCESS_BACKENDS and (jobs > 1 or file_timeout is not None)
    if not use_workers:
        # A detector that waits on a remote server says how many files may be in flight at once;
        # --jobs overrides that number. Everything else runs one file at a time here.
        in_flight = requested_jobs or int(getattr(analyzer.detector, "parallel_requests", 0) or 1)
        batch = int(getattr(analyzer.detector, "batch_size", 1) or 1)
        if in_flight > 1 and getattr(analyzer.detector, "parallel_requests", 0):
            yield analyzer.detector_info, lambda cands: _threaded_in_order(analyzer, cands, in_flight)
        elif batch > 1 and callable(getattr(analyzer.detector, "analyze_batch", None)):
            yield analyzer.detector_info, lambda cands: _batched_in_order(analyzer, cands, batch)
        else:
            yield analyzer.detector_info, lambda cands: (analyzer.analyze(c) for c in cands)
        return

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
            cancel = getattr(analyzer.detector, "cancel", None)
            if callable(cancel):
                cancel()
        pool.shutdown(wait=finished, cancel_futures=True)


def _check_calibration(opts: RunOptions, detector_info: dict[str, Any] | None) -> None:
    """A threshold picked on another detector's scores means nothing here: refused. One picked on
    other weights of the same detector may still roughly hold: a warning."""
    calibration = opts.config.calibration
    if calibration is None:
        return
    from fakescope_cli.evaluate import calibration_mismatch

    info = detector_info or {}
    problem = calibration_mismatch(calibration, info.get("id"), info.get("weights_sha256"))
    if problem is None:
        return
    if calibration.get("detector_id") not in (None, info.get("id")):
        raise UsageError(f"--calibration: {problem}; make one for this detector with `fakescope eval "
                         "--calibrate`")
    if not opts.quiet:
        print(f"fakescope: warning: --calibration: {problem}", file=sys.stderr)


def run_scan(opts: RunOptions) -> RunResult:
    from fakescope_cli.render import make_renderer

    expander = InputExpander(recursive=opts.recursive, follow_symlinks=opts.follow_symlinks, exts=opts.exts)
    candidates: list[Candidate] = list(expander.expand(opts.paths))
    # Checked against every file found, before --shard picks its part: another shard's image is
    # evidence too, and so is an image in a scanned folder that --ext left out.
    check_output_target(opts.output, (c.path for c in candidates))
    if opts.output is not None:
        refuse_overwriting_images_in(opts.output, [p for p in opts.paths if os.path.isdir(p)])
    if opts.shard is not None:
        from fakescope_cli.merge import shard_of

        k, n = opts.shard
        candidates = [c for c in candidates if shard_of(c.path, n) == k]
    started = utc_now()
    counts: dict[str, int] = {"files": 0, "errors": 0, "skipped": expander.stats.skipped
                              + expander.stats.skipped_special, "skipped_by_ext": expander.stats.skipped_by_ext}
    gate_tripped = False
    interrupted = False
    lost: DetectorUnavailable | None = None

    with sigterm_as_interrupt(), analysis_engine(
        opts.config, len(candidates), opts.jobs, opts.file_timeout
    ) as (detector_info, analyse_all):
        _check_calibration(opts, detector_info)
        header = run_header(opts.arguments, detector_info, started)
        show_progress = not opts.quiet and sys.stderr.isatty()
        # The bar (and its refresh thread) starts with the first record, after the workers: a scan
        # with no thread running may fork them directly (see workers.fork_is_safe).
        progress = None
        try:
            with output_stream(opts.output, opts.fmt) as stream:
                renderer = make_renderer(opts.fmt, stream, color=opts.color)
                renderer.start(header)
                try:
                    for record in analyse_all(candidates):
                        renderer.add(record)
                        count_records(counts, record)
                        if record["errors"]:
                            counts["errors"] += 1
                        p = record["p_fake"]
                        if opts.fail_above is not None and p is not None and p > opts.fail_above:
                            gate_tripped = True
                        if progress is None and show_progress:
                            progress = _progress(len(candidates), enabled=True)
                        if progress is not None:
                            progress.advance(progress.task_ids[0])
                except KeyboardInterrupt:
                    interrupted = True
                except DetectorUnavailable as exc:
                    # The detector went away mid-scan (a server killed or unreachable): finish the
                    # output with what is done, marked as cut short, then exit 4.
                    lost = exc
                if progress is not None:  # gone before the table prints, or the two share a line
                    progress.stop()
                    progress = None
                header["finished_at"] = utc_now()
                header["interrupted"] = interrupted or lost is not None
                if lost is not None:
                    header["error"] = {"code": lost.code, "message": lost.message}
                header["counts"] = counts
                renderer.finish(header)
        finally:
            if progress is not None:
                progress.stop()

    if lost is not None:
        done = counts["files"]
        raise DetectorUnavailable(
            f"{lost.message} (stopped after {done} file(s); their records were written)" if done else lost.message
        )
    if interrupted:
        return RunResult(EXIT_INTERRUPTED, counts, interrupted=True)
    if gate_tripped:
        code = EXIT_GATE
    elif counts["errors"]:
        code = EXIT_INCOMPLETE
    else:
        code = EXIT_OK
    return RunResult(code, counts)


def default_jobs_for(n_files: int) -> int:
    from fakescope_cli.workers import default_jobs

    # Starting workers costs ~0.3 s each; not worth it for a handful of files.
    return 1 if n_files < 4 else default_jobs()
