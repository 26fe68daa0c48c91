"""A transparent real detector for plumbing tests: p_fake is the image's mean brightness."""

from __future__ import annotations

import numpy as np

from fakescope_cli.detectors.base import DetectorResult


class BrightnessDetector:
    id = "test-brightness"
    version = "1"
    weights_sha256 = None

    def analyze(self, media):
        return DetectorResult(p_fake=float(np.asarray(media.rgb(), dtype=np.float64).mean() / 255.0))
