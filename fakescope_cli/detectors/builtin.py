"""The embedded `builtin` detector: a small ONNX network run with onnxruntime on CPU (no torch).

It scores a fixed grid of tiles cut at native resolution (no whole-image resize), so cost is bounded per
image; with the config's `downscale` each tile is cut that many times larger and shrunk by that fixed
factor first (tiling.scaled_tiles). The per-tile scores give the coarse region map and their mean,
Platt-calibrated, gives p_fake. The calibration constants and the uncertainty band live in builtin.json
beside the weights; the card (builtin-card.md) says how the weights were trained and how well they rank.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.detectors.calibrated import (
    WEIGHTS_DIR,
    CalibratedTileDetector,
    OnnxSession,
    default_threads,
)
from fakescope_cli.detectors.tiling import scaled_tiles
from fakescope_cli.errors import DetectorUnavailable

if TYPE_CHECKING:
    from fakescope_cli.media import Media

ONNX_NAME = "builtin.onnx"
CONFIG_NAME = "builtin.json"
__all__ = ["CONFIG_NAME", "ONNX_NAME", "WEIGHTS_DIR", "BuiltinDetector"]


def _lossy(media: Media) -> bool:
    """Stored with lossy compression? (WebP: only its VP8L bitstream is lossless.)"""
    if media.format == "WEBP":
        return media.data[12:16] != b"VP8L"
    return media.format in ("JPEG", "HEIF", "AVIF")


class BuiltinDetector(CalibratedTileDetector):
    id = "builtin"
    model_name = "builtin"

    def __init__(self, weights_dir: Path | None = None, threads: int | None = None) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
        self.config_path = self.weights_dir / CONFIG_NAME
        self.threads = default_threads(threads)

    @cached_property
    def weights_sha256(self) -> str | None:
        try:
            return hashlib.sha256((self.weights_dir / ONNX_NAME).read_bytes()).hexdigest()
        except OSError:
            return None

    def _session(self) -> Any:
        expected = self.config.get("weights_sha256")
        if self.weights_sha256 is None:
            raise DetectorUnavailable(f"builtin weights missing: {self.weights_dir / ONNX_NAME}")
        if expected and expected != self.weights_sha256:
            raise DetectorUnavailable("builtin weights do not match the sha256 recorded in builtin.json")
        try:
            return OnnxSession.get(self.weights_dir / ONNX_NAME, self.threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DetectorUnavailable(f"cannot load builtin weights: {exc}") from None

    def analyze(self, media: Media) -> DetectorResult:
        import numpy as np

        rgb = media.rgb()
        if min(rgb.size) < 8:
            return DetectorResult(p_fake=None, raw={"skipped": "image smaller than 8 pixels"})
        cfg = self.config
        quality = int(cfg.get("jpeg_quality", 0)) or (0 if _lossy(media) else int(cfg.get("lossless_jpeg_quality", 0)))
        tiles, rows, cols, t = scaled_tiles(rgb, int(cfg.get("tile", 96)), int(cfg.get("max_grid", 3)),
                                            float(cfg.get("downscale", 1.0)), quality,
                                            resample=str(cfg.get("resample", "bicubic")))
        sess = self._session()
        maps = sess.run(None, {sess.get_inputs()[0].name: tiles})[0]  # N,1,h,w score maps
        clip = float(cfg.get("logit_clip", 8.0))
        tile_means = maps.reshape(maps.shape[0], -1).mean(axis=1)
        logit = float(np.clip(tile_means.mean(), -clip, clip))
        return self.result(logit, np.clip(tile_means, -clip, clip), rows, cols, t,
                           {"logit": logit, "tile_jpeg_quality": quality})
