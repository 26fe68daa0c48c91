"""The threshold file: what `fakescope eval --calibrate` writes and `scan --calibration` reads.

One JSON object (format `fakescope-calibration/1`, kept for files already written): the threshold
picked on the user's labelled images, the rule it applies (`p_fake >= threshold` flags), the rates
measured when it was picked, and the detector and weights it was picked for. In fakescope's code
"calibration" means only a detector's score mapping (Platt, temperature: protocol.Calibration);
this file holds a decision threshold, hence its name here.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from fakescope_cli.errors import InputError, UsageError
from fakescope_cli.media import read_file_readonly

THRESHOLD_FILE_FORMAT = "fakescope-calibration/1"
MAX_THRESHOLD_FILE_BYTES = 1 << 20  # a threshold file is a few hundred bytes
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class ThresholdFileError(UsageError, ValueError):
    """A threshold file that cannot be used: a usage error (exit 2), also a ValueError."""


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_rate(v: Any) -> bool:
    return _is_num(v) and 0.0 <= v <= 1.0


def validate_threshold_file(data: Any, source: str = "calibration") -> dict[str, Any]:
    """Check a parsed calibration object; return it, or raise ThresholdFileError naming the bad field."""

    def bad(msg: str) -> ThresholdFileError:
        return ThresholdFileError(f"{source}: not a valid fakescope threshold file: {msg}")

    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    if data.get("format") != THRESHOLD_FILE_FORMAT:
        raise bad(f"'format' must be {THRESHOLD_FILE_FORMAT!r}, found {data.get('format')!r}")
    t = data.get("threshold")
    # A threshold may sit one float above 1.0 when a real image scored 1.0 (flags nothing).
    if not _is_num(t) or not 0.0 <= t <= 1.0 + 1e-9:
        raise bad("'threshold' must be a number in [0, 1]")
    if not _is_rate(data.get("target_fpr")):
        raise bad("'target_fpr' must be a number in [0, 1]")
    if not _is_rate(data.get("measured_fpr")):
        raise bad("'measured_fpr' must be a number in [0, 1]")
    if data.get("measured_tpr") is not None and not _is_rate(data["measured_tpr"]):
        raise bad("'measured_tpr' must be a number in [0, 1] or null")
    for key, least in (("n_real", 1), ("n_fake", 0)):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise bad(f"'{key}' must be an integer >= {least}")
    if data.get("detector_id") is not None and not isinstance(data["detector_id"], str):
        raise bad("'detector_id' must be a string or null")
    w = data.get("weights_sha256")
    if w is not None and not (isinstance(w, str) and _SHA256_RE.fullmatch(w)):
        raise bad("'weights_sha256' must be 64 lowercase hex digits or null")
    if not isinstance(data.get("created_at"), str):
        raise bad("'created_at' must be a string")
    return data


def load_threshold_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a calibration file written by `eval --calibrate`; ThresholdFileError if not."""
    p = os.fspath(path)
    try:
        # the guarded reader: never blocks on a FIFO, refuses empty and oversized files
        raw, _ = read_file_readonly(p, MAX_THRESHOLD_FILE_BYTES)
    except InputError as exc:
        raise ThresholdFileError(f"{p}: cannot read threshold file: {exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ThresholdFileError(f"{p}: not a valid fakescope threshold file: not JSON ({exc})") from None
    return validate_threshold_file(data, p)


def threshold_file_mismatch(calibration: dict[str, Any], detector_id: str | None,
                         weights_sha256: str | None) -> str | None:
    """A warning when a calibration was made for another detector or weights file, else None."""
    cal_id, cal_w = calibration.get("detector_id"), calibration.get("weights_sha256")
    if cal_id is not None and detector_id is not None and cal_id != detector_id:
        return f"calibration was made for detector {cal_id!r}, not {detector_id!r}"
    if cal_w is not None and weights_sha256 is not None and cal_w != weights_sha256:
        return "calibration was made for other weights (sha256 differs); its threshold may not hold"
    return None
