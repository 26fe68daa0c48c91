"""A detector that deletes the `gone*` files beside the first image it analyses.

Stands in for a file removed while the scan runs (after the walk listed it), at a point the test
chooses: that file must end as a per-file error record, not as a usage error.
"""

from __future__ import annotations

from pathlib import Path

from fakescope_cli.detectors.base import Detector, DetectorResult


class VanishingDetector(Detector):
    id = "test-vanishing"
    version = "1"
    weights_sha256 = None

    def analyze(self, media):
        for sibling in Path(media.path).parent.glob("gone*"):
            sibling.unlink()
        return DetectorResult(p_fake=0.5)
