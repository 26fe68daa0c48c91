"""`fakescope ask`: one image, one free-form question, answered by a multimodal backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fakescope_cli.detectors import describe, detector_class, load_detector
from fakescope_cli.errors import UsageError
from fakescope_cli.media import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Media
from fakescope_cli.record import utc_now


def ask_image(
    image: str,
    backend: str,
    options: dict[str, Any],
    *,
    question: str | None,
    advise: bool,
    stream: Callable[[str], None] | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    # Wrong arguments are refused before any file is read or model loaded (minutes for a large one).
    if not advise and (question is None or not question.strip()):
        raise UsageError("the question is empty")
    # The class says whether it can answer: known before the model is built.
    if backend == "none" or not detector_class(backend).answers_questions:
        raise UsageError(f"backend {backend!r} cannot answer questions; use hf, gguf or server")
    media = Media.open(image, max_bytes=max_bytes, max_pixels=max_pixels)
    media.pixels()  # fail early, with the file's own error, before loading a model
    detector = load_detector(backend, options)
    assert detector is not None  # "none" was refused above
    if advise:
        answer = detector.advise(media, stream_callback=stream)
        asked = "advise"
    else:
        assert question is not None
        answer = detector.ask(media, question, stream_callback=stream)
        asked = question
    return {
        "path": media.display_path,
        "sha256": media.sha256,
        "question": asked,
        "answer": answer,
        "detector": describe(detector),
        "answered_at": utc_now(),
    }
