"""The scan command: walk the inputs, check the outputs, run the engine, render, decide the exit code.

The analysis itself (detector, cache, workers, order) is engine.py's, shared with `eval`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli import interrupts
from fakescope_cli.analyze import ScanConfig
from fakescope_cli.engine import analysis_engine
from fakescope_cli.errors import DetectorUnavailable, UsageError, outcome_exit_code
from fakescope_cli.gates import Gate, GateOutcome, say_gate_outcome
from fakescope_cli.inputs import Candidate, InputExpander
from fakescope_cli.output import check_output_target, output_stream, refuse_overwriting_images_in
from fakescope_cli.record import count_records, run_header, utc_now


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
    fail_on: frozenset[str] = frozenset()  # --fail-on verdicts (gates.py)
    only: frozenset[str] = frozenset()  # --only: which records the output shows (render.parse_only)
    shard: tuple[int, int] | None = None  # (K, N): scan only the K-th of N path-hash shards
    quiet: bool = False
    color: bool = True
    arguments: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    exit_code: int
    counts: dict[str, int]
    interrupted: bool = False


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


def _check_calibration(opts: RunOptions, detector_info: dict[str, Any] | None) -> None:
    """A threshold picked on another detector's scores means nothing here: refused. One picked on
    other weights of the same detector may still roughly hold: a warning."""
    calibration = opts.config.calibration
    if calibration is None:
        return
    from fakescope_cli.threshold_file import threshold_file_mismatch

    if calibration.get("separates") is False and not opts.quiet:  # written by `eval --calibrate --force`
        print("fakescope: warning: --calibration: this threshold did not separate real from fake on the images "
              "it was picked on (written with --force); its verdicts may be no better than chance", file=sys.stderr)
    info = detector_info or {}
    problem = threshold_file_mismatch(calibration, info.get("id"), info.get("weights_sha256"))
    if problem is None:
        return
    if calibration.get("detector_id") not in (None, info.get("id")):
        raise UsageError(f"--calibration: {problem}; make one for this detector with `fakescope eval "
                         "--calibrate`")
    if not opts.quiet:
        print(f"fakescope: warning: --calibration: {problem}", file=sys.stderr)


def run_scan(opts: RunOptions) -> RunResult:
    from fakescope_cli.render import make_renderer, record_filter

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
    gate = GateOutcome(Gate(opts.fail_above, opts.fail_on))
    interrupted = False
    lost: DetectorUnavailable | None = None

    # A Ctrl-C or SIGTERM during start-up, the walk or the detector's loading is held until the output
    # has begun: then it stops the scan at once, and the output is a finished document (interrupts.py).
    with interrupts.held(), analysis_engine(
        opts.config, len(candidates), opts.jobs, opts.file_timeout
    ) as (detector_info, analyse_all):
        _check_calibration(opts, detector_info)
        header = run_header(opts.arguments, detector_info, started)
        shown = record_filter(opts.only)
        show_progress = not opts.quiet and sys.stderr.isatty()
        # The bar (and its refresh thread) starts with the first record, after the workers: a scan
        # with no thread running may fork them directly (see workers.fork_is_safe).
        progress = None
        try:
            with output_stream(opts.output, opts.fmt) as stream:
                renderer = make_renderer(opts.fmt, stream, color=opts.color)
                renderer.start(header)
                try:
                    interrupts.stop_holding()
                    for record in analyse_all(candidates):
                        if shown(record):
                            renderer.add(record)
                        count_records(counts, record)
                        if record["errors"]:
                            counts["errors"] += 1
                        gate.add(record)
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
                header["gate"] = gate.to_header()
                renderer.finish(header)
        finally:
            if progress is not None:
                progress.stop()

    if lost is not None:
        done = counts["files"]
        raise DetectorUnavailable(
            f"{lost.message} (stopped after {done} file(s); their records were written)" if done else lost.message
        )
    if not interrupted:
        say_gate_outcome(gate)
    code = outcome_exit_code(gate_tripped=gate.tripped, unanalysed=counts["errors"], interrupted=interrupted)
    return RunResult(code, counts, interrupted=interrupted)


