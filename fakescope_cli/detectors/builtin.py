"""The embedded `builtin` detector: a small ONNX network run with onnxruntime on CPU (no torch).

It scores a fixed grid of native-resolution tiles (no whole-image resize), so cost is bounded per image;
the per-tile logits give the coarse region map and their mean, Platt-calibrated, gives p_fake. The
calibration constants and the uncertainty band live in builtin.json beside the weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.detectors.tiling import extract_tiles
from fakescope_cli.errors import DetectorUnavailable

if TYPE_CHECKING:
    from fakescope_cli.media import Media

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
ONNX_NAME = "builtin.onnx"
CONFIG_NAME = "builtin.json"


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _lossy(media: Media) -> bool:
    """Stored with lossy compression? (WebP: only its VP8L bitstream is lossless.)"""
    if media.format == "WEBP":
        return media.data[12:16] != b"VP8L"
    return media.format in ("JPEG", "HEIF", "AVIF")


class _Session:
    """One onnxruntime session per process, created on first use."""

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


class BuiltinDetector:
    id = "builtin"

    def __init__(self, weights_dir: Path | None = None, threads: int | None = None) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
        # In a scan's worker process the workers already use every core: one thread each avoids
        # oversubscription. On its own (one process) the session may use a few.
        import multiprocessing
        import os

        in_worker = multiprocessing.parent_process() is not None
        self.threads = threads or (1 if in_worker else max(1, min(4, os.cpu_count() or 1)))

    @cached_property
    def config(self) -> dict[str, Any]:
        path = self.weights_dir / CONFIG_NAME
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DetectorUnavailable(f"builtin detector config unreadable: {path}: {exc}") from None

    @property
    def version(self) -> str:
        return str(self.config.get("version", "unknown"))

    @cached_property
    def weights_sha256(self) -> str | None:
        try:
            return hashlib.sha256((self.weights_dir / ONNX_NAME).read_bytes()).hexdigest()
        except OSError:
            return None

    @property
    def thresholds(self) -> tuple[float, float]:
        band = self.config.get("uncertain", {})
        return float(band.get("low", 0.35)), float(band.get("high", 0.65))

    def describe(self) -> dict[str, Any]:
        """Extra identity for run headers; fusion reads threshold_low / threshold_high from here."""
        low, high = self.thresholds
        return {"threshold_low": low, "threshold_high": high, "calibration": self.config.get("calibration")}

    def _session(self) -> Any:
        expected = self.config.get("weights_sha256")
        if self.weights_sha256 is None:
            raise DetectorUnavailable(f"builtin weights missing: {self.weights_dir / ONNX_NAME}")
        if expected and expected != self.weights_sha256:
            raise DetectorUnavailable("builtin weights do not match the sha256 recorded in builtin.json")
        try:
            return _Session.get(self.weights_dir / ONNX_NAME, self.threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DetectorUnavailable(f"cannot load builtin weights: {exc}") from None

    def calibrate(self, logit: float) -> float:
        cal = self.config.get("calibration", {})
        return _sigmoid(float(cal.get("a", 1.0)) * logit + float(cal.get("b", 0.0)))

    def analyze(self, media: Media) -> DetectorResult:
        import numpy as np

        rgb = media.rgb()
        if min(rgb.size) < 8:
            return DetectorResult(p_fake=None, raw={"skipped": "image smaller than 8 pixels"})
        cfg = self.config
        quality = int(cfg.get("jpeg_quality", 0)) or (0 if _lossy(media) else int(cfg.get("lossless_jpeg_quality", 0)))
        tiles, rows, cols, t = extract_tiles(rgb, int(cfg.get("tile", 96)), int(cfg.get("max_grid", 3)), quality)
        sess = self._session()
        maps = sess.run(None, {sess.get_inputs()[0].name: tiles})[0]  # N,1,t/4,t/4
        clip = float(self.config.get("logit_clip", 8.0))
        tile_logits = np.clip(maps.reshape(maps.shape[0], -1).mean(axis=1), -clip, clip)
        logit = float(np.clip(maps.reshape(maps.shape[0], -1).mean(axis=1).mean(), -clip, clip))
        p = self.calibrate(logit)
        grid = [[round(self.calibrate(float(tile_logits[r * cols + c])), 4) for c in range(cols)]
                for r in range(rows)]
        low, high = self.thresholds
        band = "fake" if p >= high else "real" if p <= low else "uncertain"
        return DetectorResult(
            p_fake=p,
            regions={"rows": rows, "cols": cols, "tile": t, "p_fake": grid},
            raw={"logit": logit, "tiles": rows * cols, "tile_jpeg_quality": quality, "band": band, "low": low, "high": high,
                 "model": self.config.get("model", "builtin")},
        )
