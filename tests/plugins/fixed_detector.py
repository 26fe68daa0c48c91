"""A detector that answers the same score for every image, read from its `--model` JSON file:
{"p_fake": 0.999, "threshold_low": 0.0, "threshold_high": 1.0} (band keys optional).

It stands in for any backend that is confidently wrong on a real photo (the issue behind the pixel
cap): the score is the plugin's, and what fakescope makes of it is under test.
"""

from __future__ import annotations

import json
from pathlib import Path

from fakescope_cli.detectors.base import Detector, DetectorInfo, DetectorResult


class FixedDetector(Detector):
    id = "test-fixed"
    version = "1"
    weights_sha256 = None

    def __init__(self, model: str | None = None) -> None:
        spec = json.loads(Path(model).read_text()) if model else {}
        self.p_fake = float(spec.get("p_fake", 0.5))
        self.band = {k: float(spec[k]) for k in ("threshold_low", "threshold_high") if k in spec}

    def describe(self) -> DetectorInfo:
        return DetectorInfo(self.id, self.version, self.weights_sha256, **self.band)

    def analyze(self, media):
        media.rgb()  # the pixels are decoded, as a real detector would
        return DetectorResult(p_fake=self.p_fake)
