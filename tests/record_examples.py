"""Realistic scan records for renderer and schema tests.

Identity fields (sha256, size, format, dimensions, mtime) come from real fixture files opened with
`Media`; verdicts, evidence and detector output are what fusion and the backends produce for such
files, built through `ScanRecord`, `EvidenceItem` and `DetectorResult` so they keep their shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.media import Media
from fakescope_cli.record import ScanRecord
from tests.conftest import FIXTURES

CAMERA = FIXTURES / "exif-samples" / "jpg" / "Canon_40D.jpg"
A1111 = FIXTURES / "provenance" / "sd-parsers" / "automatic1111_cropped.png"
FIREFLY = FIXTURES / "provenance" / "c2pa" / "ocsp.jpg"
COMFY = FIXTURES / "provenance" / "comfyui" / "sdxl_sdxl_simple_example.png"

NON_ASCII_PATH = "Fotos/Ünïcödé 写真 (1).jpg"
NEWLINE_PATH = "odd/line\nbreak.png"
ANSI_PATH = "evil/\x1b[31mred\x1b[0m.png"
FORMULA_PATH = "=HYPERLINK(\"http://example.invalid\",\"x\").png"
LONG_PATH = "archive/" + "/".join(f"level-{i:02d}-directory" for i in range(12)) + "/final_image_name.jpg"

DETECTOR_INFO = {"id": "builtin", "version": "builtin-0.1", "weights_sha256": "0" * 63 + "1"}


def _identify(record: ScanRecord, path: Any, shown: str | None = None) -> ScanRecord:
    media = Media.open(path)
    record.path = shown if shown is not None else str(path)
    record.sha256 = media.sha256
    record.bytes = media.size
    record.format = media.format
    record.width, record.height = (int(v) for v in media.header.size)
    record.mtime = (
        dt.datetime.fromtimestamp(media.mtime_ns / 1e9, dt.timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
    record.detector_id = DETECTOR_INFO["id"]
    record.detector_version = DETECTOR_INFO["version"]
    record.weights_sha256 = DETECTOR_INFO["weights_sha256"]
    return record


def _detector(result: DetectorResult) -> dict[str, Any]:
    return {**DETECTOR_INFO, **result.to_dict()}


def ok_record(shown: str | None = None) -> dict[str, Any]:
    """A camera JPEG the detector scores low: likely-real, weak camera evidence."""
    exif = EvidenceItem("exif", "camera", "EXIF says Canon EOS 40D, 1/160 s, f/7.1.",
                        {"make": "Canon", "model": "Canon EOS 40D"})
    record = _identify(ScanRecord(path=""), CAMERA, shown)
    record.evidence = [exif.to_dict()]
    record.detector = _detector(DetectorResult(p_fake=0.031, raw={"logit": -3.44}))
    record.p_fake = 0.031
    record.verdict = "likely-real"
    record.reasons = [
        "The pixel detector scores 3% (at or below 20%).",
        "Camera EXIF is present (weak: easy to forge or strip).",
    ]
    return record.to_dict()


def ai_generated_record(shown: str | None = None) -> dict[str, Any]:
    """AUTOMATIC1111 PNG: generator metadata decides."""
    item = EvidenceItem(
        "generator", "ai",
        "PNG text chunk 'parameters' was written by AUTOMATIC1111 (Stable Diffusion web UI).",
        {"tool": "AUTOMATIC1111", "prompt": "a lighthouse at dusk", "steps": 20, "seed": 1234,
         "sampler": "Euler a", "truncated": False},
        strong=True,
    )
    record = _identify(ScanRecord(path=""), A1111, shown)
    record.evidence = [item.to_dict()]
    record.p_fake = 0.99
    record.verdict = "ai-generated"
    record.reasons = [item.summary]
    return record.to_dict()


def ai_edited_record() -> dict[str, Any]:
    """Photoshop + Firefly generative fill, declared by Adobe's Content Credentials."""
    c2pa = EvidenceItem(
        "c2pa", "ai-edited",
        "Content Credentials (signed by Adobe) declare a generative edit: compositeWithTrainedAlgorithmicMedia.",
        {"claim_generator": "Adobe Photoshop", "validation_state": "Valid",
         "digital_source_type": "compositeWithTrainedAlgorithmicMedia"},
        strong=True,
    )
    editor = EvidenceItem("xmp", "editor", "XMP CreatorTool: Adobe Photoshop.", {"creator_tool": "Adobe Photoshop"})
    record = _identify(ScanRecord(path=""), FIREFLY)
    record.evidence = [c2pa.to_dict(), editor.to_dict()]
    record.p_fake = 0.9
    record.verdict = "ai-edited"
    record.reasons = [c2pa.summary]
    return record.to_dict()


def likely_ai_record(shown: str | None = None) -> dict[str, Any]:
    """Pixels alone: the detector is above its upper threshold, no provenance."""
    record = _identify(ScanRecord(path=""), COMFY, shown)
    record.detector = _detector(DetectorResult(p_fake=0.93, raw={"logit": 2.59}))
    record.p_fake = 0.93
    record.verdict = "likely-ai"
    record.reasons = ["The pixel detector scores 93% (at or above 80%).",
                      "No provenance metadata found; its absence proves nothing."]
    return record.to_dict()


def uncertain_record(shown: str | None = None) -> dict[str, Any]:
    """A multimodal backend's full output: attributes, explanation, regions, raw logits."""
    aspects = ["texture", "edge", "clarity", "light and shadow", "layout", "symmetry", "reflection",
               "perspective", "shape", "theme", "content deficiency", "distortion",
               "unrealistic details", "overall tone"]
    attributes = {a: round(0.2 + 0.05 * i, 3) for i, a in enumerate(aspects)}
    result = DetectorResult(
        p_fake=0.55,
        attributes=attributes,
        explanation="The skin texture is unusually smooth and the shadows fall two ways.\n"
        "The background text is legible, though. On balance this image is fake",
        regions={"rows": 2, "cols": 3, "p_fake": [[0.2, 0.7, 0.4], [0.1, 0.35, 0.9]], "tile": 224},
        raw={"z_fake": -0.4, "z_real": -0.6, "labels": {"fake": [" fake", "Fake"], "real": [" real"]},
             "logprobs_top": [{"token": " fake", "logprob": -0.6}]},
    )
    record = _identify(ScanRecord(path=""), CAMERA, shown)
    record.detector = {"id": "hf", "version": "llava-1.5-7b", "weights_sha256": None, **result.to_dict()}
    record.detector_id, record.detector_version, record.weights_sha256 = "hf", "llava-1.5-7b", None
    record.p_fake = 0.55
    record.verdict = "uncertain"
    record.reasons = ["The pixel detector scores 55%, inside the uncertain band (20%-80%)."]
    return record.to_dict()


def error_record(path: str = "photos/broken.jpg") -> dict[str, Any]:
    record = ScanRecord(path=path, bytes=5120, sha256="ab" * 32)
    record.add_error("truncated", "the image data ends early")
    record.warnings.append({"code": "exif-reader", "message": "exif: IFD offset past end of file"})
    return record.to_dict()


def not_found_record(path: str) -> dict[str, Any]:
    record = ScanRecord(path=path)
    record.add_error("not-found", "the path does not exist")
    return record.to_dict()


def all_examples() -> list[dict[str, Any]]:
    """One of each kind, with awkward paths, in scan order."""
    return [
        ok_record(),
        ai_generated_record(),
        ai_edited_record(),
        likely_ai_record(NON_ASCII_PATH),
        uncertain_record(NEWLINE_PATH),
        error_record(),
        ai_generated_record(ANSI_PATH),
        ok_record(FORMULA_PATH),
        not_found_record(LONG_PATH),
    ]
