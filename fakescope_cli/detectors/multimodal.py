"""What the three multimodal backends (hf, gguf, server) share: one FakeScope protocol run.

`MultimodalDetector` owns everything but the model call: the prompt protocol (`fakescope.json`),
option checks, image sizing, the chat messages, `analyze` / `analyze_batch`, `ask` / `advise`, the
result (scored through `protocol.score_probes`, made finite, then explained), `describe` and the
weights' identity. A backend supplies two things: `score_images` (the label-word logits of these
probes for these images) and `generate` (greedy text about one image), plus its identity fields.

One behaviour for all three (docs/design-notes.md):
- a non-finite score fails its file before any explanation is generated or its verdict added;
- a backend error while scoring (a RuntimeError from torch, an InputError from llama.cpp) fails one
  file: a batch that fails is scored again one image at a time, so the other files keep their
  scores. DetectorUnavailable (the model or server is gone) still stops the scan.

Where the label is read is the manifest's (hf and gguf): after an `answer_prefix` forced into the
answer, or, in marker mode, after the model's own greedy answer up to `answer_marker`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fakescope_cli.checkpoints import weights_identity
from fakescope_cli.detectors.base import (
    BatchedDetector,
    DetectorInfo,
    DetectorResult,
    StreamCallback,
    finite_result,
)
from fakescope_cli.errors import InputError, UsageError
from fakescope_cli.protocol import PromptProtocol, score_probes, verdict_from_explanation

if TYPE_CHECKING:
    from PIL import Image

    from fakescope_cli.media import Media

DEVICE_CHOICES = ("auto", "cpu", "cuda")
# Qwen2-VL's recommended max_pixels (1280 tokens of 28 x 28 pixels): its processor's own default would
# let a photograph become ~16k image tokens. Used for every dynamic-resolution model, and by training.
QWEN_MAX_PIXELS = 1280 * 28 * 28
MIN_SIDE = 28  # one Qwen patch after merging: a smaller side cannot be encoded


def fit_image(img: Image.Image, max_pixels: int | None) -> Image.Image:
    """`img` shrunk (bicubic, aspect kept) to at most `max_pixels` pixels; unchanged when it fits."""
    if max_pixels is None or img.width * img.height <= max_pixels:
        return img
    scale = (max_pixels / (img.width * img.height)) ** 0.5
    return img.resize((max(MIN_SIDE, int(img.width * scale)), max(MIN_SIDE, int(img.height * scale))), resample=3)


def pixel_limit(manifest_limit: int | None, dynamic_resolution: bool) -> int | None:
    """The image size a checkpoint is given: its manifest's max_image_pixels, else Qwen's ceiling for a
    dynamic-resolution model, else no limit (a fixed-size processor resizes anyway)."""
    if manifest_limit is None and dynamic_resolution:
        return QWEN_MAX_PIXELS
    return manifest_limit


def check_device(device: str) -> None:
    if device not in DEVICE_CHOICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {device!r}")


def short_error(exc: BaseException, limit: int = 400) -> str:
    """An exception as one line of at most `limit` characters (torch's messages run to pages)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class ImageScores:
    """One image's probes as a backend read them. `z` holds (z_fake, z_real) per probe, detection
    first; None for an aspect the backend could not score (the reason in `unscored`). `raw` holds
    per-image figures of the backend, written into the record after the scores. `reasoning`: in
    marker mode, the detection answer before the marker (the explanation)."""

    z: list[tuple[float, float] | None]
    unscored: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    reasoning: str | None = None


class MultimodalDetector(BatchedDetector):
    """A checkpoint asked the FakeScope protocol's questions. Subclasses call `setup_protocol` in
    their constructor and implement `score_images`, `generate`, `identity` and `result_fields`."""

    runs_in_process = True  # one copy of a large model (or one connection pool) per scan
    answers_questions = True
    # A dynamic-resolution vision tower (Qwen2-VL): images are capped at QWEN_MAX_PIXELS by default.
    dynamic_resolution: bool = False
    # False: the model is called from one thread at a time (local weights). A server takes many.
    concurrent_calls: ClassVar[bool] = False

    protocol: PromptProtocol
    weight_files: Sequence[Path] = ()  # what weights_sha256 covers; none for a remote model

    def setup_protocol(self, protocol: PromptProtocol, *, attributes: bool, explain: bool, max_tokens: int) -> None:
        """The protocol and the options every multimodal backend takes; the weights' pin checked."""
        self.protocol = protocol
        self.attributes = attributes
        self.explain = explain
        self.max_tokens = max_tokens
        self.stats = {"vision_calls": 0, "vision_images": 0, "forward_passes": 0}
        self._lock = threading.Lock()
        self._reasoning: str | None = None  # marker mode: the answer so far, for the probe being scored
        self._weights_sha256: str | None = None
        # Pinned by the manifest: checked before use. A server's weights cannot be checked from here.
        if self.protocol.weights_sha256 is not None and self.weight_files:
            self.protocol.verify_weights(self.weights_sha256)

    # ------------------------------------------------------------------------------ backend hooks

    def score_images(self, images: list[Any], probes: list[tuple[str, str]]) -> list[ImageScores]:
        """(z_fake, z_real) of every probe for every prepared image. Raise InputError for a file the
        backend cannot read, DetectorUnavailable when the model or server is gone."""
        raise NotImplementedError

    def generate(self, image: Any, prompt: str, callback: StreamCallback | None, max_tokens: int) -> str:
        """Greedy text about one prepared image; text deltas go to `callback` as they come."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """Backend-specific identity for describe(), after "backend"."""
        return {"protocol": self.protocol.version}

    def result_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Backend figures for every record's raw: (written before the scores, written after them)."""
        return {}, {}

    def nonfinite_reason(self, z_fake: float, z_real: float) -> str:
        return f"the model's label-word logits are NaN or infinite (detection: z_fake {z_fake}, z_real {z_real})"

    # ------------------------------------------------------------------------------ shared

    @property
    def weights_sha256(self) -> str | None:  # type: ignore[override]
        """sha256 of the weight files (one file) or of their sorted per-file hashes; computed on first
        use and remembered in the user cache (hashing 14 GB takes a while)."""
        if not self.weight_files:
            return None
        if self._weights_sha256 is None:
            self._weights_sha256 = weights_identity(list(self.weight_files))
        return self._weights_sha256

    def image_pixel_limit(self) -> int | None:
        return pixel_limit(self.protocol.max_image_pixels, self.dynamic_resolution)

    def prepare_image(self, media: Media) -> Any:
        """The image as the backend takes it: RGB, shrunk to the pixel limit."""
        return fit_image(media.rgb(), self.image_pixel_limit())

    def chat_messages(self, prompt: str, image_item: dict[str, Any], *, system: str | None = None,
                      plain_system: bool = False) -> list[dict[str, Any]]:
        """The conversation for one image and prompt: the protocol's system prompt (or `system`), then
        the user turn with the image before the text. `plain_system`: the system content as a string."""
        msgs: list[dict[str, Any]] = []
        system = self.protocol.system_prompt or system
        if system:
            content: Any = system if plain_system else [{"type": "text", "text": system}]
            msgs.append({"role": "system", "content": content})
        msgs.append({"role": "user", "content": [image_item, {"type": "text", "text": prompt}]})
        return msgs

    def answer_prefix(self, probe: bool) -> str:
        """The text forced into the answer before a probe's label is read (none for free generation);
        in marker mode, the image's own reasoning up to the marker."""
        if not probe:
            return ""
        return self._reasoning if self._reasoning is not None else (self.protocol.answer_prefix or "")

    def _serial(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if self.concurrent_calls else self._lock

    # ------------------------------------------------------------------------------ public API

    def analyze_batch(self, medias: Sequence[Media]) -> list[DetectorResult | InputError]:
        """Score many images, `batch_size` per model call. A file that cannot be decoded or scored
        gives its InputError in its slot; the others are still scored."""
        probes = self.protocol.probes(self.attributes)
        prepared: list[Any] = []
        for m in medias:
            try:
                prepared.append(self.prepare_image(m))
            except InputError as exc:
                prepared.append(exc)
        ok = [i for i, x in enumerate(prepared) if not isinstance(x, InputError)]
        scored: dict[int, ImageScores | InputError] = {}
        step = max(1, self.batch_size)
        for c0 in range(0, len(ok), step):
            idx = ok[c0: c0 + step]
            scored.update(zip(idx, self._score_or_fail([prepared[i] for i in idx], probes), strict=True))
        out: list[DetectorResult | InputError] = []
        for i, x in enumerate(prepared):
            outcome = x if isinstance(x, InputError) else scored[i]
            if isinstance(outcome, InputError):
                out.append(outcome)
                continue
            try:
                out.append(self._result(outcome, probes, x))
            except InputError as exc:  # a non-finite score costs this file only
                out.append(exc)
        return out

    def _score_or_fail(self, images: list[Any], probes: list[tuple[str, str]]) -> list[ImageScores | InputError]:
        """Scores of a batch; when the batch fails, each image again on its own, so that a failure
        costs only the file that causes it."""
        try:
            with self._serial():
                if self.protocol.answer_marker is not None:
                    return [self._score_after_marker(image, probes) for image in images]
                return list(self.score_images(images, probes))
        except (InputError, RuntimeError, ValueError) as exc:
            if len(images) > 1:
                return [one for image in images for one in self._score_or_fail([image], probes)]
            if isinstance(exc, InputError):
                return [exc]
            return [InputError(f"the {self.id} backend failed on this image: {short_error(exc)}", "detector-error")]

    def _score_after_marker(self, image: Any, probes: list[tuple[str, str]]) -> ImageScores:
        """Marker mode: each probe's answer is generated greedily until the marker, and its label read
        right after the marker (the generated text forced back in as the answer's start, so one
        scoring pass per probe). The detection probe's reasoning becomes the explanation."""
        marker = self.protocol.answer_marker
        assert marker is not None
        out = ImageScores([])
        for k, (key, prompt) in enumerate(probes):
            text = self.generate(image, prompt, None, self.protocol.marker_max_tokens)
            at = text.find(marker)
            if at < 0:
                why = (f"the model's answer holds no {marker!r} within {self.protocol.marker_max_tokens} tokens "
                       f"(it began {text[:80]!r})")
                if k == 0:
                    raise InputError(why, "detector-error")
                out.z.append(None)
                out.unscored[key] = why
                continue
            self._reasoning = text[: at + len(marker)]
            try:
                (scored,) = self.score_images([image], [(key, prompt)])
            finally:
                self._reasoning = None
            out.z.append(scored.z[0])
            if k == 0:
                out.reasoning = text[:at]
        return out

    def _result(self, scores: ImageScores, probes: list[tuple[str, str]], image: Any) -> DetectorResult:
        with np.errstate(all="ignore"):  # -inf / NaN logits: judged by finite_result, not warned about
            scored = score_probes(scores.z, probes, self.protocol.calibration)
        before, after = self.result_fields()
        raw: dict[str, Any] = {"backend": self.id, **before, "protocol": self.protocol.version, **scored.raw,
                               **scores.raw, **after}
        if scores.unscored:
            raw["attributes_unscored"] = dict(scores.unscored)
        detect = scores.z[0] or (float("nan"), float("nan"))
        p_fake, attributes, raw = finite_result(scored.p_fake, scored.attributes, raw,
                                                why=self.nonfinite_reason(*detect))
        explanation = scores.reasoning  # marker mode: the reasoning is the explanation
        if explanation is not None:
            raw["explanation_verdict"] = verdict_from_explanation(explanation)
        elif self.explain:
            with self._serial():
                explanation = self.generate(image, self.protocol.explain_prompt, None, self.max_tokens)
            raw["explanation_verdict"] = verdict_from_explanation(explanation)
        return DetectorResult(p_fake=p_fake, attributes=attributes, explanation=explanation, raw=raw)

    def ask(self, media: Media, question: str, stream_callback: StreamCallback | None = None,
            max_tokens: int | None = None) -> str:
        """A free-form greedy answer about one image; text deltas go to `stream_callback`."""
        if not question or not question.strip():
            raise InputError("the question is empty", "usage")
        image = self.prepare_image(media)
        with self._serial():
            return self.generate(image, question, stream_callback, max_tokens or self.max_tokens)

    def advise(self, media: Media, stream_callback: StreamCallback | None = None, max_tokens: int | None = None) -> str:
        """`ask --advise`: what betrays the image and how to verify it further."""
        return self.ask(media, self.protocol.advise_prompt, stream_callback, max_tokens)

    def describe(self) -> DetectorInfo:
        return DetectorInfo(self.id, self.version, self.weights_sha256,
                            details={"backend": self.id, **self.identity()})
