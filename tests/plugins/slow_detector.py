"""A real detector class for worker-pool tests: hangs on files named *slow*, crashes on *crash*."""

from __future__ import annotations

import os
import time

from fakescope_cli.detectors.base import Detector, DetectorResult


class SlowDetector(Detector):
    id = "test-slow"
    version = "1"
    weights_sha256 = None

    def analyze(self, media):
        name = os.path.basename(media.path)
        if "slow" in name:
            time.sleep(3600)
        if "crash" in name:
            os._exit(70)  # a native crash takes the worker down without a Python exception
        return DetectorResult(p_fake=0.5)
