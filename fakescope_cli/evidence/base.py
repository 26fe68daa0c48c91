"""The evidence item: one model-free provenance finding about one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# What a finding says about where the pixels came from, strongest first.
#   ai        — made by a generative model (AI manifest, generator metadata, SD watermark)
#   ai-edited — a real image changed with generative tools (C2PA composite / inpainting)
#   camera    — captured by a camera (EXIF, C2PA capture); weak: easy to forge or strip
#   editor    — passed through an editor (Photoshop, GIMP …); says nothing about origin
#   none      — the reader looked and found something neutral worth reporting
Signal = Literal["ai", "ai-edited", "camera", "editor", "none"]
SIGNALS: tuple[str, ...] = ("ai", "ai-edited", "camera", "editor", "none")


@dataclass
class EvidenceItem:
    source: str  # reader id: "c2pa", "xmp", "generator", "exif", "watermark"
    signal: Signal
    summary: str  # one plain-language sentence for the report
    details: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable
    strong: bool = False  # True when this item alone may decide the verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "signal": self.signal,
            "strong": self.strong,
            "summary": self.summary,
            "details": self.details,
        }
