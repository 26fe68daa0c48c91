"""The one detector abstraction every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

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
