"""Evidence and detector into one p_fake, a verdict and reasons in plain words.

Policy (DESIGN.md):
- strong AI provenance (declared AI manifest, SD watermark, generator metadata) decides:
  p_fake >= 0.99 and verdict ai-generated / ai-edited;
- otherwise the pixel detector's calibrated p_fake decides, read through an uncertain band; a score
  no provenance backs is capped at PIXEL_P_FAKE_CAP, below provenance's band, whatever the backend
  (the detector's own value stays in the record's `detector.p_fake`): a gate at 0.99 or on
  provenance verdicts is never tripped by pixels alone;
- a detector whose band is closed (it never decides alone) gives a hint: the verdict stays
  `uncertain` and renderers show the score as a ranking hint, not a percentage;
- camera EXIF is reported but never moves p_fake: it is easy to forge or strip;
- absence of provenance proves nothing, and without a detector score there is no verdict;
- a file whose pixels could not be read is an `error`, unless strong provenance decides anyway.
p_fake means "probability that the image is AI-generated, wholly or in part".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.evidence.base import EvidenceItem, weak_sign_note

STRONG_P_FAKE = 0.99
PIXEL_P_FAKE_CAP = 0.95  # the most a pixel score alone may claim; provenance starts at STRONG_P_FAKE

# What p_fake rests on (the record's `p_fake_basis`): provenance decided; a pixel score read
# through the detector's band; a pixel score from a detector whose band is closed (ranking only).
BASIS_PROVENANCE, BASIS_PIXELS, BASIS_HINT = "provenance", "pixels", "hint"


@dataclass(frozen=True)
class Thresholds:
    """p_fake <= low: likely-real; p_fake >= high: likely-ai; between: uncertain."""

    low: float = 0.3
    high: float = 0.7

    def __post_init__(self) -> None:
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ValueError(f"thresholds must satisfy 0 <= low <= high <= 1, got {self.low}, {self.high}")


@dataclass
class Fused:
    verdict: str
    p_fake: float | None
    reasons: list[str]
    basis: str | None = None  # BASIS_*; None without a score


def fuse(
    evidence: list[EvidenceItem],
    detection: DetectorResult | None,
    thresholds: Thresholds,
    unreadable: str | None = None,
    not_asked: str | None = None,
) -> Fused:
    """`unreadable` says why the pixels could not be analysed (decoder or detector failure);
    `not_asked`, why no detector looked at them (`--no-pixels`, `--backend none`)."""
    reasons: list[str] = []
    strong_ai = [e for e in evidence if e.strong and e.signal == "ai"]
    strong_edit = [e for e in evidence if e.strong and e.signal == "ai-edited"]
    weak_ai = [e for e in evidence if not e.strong and e.signal in ("ai", "ai-edited")]
    camera = [e for e in evidence if e.signal == "camera"]
    # Round once, before comparing, so a rescan of the stored value lands on the same side.
    detector_p = None if detection is None or detection.p_fake is None else round(float(detection.p_fake), 6)

    if strong_ai or strong_edit:
        deciding = strong_ai or strong_edit
        verdict = "ai-generated" if strong_ai else "ai-edited"
        reasons.extend(e.summary for e in deciding)
        p_fake = max(STRONG_P_FAKE, detector_p or 0.0)
        if detector_p is not None and detector_p < thresholds.low:
            reasons.append(
                f"The pixel detector alone scored {detector_p:.0%}; provenance outweighs it."
            )
        return Fused(verdict, round(p_fake, 6), reasons, BASIS_PROVENANCE)

    basis: str | None = None
    if unreadable is not None:
        verdict, detector_p = "error", None
        reasons.append(f"The image could not be analysed ({unreadable}).")
    elif detector_p is not None:
        verdict, why = _pixel_verdict(detector_p, thresholds)
        reasons.append(why)
        basis = BASIS_HINT if band_is_closed(thresholds) else BASIS_PIXELS
    else:
        verdict = "no-verdict"
        skipped = detection.raw.get("skipped") if detection is not None else None
        why_not = f": it skipped the image ({skipped})" if skipped else f" ({not_asked})" if not_asked else ""
        reasons.append(f"No provenance decides and no pixel detector scored this image{why_not}.")

    unread = [e for e in evidence if is_unreadable(e)]
    neutral = [e for e in evidence if e.signal == "none" and not is_unreadable(e)]
    found = [f"Hint (not decisive): {e.summary}" for e in weak_ai]
    # Metadata that is there but could not be read may hide any claim, AI included: say so
    # rather than call the file empty.
    found.extend(f"{_sentence(e.summary)} — what it declares, AI or not, is unknown." for e in unread)
    # Editing history says nothing about origin, but an investigator wants to see it.
    found.extend(e.summary for e in evidence if e.signal == "editor")
    # Every distinct camera claim (EXIF, XMP, Content Credentials), each qualified by what it rests on.
    seen: set[tuple[str, str]] = set()
    for e in camera:
        if (e.source, e.summary) not in seen:
            seen.add((e.source, e.summary))
            found.append(f"{e.summary} — {weak_sign_note(e)}")
    # Metadata that was read and says nothing about origin (a neutral manifest or XMP source).
    found.extend(e.summary for e in neutral)
    if verdict in ("uncertain", "no-verdict"):
        # Nothing decided: what the file says about itself is the more telling line (the first
        # reason is the one a table shows), and the score is in p_fake anyway.
        reasons[:0] = found
    else:
        reasons.extend(found)
    if not evidence:
        reasons.append("No provenance metadata found; its absence proves nothing." if unreadable is None else
                       "No provenance metadata found in what could be read; the file could not be fully analysed.")
    elif neutral and len(neutral) == len(evidence):
        reasons.append("The metadata found declares neither AI nor a camera capture; that proves nothing.")
    if detector_p is None:
        return Fused(verdict, None, reasons)
    return Fused(verdict, min(detector_p, PIXEL_P_FAKE_CAP), reasons, basis)


def is_unreadable(item: EvidenceItem) -> bool:
    """True for a `none` item that reports metadata present but unreadable (a C2PA store that
    cannot be read, malformed EXIF, an unparsable XMP packet): readers mark it in `details`."""
    return item.signal == "none" and bool(item.details.get("unreadable") or item.details.get("malformed"))


def _sentence(text: str) -> str:
    return text.rstrip().rstrip(".")


def band_is_closed(thresholds: Thresholds) -> bool:
    """A band that never decides: every pixel score is `uncertain`, a hint for ranking."""
    return thresholds.low <= 0.0 and thresholds.high >= 1.0


def _pixel_verdict(p: float, thresholds: Thresholds) -> tuple[str, str]:
    """The verdict a pixel score alone gives, and the reason in words."""
    if band_is_closed(thresholds):
        # Checked first: a score rounded to 0 or 1 must not slip through a band that never decides.
        # No value in the words: the same sentence on every such row folds into one table footnote,
        # and the score itself is in p_fake (shown as "hint 0.85").
        return "uncertain", ("The pixel score is a hint for ranking only (0 looks real, 1 looks generated): this "
                             "detector is not reliable enough on held-out images to decide alone.")
    if p >= thresholds.high:
        capped = (f"; p_fake is capped at {PIXEL_P_FAKE_CAP:.0%}, below what provenance gives" if p > PIXEL_P_FAKE_CAP
                  else "")
        return "likely-ai", f"The pixel detector scores {p:.0%} (at or above {thresholds.high:.0%}){capped}."
    if p <= thresholds.low:
        return "likely-real", f"The pixel detector scores {p:.0%} (at or below {thresholds.low:.0%})."
    return "uncertain", (f"The pixel detector scores {p:.0%}, inside the uncertain band "
                         f"{thresholds.low:.0%}–{thresholds.high:.0%}: the pixels say little either way.")


def thresholds_from(detector_info: dict[str, Any] | None, threshold_file: dict[str, Any] | None) -> Thresholds:
    """The detector's own band; its upper threshold replaced by a threshold file's (`fakescope eval
    --calibrate`, read by `scan --calibration`)."""
    low, high = Thresholds.low, Thresholds.high
    if detector_info:
        low = float(detector_info.get("threshold_low", low))
        high = float(detector_info.get("threshold_high", high))
    if threshold_file is not None:
        high = float(threshold_file["threshold"])
        low = min(low, high)
    return Thresholds(low, high)
