"""What the two ONNX tile detectors (builtin, cycle) share: one onnxruntime session per model and process,
a JSON config beside the weights holding a Platt calibration and an uncertain band, and the result they
build from a score per tile: calibrated p_fake of the mean, a region map, the band the p falls in."""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from fakescope_cli.detectors.base import Detector, DetectorInfo, DetectorResult
from fakescope_cli.errors import DetectorUnavailable
from fakescope_cli.protocol import sigmoid

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def model_file_sha256(path: Path) -> str | None:
    """The identity of a one-file ONNX model; None when it cannot be read (the load then says why)."""
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def default_threads(threads: int | None) -> int:
    """In a scan's worker process the workers already use every core: one thread each avoids
    oversubscription. On its own (one process) a session may use a few."""
    import multiprocessing
    import os

    in_worker = multiprocessing.parent_process() is not None
    return threads or (1 if in_worker else max(1, min(4, os.cpu_count() or 1)))


class OnnxSession:
    """One onnxruntime session per (model, threads) and process, created on first use."""

    _lock = threading.Lock()
    _cache: dict[str, Any] = {}

    @classmethod
    def get(cls, path: Path, threads: int) -> Any:
        key = f"{path}:{threads}"
        with cls._lock:
            if key not in cls._cache:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                cls._cache[key] = ort.InferenceSession(str(path), sess_options=opts,
                                                       providers=["CPUExecutionProvider"])
            return cls._cache[key]


class CalibratedTileDetector(Detector):
    """Base of a detector that scores tiles; subclasses set `id`, `config_path` and `model_name`."""

    needs_modules = ("onnxruntime",)
    config_path: Path
    model_name: str

    @cached_property
    def config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DetectorUnavailable(f"{self.id} detector config unreadable: {self.config_path}: {exc}") from None

    @property
    def version(self) -> str:
        return str(self.config.get("version", "unknown"))

    @property
    def thresholds(self) -> tuple[float, float]:
        band = self.config.get("uncertain", {})
        return float(band.get("low", 0.35)), float(band.get("high", 0.65))

    def describe(self) -> DetectorInfo:
        """Identity for run headers, with the uncertain band that fusion applies to this detector."""
        low, high = self.thresholds
        return DetectorInfo(self.id, self.version, self.weights_sha256, threshold_low=low, threshold_high=high,
                            details={"calibration": self.config.get("calibration")})

    def calibrate(self, score: float) -> float:
        cal = self.config.get("calibration", {})
        return float(sigmoid(float(cal.get("a", 1.0)) * score + float(cal.get("b", 0.0))))

    def result(self, score: float, tile_scores: Any, rows: int, cols: int, tile: int,
               raw: dict[str, Any]) -> DetectorResult:
        """p_fake of the image's score, each tile's calibrated score as the region map, and the band."""
        p = self.calibrate(score)
        grid = [[round(self.calibrate(float(tile_scores[r * cols + c])), 4) for c in range(cols)]
                for r in range(rows)]
        low, high = self.thresholds
        band = "fake" if p >= high else "real" if p <= low else "uncertain"
        return DetectorResult(
            p_fake=p,
            regions={"rows": rows, "cols": cols, "tile": tile, "p_fake": grid},
            raw={**raw, "tiles": rows * cols, "band": band, "low": low, "high": high,
                 "model": self.config.get("model", self.model_name)},
        )
