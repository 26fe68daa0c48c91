"""A transparent real detector for plumbing tests: p_fake is the image's mean brightness.

`--model FILE` names a JSON "manifest" ({"gain": g}) that scales the score, standing in for a
checkpoint's fakescope.json: its hash is part of the detector's described protocol, as for hf/server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from fakescope_cli.detectors.base import Detector, DetectorInfo, DetectorResult


class BrightnessDetector(Detector):
    id = "test-brightness"
    version = "1"
    weights_sha256 = None

    def __init__(self, model: str | None = None) -> None:
        self.gain, self.protocol = 1.0, "test-protocol/1"
        if model is not None:
            raw = Path(model).read_bytes()
            self.gain = float(json.loads(raw)["gain"])
            self.protocol += "+manifest." + hashlib.sha256(raw).hexdigest()[:12]

    def describe(self) -> DetectorInfo:
        return DetectorInfo(self.id, self.version, self.weights_sha256, details={"protocol": self.protocol})

    def analyze(self, media):
        mean = float(np.asarray(media.rgb(), dtype=np.float64).mean() / 255.0)
        return DetectorResult(p_fake=min(1.0, mean * self.gain))
