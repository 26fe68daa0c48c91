"""A real batching detector for engine tests: records the size of every batch it is given."""

from __future__ import annotations

import numpy as np

from fakescope_cli.detectors.base import Detector, DetectorResult
from fakescope_cli.errors import InputError


class BatchDetector(Detector):
    id = "test-batch"
    runs_in_process = True  # declared, so the engine batches here instead of starting workers
    version = "1"
    weights_sha256 = None

    def __init__(self, batch_size: int = 4):
        self.batch_size = batch_size
        self.batches: list[int] = []

    def _score(self, media):
        if "bad" in media.path:
            return InputError("refused by the test detector", "detector-error")
        return DetectorResult(p_fake=float(np.asarray(media.rgb()).mean() / 255.0))

    def analyze(self, media):
        self.batches.append(1)
        out = self._score(media)
        if isinstance(out, InputError):
            raise out
        return out

    def analyze_batch(self, medias):
        self.batches.append(len(medias))
        return [self._score(m) for m in medias]
