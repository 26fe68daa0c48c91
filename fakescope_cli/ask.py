"""`fakescope ask`: one image, one free-form question, answered by a multimodal backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fakescope_cli.detectors import describe, load_detector
from fakescope_cli.errors import UsageError
from fakescope_cli.media import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Media
from fakescope_cli.record import utc_now

_NO_LANGUAGE = frozenset({"none", "builtin", "cycle"})


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
    if backend in _NO_LANGUAGE:
        raise UsageError(f"backend {backend!r} cannot answer questions; use hf, gguf or server")
    media = Media.open(image, max_bytes=max_bytes, max_pixels=max_pixels)
    media.pixels()  # fail early, with the file's own error, before loading a model
    detector = load_detector(backend, options)
    if detector is None or not hasattr(detector, "ask"):
        raise UsageError(f"backend {backend!r} cannot answer questions; use hf, gguf or server")
    if advise:
        answer = detector.advise(media, stream_callback=stream)  # type: ignore[attr-defined]
        asked = "advise"
    else:
        answer = detector.ask(media, question, stream_callback=stream)  # type: ignore[attr-defined]
        asked = question
    return {
        "path": media.display_path,
        "sha256": media.sha256,
        "question": asked,
        "answer": answer,
        "detector": describe(detector),
        "answered_at": utc_now(),
    }
