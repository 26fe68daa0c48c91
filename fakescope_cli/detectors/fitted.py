"""The `fitted` detector: a model that `fakescope train detector` fitted to a user's labelled images.

One ONNX file holds everything: a frozen pretrained backbone (EfficientNet-Lite0, ImageNet), the
logistic-regression head fitted on the user's labels, and, in its metadata, the preprocessing, the
Platt calibration, the uncertain band and the cross-validation figures the training printed. It runs
with onnxruntime on CPU (no torch). The model only knows the cases it was fitted on: its card
(written beside it) says how well it ranked held-out images of those cases, and nothing more.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope_cli.detectors.base import Detector, DetectorInfo, DetectorResult
from fakescope_cli.detectors.calibrated import OnnxSession, default_threads, model_file_sha256, sigmoid
from fakescope_cli.errors import DetectorUnavailable, UsageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from fakescope_cli.media import Media

METADATA_KEY = "fakescope.fitted"  # JSON written by train/detector.py
FORMAT = "fakescope-fitted-1"
INPUT_SIZE = 224


def model_views(image: Image.Image, view: str, size: int = INPUT_SIZE) -> np.ndarray:
    """The network's input for one image: 1,3,size,size float32 RGB in 0..255.

    `resize`: the shorter side scaled to `size` (bicubic, Pillow's antialiasing) and the centre cut;
    `crop`: the centre `size` x `size` pixels at native resolution (smaller images scaled up first).
    Training and scanning both call this, so the features a head was fitted on are the ones it sees.
    """
    import numpy as np
    from PIL import Image as PILImage

    image = image.convert("RGB") if image.mode != "RGB" else image
    w, h = image.size
    if view == "resize" or min(w, h) < size:
        scale = size / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), PILImage.Resampling.BICUBIC)
        w, h = image.size
    elif view != "crop":
        raise ValueError(f"unknown view {view!r}")
    left, top = (w - size) // 2, (h - size) // 2
    arr = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def read_metadata(session: Any, path: Path) -> dict[str, Any]:
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DetectorUnavailable(f"{path} is not a detector written by `fakescope train detector` "
                                  f"(no {METADATA_KEY} metadata of format {FORMAT})")
    return meta


class FittedDetector(Detector):
    id = "fitted"
    needs_modules = ("onnxruntime",)

    @classmethod
    def availability(cls) -> str | None:
        return "available with --model FILE (from `fakescope train detector`)"

    def __init__(self, model: str | Path | None = None, threads: int | None = None) -> None:
        if model is None:
            raise UsageError("backend 'fitted' needs --model FILE (the .onnx that `fakescope train detector` wrote)")
        self.model = Path(model).expanduser()
        self.threads = default_threads(threads)
        if not self.model.is_file():
            raise DetectorUnavailable(f"no fitted detector at {self.model}: create one with "
                                      "`fakescope train detector --data LABELLED --out DIR`")

    @cached_property
    def weights_sha256(self) -> str | None:
        return model_file_sha256(self.model)

    @cached_property
    def session(self) -> Any:
        try:
            return OnnxSession.get(self.model, self.threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DetectorUnavailable(f"cannot load the fitted detector {self.model}: {exc}") from None

    @cached_property
    def meta(self) -> dict[str, Any]:
        return read_metadata(self.session, self.model)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unknown"))

    @property
    def thresholds(self) -> tuple[float, float]:
        band = self.meta.get("uncertain", {})
        return float(band.get("low", 0.0)), float(band.get("high", 1.0))

    def describe(self) -> DetectorInfo:
        low, high = self.thresholds
        return DetectorInfo(self.id, self.version, self.weights_sha256, threshold_low=low, threshold_high=high,
                            details={"calibration": self.meta.get("calibration"), "model_path": str(self.model)})

    def analyze(self, media: Media) -> DetectorResult:
        meta = self.meta
        x = model_views(media.rgb(), str(meta.get("view", "resize")), int(meta.get("input_size", INPUT_SIZE)))
        logit = float(self.session.run(None, {self.session.get_inputs()[0].name: x})[0].reshape(-1)[0])
        cal = meta.get("calibration", {})
        p = float(sigmoid(float(cal.get("a", 1.0)) * logit + float(cal.get("b", 0.0))))
        low, high = self.thresholds
        band = "fake" if p >= high else "real" if p <= low else "uncertain"
        return DetectorResult(p_fake=p, raw={"logit": logit, "band": band, "low": low, "high": high,
                                             "model": meta.get("model", "fitted")})
