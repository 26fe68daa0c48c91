"""`fakescope ask`: one image, one free-form question, answered by a multimodal backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fakescope_cli.detectors import describe, load_detector
from fakescope_cli.errors import UsageError
from fakescope_cli.media import Media
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
) -> dict[str, Any]:
    if backend in _NO_LANGUAGE:  # a wrong option: refused before any file is read or model loaded
        raise UsageError(f"backend {backend!r} cannot answer questions; use hf, gguf or server")
    media = Media.open(image)
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
