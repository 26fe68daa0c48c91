"""The one detector abstraction every backend implements."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fakescope_cli.errors import InputError

if TYPE_CHECKING:
    from fakescope_cli.media import Media


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


class Detector(Protocol):
    id: str  # stable backend id, e.g. "builtin", "hf", "gguf", "server"
    version: str  # model/detector version string
    weights_sha256: str | None

    def analyze(self, media: Media) -> DetectorResult:
        """Score one image. Raise InputError for a bad image, DetectorUnavailable if broken."""
        ...


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
