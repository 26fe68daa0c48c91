"""The IPTC Digital Source Type vocabulary, and what each code means for a verdict.

Source: IPTC NewsCodes "Digital Source Type", http://cv.iptc.org/newscodes/digitalsourcetype/
(release 2024-10-23: 20 codes, `minorHumanEdits`, `softwareImage` and `digitalArt` retired but still
met in files), and the two values the C2PA specification adds for its actions' `digitalSourceType`
(`http://c2pa.org/digitalsourcetype/empty`, `…/trainedAlgorithmicData`). XMP (Iptc4xmpExt) and C2PA
actions use the same URIs, so one table serves both readers.

A code is compared by the last segment of its URI, case-insensitively. docs/provenance.md carries
the same table for readers; tests/test_evidence_source_types.py checks that the two agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # base imports this module (weak_sign_note)
    from fakescope_cli.evidence.base import Signal


class SourceType(NamedTuple):
    code: str  # as the vocabulary spells it
    signal: Signal | None  # what it says for a verdict; None: nothing about AI, a camera or an editor
    meaning: str  # one line, our words, for the report and the docs


# Order: captures, edits, creations, synthetic, composites, C2PA additions (the docs table follows it).
SOURCE_TYPES: tuple[SourceType, ...] = (
    SourceType("digitalCapture", "camera", "captured from real life with a digital camera or recorder"),
    SourceType("computationalCapture", "camera",
               "several real-life frames merged by signal processing or non-generative AI (HDR)"),
    SourceType("negativeFilm", "camera", "digitised from a film negative"),
    SourceType("positiveFilm", "camera", "digitised from a film positive (slide)"),
    SourceType("print", "camera", "digitised from a print"),
    SourceType("humanEdits", "editor", "changed by people with non-generative tools"),
    SourceType("minorHumanEdits", "editor", "minor human edits (retired code)"),
    SourceType("algorithmicallyEnhanced", "editor",
               "corrected by algorithm without changing the main content (sharpening, denoising)"),
    SourceType("digitalCreation", "editor", "made by a person with digital tools (drawing, 3D), no generative model"),
    SourceType("digitalArt", "editor", "made by a person with digital tools (retired code)"),
    SourceType("softwareImage", "editor", "made with software (retired code)"),
    SourceType("dataDrivenMedia", None, "a rendering of data (a chart, a map): says nothing about AI or a camera"),
    SourceType("screenCapture", None, "a screenshot: says nothing about what was on the screen"),
    SourceType("virtualRecording", None, "a recording of a virtual event or software: not a camera, not a generative model"),
    SourceType("algorithmicMedia", None,
               "made purely by an algorithm without sampled training data (a formula, procedural art): "
               "synthetic, but not by a generative model"),
    SourceType("trainedAlgorithmicMedia", "ai", "made by a model trained on sampled content (generative AI)"),
    SourceType("composite", "editor", "a mix of several elements, any of which may or may not be generative AI"),
    SourceType("compositeCapture", "editor", "a mix of several real-life captures"),
    SourceType("compositeSynthetic", "ai-edited", "a mix of elements, at least one of them synthetic"),
    SourceType("compositeWithTrainedAlgorithmicMedia", "ai-edited",
               "a mix of elements, at least one made by generative AI (inpainting, generative fill)"),
    SourceType("trainedAlgorithmicData", "ai", "C2PA: data made by a trained model"),
    SourceType("empty", None, "C2PA: the source type is not declared"),
)

BY_CODE: dict[str, SourceType] = {t.code.lower(): t for t in SOURCE_TYPES}


def dst_code(value: str) -> str:
    """The code of a DigitalSourceType value: 'http://…/digitalsourcetype/trainedAlgorithmicMedia' → its tail."""
    tail = value.strip().rstrip("/").rsplit("/", 1)[-1]
    return tail.rsplit(":", 1)[-1].strip()


def lookup(value: str) -> SourceType | None:
    """The vocabulary entry for a value (URI, QCode 'digsrctype:…' or bare code), or None if unknown."""
    return BY_CODE.get(dst_code(value).lower())


def dst_signal(value: str) -> Signal | None:
    """What a DigitalSourceType value says, or None for codes that say nothing (and unknown ones)."""
    entry = lookup(value)
    return entry.signal if entry else None


def dst_meaning(value: str) -> str:
    entry = lookup(value)
    return entry.meaning if entry else "not a code of the IPTC vocabulary"
