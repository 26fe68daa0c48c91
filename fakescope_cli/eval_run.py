"""`fakescope eval`: scan a labelled set with any backend, then measure (and optionally calibrate)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fakescope_cli.analyze import ScanConfig
from fakescope_cli.engine import analysis_engine
from fakescope_cli.evaluate import evaluate, render_eval_text, threshold_file_from_eval
from fakescope_cli.inputs import Candidate
from fakescope_cli.labels import load_labelled
from fakescope_cli.output import check_output_target, output_stream, refuse_same_outputs


@dataclass
class EvalOptions:
    path: str
    config: ScanConfig
    threshold: float | None = None  # None: the detector's upper threshold
    jobs: int = 0
    file_timeout: float | None = None
    calibrate: str | None = None
    target_fpr: float = 0.05
    records_out: str | None = None
    json_out: str | None = None  # checked here with the other outputs; written by the CLI
    force: bool = False  # write the threshold file even when the scores do not separate


def run_eval(opts: EvalOptions) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Return (report, text for the terminal, threshold file or None). A threshold file whose scores
    do not separate (`separates` false) is not written unless `force`: the caller says why, exit 2."""
    items = load_labelled(opts.path)
    candidates = [Candidate(item.path, True) for item in items]
    inputs = [opts.path, *(c.path for c in candidates)]  # the labels CSV is an input too
    outputs = (("--records", opts.records_out), ("--calibrate", opts.calibrate), ("--json", opts.json_out))
    refuse_same_outputs(outputs)
    for flag, output in outputs:
        check_output_target(output, inputs, flag)  # before any work, as scan does
    records: list[dict[str, Any]] = []
    try:
        with analysis_engine(opts.config, len(candidates), opts.jobs, opts.file_timeout) as (info, analyse_all):
            from fakescope_cli.fusion import thresholds_from

            threshold = opts.threshold if opts.threshold is not None else thresholds_from(info, None).high
            records.extend(analyse_all(candidates))
    finally:
        # Interrupted or not, the records analysed so far are kept (exit 130 promises it)
        if opts.records_out and records:
            with output_stream(opts.records_out, "jsonl", "--records") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    report = evaluate(items, records, threshold=threshold)
    report["detector"] = info
    if opts.threshold is None and threshold >= 1.0:
        report["notes"].append(
            "the detector's own band is closed (it never flags an image alone), so accuracy and the confusion "
            "matrix are read at threshold 1; set one with --threshold, or pick one with --calibrate"
        )
    calibration = None
    if opts.calibrate:
        calibration = threshold_file_from_eval(items, records, opts.target_fpr)
        calibration["forced"] = bool(opts.force and not calibration["separates"])
        if calibration["separates"] or opts.force:
            with output_stream(opts.calibrate, "json", "--calibrate") as fh:
                fh.write(json.dumps(calibration, indent=2) + "\n")
    return report, render_eval_text(report), calibration
