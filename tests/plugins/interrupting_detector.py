"""A detector that is interrupted at a known file: Ctrl-C arrives while `stop*.png` is analysed.

Stands in for a user's Ctrl-C mid-scan at a point the test chooses, so that the interrupted path
(finished output, exit 130) is checked in process and without timing.
"""

from __future__ import annotations

from pathlib import Path

from fakescope_cli.detectors.base import Detector, DetectorResult


class InterruptingDetector(Detector):
    id = "test-interrupting"
    version = "1"
    weights_sha256 = None

    def analyze(self, media):
        if Path(media.path).name.startswith("stop"):
            raise KeyboardInterrupt
        return DetectorResult(p_fake=0.5)
