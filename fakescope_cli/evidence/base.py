"""The evidence item: one model-free provenance finding about one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fakescope_cli.evidence.source_types import dst_signal

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


def weak_sign_note(item: EvidenceItem) -> str:
    """The clause that follows a camera/capture hint in the reasons, naming what the hint rests on.

    Why: the hint may come from EXIF, from an IPTC DigitalSourceType or CreatorTool in XMP, or from
    Content Credentials, and each is weak for its own reason; calling them all "EXIF" misleads.
    """
    if item.source == "exif":
        basis = "EXIF is easy to forge or strip"
    elif item.source == "xmp":
        declared = item.details.get("digital_source_type")
        iptc = isinstance(declared, list) and any(
            isinstance(v, str) and dst_signal(v) == "camera" for v in declared)
        # A DigitalSourceType is an IPTC field carried in the XMP packet; CreatorTool is plain XMP.
        basis = ("the IPTC DigitalSourceType in XMP is unsigned text, easy to forge or strip" if iptc
                 else "XMP is unsigned text, easy to forge or strip")
    elif item.source == "c2pa":
        basis = ("Content Credentials can be stripped, and with no trust list configured anyone can "
                 "sign a capture claim")
    else:
        basis = f"{item.source} metadata is easy to forge or strip"
    return f"a weak sign: {basis}, so it does not move the score."
