"""A real detector that declares two capabilities, and nothing in the engine names it: it runs in the
scan's own process (`runs_in_process`) and answers questions (`answers_questions`).

p_fake is the image's mean brightness; raw records the process that scored it, so a test can tell that
no worker process was used. `ask` answers from the pixels, deterministically.
"""

from __future__ import annotations

import os

import numpy as np

from fakescope_cli.detectors.base import Detector, DetectorResult, StreamCallback


class TalkingDetector(Detector):
    id = "test-talking"
    version = "1"
    runs_in_process = True
    answers_questions = True

    def _mean(self, media) -> float:
        return float(np.asarray(media.rgb(), dtype=np.float64).mean() / 255.0)

    def analyze(self, media) -> DetectorResult:
        return DetectorResult(p_fake=self._mean(media), raw={"pid": os.getpid(), "parent_pid": os.getppid()})

    def ask(self, media, question: str, stream_callback: StreamCallback | None = None,
            max_tokens: int | None = None) -> str:
        answer = f"asked {question!r}: mean brightness {self._mean(media):.3f}"
        for word in answer.split(" "):  # streamed word by word, as a language model would
            if stream_callback is not None:
                stream_callback(word + " ")
        return answer

    def advise(self, media, stream_callback: StreamCallback | None = None, max_tokens: int | None = None) -> str:
        return self.ask(media, "advise", stream_callback, max_tokens)
