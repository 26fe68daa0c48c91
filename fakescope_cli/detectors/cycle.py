"""The opt-in `cycle` detector: TAEF2's latent cycle, zero-shot, run with onnxruntime on CPU (no torch).

An image a latent generator decoded lies near its autoencoder's output manifold: encoding it, decoding and
encoding again moves its latent little. A photograph's latent moves more. The per-tile score is the log
variance of the first latent minus the log mean squared distance between the two latents (higher: more
likely generated); the image's score is the mean over a grid of at most 3 x 3 tiles, cut at native
resolution and shrunk by the config's `downscale` (2: 128-px tiles seen at 64 px). Nothing is trained on
the pool, so there is nothing to overfit to its sources; only the Platt calibration and the uncertain band
(weights/cycle.json) were fitted to it.

The autoencoder is TAEF2 (MIT, madebyollin/taesd), a distilled stand-in for FLUX.2's VAE. Its weights are
not shipped in the package: `fakescope train cycle --taesd DIR` exports them, once, to an ONNX file in the
user data folder (or `--model FILE`). The export records the sha256 of the weights it came from, and the
detector refuses a file whose weights differ from those the calibration was fitted on.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope_cli.detectors.base import DetectorInfo, DetectorResult
from fakescope_cli.detectors.calibrated import (
    WEIGHTS_DIR,
    CalibratedTileDetector,
    OnnxSession,
    default_threads,
    model_file_sha256,
)
from fakescope_cli.detectors.tiling import scaled_tiles
from fakescope_cli.errors import DetectorUnavailable

if TYPE_CHECKING:
    import numpy as np

    from fakescope_cli.media import Media

CONFIG_NAME = "cycle.json"
MODEL_NAME = "taef2-cycle.onnx"
METADATA_KEY = "fakescope.taef2_sha256"  # ONNX metadata written by the exporter (train/cycle.py)


def default_model_path() -> Path:
    """Where `fakescope train cycle` writes the model unless told otherwise."""
    from platformdirs import user_data_dir

    return Path(os.environ.get("FAKESCOPE_CYCLE_MODEL") or Path(user_data_dir("fakescope")) / MODEL_NAME)


def cycle_tile_scores(session: Any, image: Any, tile: int, max_grid: int,
                      downscale: float = 1.0) -> tuple[np.ndarray, int, int, int]:
    """Per-tile scores (log latent variance - log latent cycle distance) of an image or H,W,3 array, on the
    tiles of `scaled_tiles`. Returns (scores, rows, cols, tile side in pixels of the original image)."""
    tiles, rows, cols, t = scaled_tiles(image, tile, max_grid, downscale, multiple=8)
    stats = session.run(None, {session.get_inputs()[0].name: tiles})[0]  # N,2: log distance, log variance
    return stats[:, 1] - stats[:, 0], rows, cols, t


class LatentCycleDetector(CalibratedTileDetector):
    id = "cycle"
    model_name = "taef2-latent-cycle"

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 config: str | Path | None = None) -> None:
        self.model = Path(model).expanduser() if model else default_model_path()
        self.config_path = Path(config) if config else WEIGHTS_DIR / CONFIG_NAME
        self.threads = default_threads(threads)
        # Checked now, before the scan writes any output; loading waits for the first image (in
        # the worker that needs it).
        if not self.model.is_file():
            raise DetectorUnavailable(
                f"no latent-cycle model at {self.model}: create it once with `fakescope train cycle --taesd DIR` "
                "(DIR holding taef2_encoder.pth and taef2_decoder.pth from madebyollin/taesd, MIT; needs the train "
                "extra), or pass --model FILE")

    @cached_property
    def weights_sha256(self) -> str | None:
        return model_file_sha256(self.model)

    def describe(self) -> DetectorInfo:
        info = super().describe()
        return replace(info, details={**info.details, "model_path": str(self.model)})

    @classmethod
    def availability(cls) -> str | None:
        """Its model file is not shipped: say where it is looked for, and how it is made."""
        path = default_model_path()
        return (f"available ({path})" if path.is_file()
                else f"needs its model file at {path}: fakescope train cycle --taesd DIR, or --model FILE")

    @cached_property
    def session(self) -> Any:
        """The onnxruntime session, after checking the file came from the weights the calibration fits
        (once per detector; an error is raised again on the next use)."""
        try:
            sess = OnnxSession.get(self.model, self.threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DetectorUnavailable(f"cannot load the latent-cycle model {self.model}: {exc}") from None
        found = sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        expected = self.config.get("taef2_sha256")
        if expected and found != expected:
            raise DetectorUnavailable(
                f"{self.model} was not exported from the TAEF2 weights the cycle calibration was fitted on "
                f"(expected {expected[:12]}…, found {(found or 'none')[:12]}…)")
        return sess

    def analyze(self, media: Media) -> DetectorResult:
        rgb = media.rgb()
        cfg = self.config
        downscale = float(cfg.get("downscale", 1.0))
        if min(rgb.size) < 8 * downscale:
            return DetectorResult(p_fake=None, raw={"skipped": f"image smaller than {8 * downscale:g} pixels"})
        scores, rows, cols, t = cycle_tile_scores(self.session, rgb, int(cfg.get("tile", 64)),
                                                  int(cfg.get("max_grid", 3)), downscale)
        score = float(scores.mean())
        return self.result(score, scores, rows, cols, t, {"cycle_score": score})
