"""The one detector abstraction every backend implements, built-in or plugin.

A detector is a subclass of `Detector`. What the scan engine may do with it is declared on the class,
never probed: `runs_in_process` (placement), `batch_size` / `analyze_batch` (batching),
`parallel_requests` (threads waiting on a remote server), `cancel` (stop in-flight work),
`answers_questions` with `ask` / `advise`, and `needs_modules` / `extra` (what to install). Every
capability has a safe default here, so a minimal detector is `id`, `version` and `analyze`
(docs/plugins.md). `describe()` returns a `DetectorInfo`, the typed identity that run headers and
chain-of-custody fields are written from, thresholds included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from fakescope_cli.errors import InputError, UsageError

if TYPE_CHECKING:
    from fakescope_cli.media import Media

StreamCallback = Callable[[str], None]


@dataclass
class DetectorResult:
    """What a backend says about one image. Absent fields stay None: never invented."""

    p_fake: float | None
    attributes: dict[str, float] | None = None  # aspect -> p_fake, DESIGN.md's 14 aspects
    explanation: str | None = None
    # Coarse map of where the detector looked: {"rows": R, "cols": C, "p_fake": [[...]], ...}
    regions: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # backend-specific extras (logits …)

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_fake": self.p_fake,
            "attributes": self.attributes,
            "explanation": self.explanation,
            "regions": self.regions,
            "raw": self.raw,
        }


@dataclass(frozen=True)
class DetectorInfo:
    """A loaded detector's identity: what records carry as chain of custody, and run headers show.

    `threshold_low` / `threshold_high` are the detector's own uncertain band (fusion reads them);
    None leaves fusion's defaults. `details` holds backend-specific identity (model path, protocol,
    device …), written after the fixed keys.
    """

    id: str
    version: str
    weights_sha256: str | None
    threshold_low: float | None = None
    threshold_high: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of records and run headers (the key order is part of the output)."""
        out: dict[str, Any] = {"id": self.id, "version": self.version, "weights_sha256": self.weights_sha256}
        if self.threshold_low is not None:
            out["threshold_low"] = self.threshold_low
        if self.threshold_high is not None:
            out["threshold_high"] = self.threshold_high
        out.update(self.details)
        return out


class Detector:
    """Base class of every detector. Subclasses set `id` and `version` and implement `analyze`;
    everything else is an optional capability, declared by overriding the class attribute."""

    id: ClassVar[str]  # stable backend id, e.g. "builtin", "hf", "gguf", "server"
    version: str  # model/detector version string (may be a property)
    weights_sha256: str | None = None  # identity of the weights, when they are local files

    # ---- capabilities (read by the engine; the defaults suit a small CPU detector)
    # True: the engine keeps the detector in its own process (a large model, or a connection pool);
    # False: it may be loaded again in each worker process for --jobs and --file-timeout.
    runs_in_process: ClassVar[bool] = False
    # More than 1: the engine hands `analyze_batch` this many images at once (in process only).
    batch_size: int = 1
    # More than 0: the engine calls `analyze` from this many threads at once (it waits on a server).
    parallel_requests: int = 0
    # True: `ask` and `advise` answer in words (`fakescope ask`).
    answers_questions: ClassVar[bool] = False
    # Modules the backend imports when loaded, and the pip extra that brings them (`models list`).
    needs_modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def analyze(self, media: Media) -> DetectorResult:
        """Score one image. Raise InputError for a bad image, DetectorUnavailable if broken."""
        raise NotImplementedError

    def analyze_batch(self, medias: Sequence[Media]) -> list[DetectorResult | InputError]:
        """Score several images; a file's InputError stays in its slot. Override for a faster path."""
        out: list[DetectorResult | InputError] = []
        for media in medias:
            try:
                out.append(self.analyze(media))
            except InputError as exc:
                out.append(exc)
        return out

    def cancel(self) -> None:
        """Stop in-flight and future work (the scan is ending early). Nothing to stop by default."""

    def ask(self, media: Media, question: str, stream_callback: StreamCallback | None = None,
            max_tokens: int | None = None) -> str:
        """A free-form answer about one image (only when `answers_questions`)."""
        raise UsageError(f"backend {self.id!r} cannot answer questions")

    def advise(self, media: Media, stream_callback: StreamCallback | None = None,
               max_tokens: int | None = None) -> str:
        """`ask --advise`: what betrays the image and how to verify it further."""
        raise UsageError(f"backend {self.id!r} cannot answer questions")

    def describe(self) -> DetectorInfo:
        """The detector's identity for run headers and chain of custody."""
        return DetectorInfo(self.id, self.version, self.weights_sha256)

    @classmethod
    def availability(cls) -> str | None:
        """Why the backend cannot run here beyond missing modules (a model file not made yet), or None."""
        return None


class BatchedDetector(Detector):
    """A detector whose unit of work is a batch (one forward pass over many images): it implements
    `analyze_batch`, and one image is a batch of one."""

    def analyze(self, media: Media) -> DetectorResult:
        out = self.analyze_batch([media])[0]
        if isinstance(out, InputError):
            raise out
        return out

    def analyze_batch(self, medias: Sequence[Media]) -> list[DetectorResult | InputError]:
        raise NotImplementedError


def finite_result(p_fake: float, attributes: dict[str, float] | None, raw: dict[str, Any],
                  *, why: str) -> tuple[float, dict[str, float] | None, dict[str, Any]]:
    """A backend's scores made safe for a record: no NaN or infinity ever leaves a detector.

    A non-finite p_fake (NaN or infinite label logits / log-probabilities) raises InputError
    ("detector-error") for this file: a NaN compares false with every threshold, so it would pass
    a --fail-above gate silently. `why` says what the backend saw. A non-finite aspect is left out
    and named in raw["attributes_unscored"] (absent, not guessed). Non-finite numbers in `raw`
    become None: JSON has no NaN, and -Infinity would make the record unreadable.
    """
    clean_raw = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in raw.items()}
    if not isinstance(p_fake, (int, float)) or not math.isfinite(p_fake):
        raise InputError(f"the detector gave no usable score (p_fake {p_fake}): {why}", "detector-error")
    attrs = None
    if attributes is not None:
        attrs = {k: v for k, v in attributes.items() if math.isfinite(v)}
        dropped = {k: f"not a number (p_fake {v}): {why}" for k, v in attributes.items() if k not in attrs}
        if dropped:
            clean_raw["attributes_unscored"] = {**clean_raw.get("attributes_unscored", {}), **dropped}
    return float(p_fake), attrs, clean_raw
