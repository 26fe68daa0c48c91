"""EXIF camera data (make, model, lens, exposure, GPS present, software) via exifread.

A weak signal by design: EXIF is trivial to forge, copy from another photo, or strip, so a
`camera` item never decides a verdict. What this reader adds is context for the report and for
fusion: which camera the file claims, whether an editor touched it, whether the Software tag
names a generator.

Cost and safety: exifread is fed the EXIF block Pillow already cut out of the file (JPEG APP1,
WebP/PNG EXIF chunk, HEIF item) rather than the whole file; only when Pillow found none does it
scan `media.data` itself (TIFF, or containers Pillow could not parse). MakerNotes and thumbnails
are skipped (`details=False`, `extract_thumbnail=False`). Every read goes through a budgeted
file object that stops pathological IFD chains after a fixed number of reads or a time limit.
exifread logs to the "exifread" logger; we capture those records instead of letting them reach
stderr, and report them as warnings on the item.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from typing import Any

from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.media import Media

NEEDS_PIXELS = False
SOURCE = "exif"

MAX_READS = 20_000  # exifread reads; the sample cameras need under 800
MAX_SECONDS = 0.25
MAX_TEXT = 128  # characters kept of any EXIF string
MAX_WARNINGS = 5

# Software strings that mean an image editor touched the file (case-insensitive, anchored on words).
_EDITORS = re.compile(
    r"\b(photoshop|lightroom|gimp|affinity|capture one|pixelmator|snapseed|paint\.net|darktable|"
    r"rawtherapee|dxo|luminar|picasa|acdsee|paint ?shop ?pro|photopea|canva|photoscape|fotor|"
    r"vsco|on1 photo|aperture|iphoto|capture nx|photo gallery|photo ?director|corel|krita|"
    r"inkscape|imagemagick|graphicsmagick|pixlr|photoshop express|facetune|meitu|picsart|"
    r"paint tool sai|painttool|clip studio|procreate)\b",
    re.IGNORECASE,
)
# Software strings that name an image generator.
_GENERATORS = re.compile(
    r"\b(midjourney|dall[-·\s]?e|stable[\s_-]?diffusion|sdxl|novel\s?ai|comfy\s?ui|invoke\s?ai|"
    r"automatic1111|fooocus|adobe firefly|leonardo\.ai|ideogram|dreamstudio|nightcafe|craiyon|"
    r"bing image creator|flux\.1|swarmui|draw things)\b",
    re.IGNORECASE,
)


class _Capture(logging.Handler):
    """Collects exifread's log records for the current thread instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        records = getattr(self.local, "records", None)
        if records is not None and len(records) < MAX_WARNINGS:
            try:
                records.append(record.getMessage()[:200])
            except Exception:  # a malformed log call must not break the reader
                records.append(str(record.msg)[:200])


_capture: _Capture | None = None
_setup_lock = threading.Lock()


def _exifread() -> Any:
    """Import exifread lazily and route its logger into our capture handler (once)."""
    global _capture
    import exifread

    if _capture is None:
        with _setup_lock:
            if _capture is None:
                logger = logging.getLogger("exifread")
                handler = _Capture()
                logger.addHandler(handler)
                logger.propagate = False  # never reaches the root logger / stderr
                logger.setLevel(logging.WARNING)  # debug records are not even built
                _capture = handler
    return exifread


class _OverBudget(Exception):
    pass


class _BudgetedIO(io.BytesIO):
    """BytesIO that refuses to serve more than a fixed number of reads or past a deadline."""

    def __init__(self, data: bytes, max_reads: int, deadline: float) -> None:
        super().__init__(data)
        self.reads_left = max_reads
        self.deadline = deadline

    def read(self, size: int | None = -1) -> bytes:
        self.reads_left -= 1
        if self.reads_left <= 0 or (self.reads_left % 256 == 0 and time.monotonic() > self.deadline):
            raise _OverBudget("EXIF parsing budget exhausted")
        return super().read(size)


def _exif_blob(media: Media) -> tuple[bytes | None, bool]:
    """Bytes for exifread and whether they are an EXIF block Pillow found (vs the whole file)."""
    blob = media.info.get("exif")
    if isinstance(blob, bytes) and blob:
        if blob.startswith(b"Exif\0\0"):
            blob = blob[6:]
        elif blob[4:10] == b"Exif\0\0":  # HEIF items may keep their 4-byte offset prefix
            blob = blob[10:]
        return blob, True
    if media.format == "JPEG":
        from fakescope_cli.evidence.generators.tiff_ifd import jpeg_raw_exif

        raw = jpeg_raw_exif(media.data)  # EXIF under an APP1 header Pillow does not take
        if raw is not None:
            return raw, True
    if media.format in ("JPEG", "WEBP") and media.header_error is None:
        return None, False  # Pillow parsed the header and found no EXIF: exifread would find none either
    if media.format == "PNG" and media.header_error is None and b"eXIf" not in media.data:
        return None, False  # no EXIF chunk anywhere (Pillow reads one only before the image data)
    if media.format in ("TIFF", "JPEG", "HEIF", "AVIF", "WEBP", "PNG"):
        return media.data, False
    return None, False


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value)).strip()
    return text[:MAX_TEXT] if text else None


def _tag_text(tags: dict[str, Any], name: str) -> str | None:
    tag = tags.get(name)
    if tag is None:
        return None
    values = getattr(tag, "values", None)
    if isinstance(values, (str, bytes)):
        return _clean(values)
    return _clean(getattr(tag, "printable", None))


def _tag_number(tags: dict[str, Any], name: str) -> float | None:
    tag = tags.get(name)
    values = getattr(tag, "values", None)
    if not isinstance(values, list) or not values:
        return None
    try:
        number = float(values[0])
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if number != number or number in (float("inf"), float("-inf")) or number < 0:
        return None
    return round(number, 6)


def _exposure_time(tags: dict[str, Any]) -> str | None:
    seconds = _tag_number(tags, "EXIF ExposureTime")
    if seconds is None or seconds <= 0:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)}"
    return f"{seconds:g}"


def _gps_present(tags: dict[str, Any]) -> bool:
    """True only when coordinates are there: many files carry a GPS IFD with just a version."""
    for name in ("GPS GPSLatitude", "GPS GPSLongitude"):
        values = getattr(tags.get(name), "values", None)
        if not isinstance(values, list) or len(values) < 1:
            return False
    return True


_GRAPH_TEXT = re.compile(r"\s*(prompt|workflow)\s*:\s*\{", re.IGNORECASE)


def _is_generator_text(value: str | None) -> bool:
    # ComfyUI's savers store their graphs in Make/Model/ImageDescription as "prompt:{…}" /
    # "workflow:{…}" (SaveImageExtended: "Prompt:" / "Workflow:"); a generator's name there is no camera.
    return bool(value) and (_GRAPH_TEXT.match(value or "") is not None or _GENERATORS.search(value or "") is not None)


class _Text:
    """A tag read by the fallback walker, shaped like exifread's (its `values`)."""

    def __init__(self, value: str) -> None:
        self.values = value


def _fallback_tags(blob: bytes) -> dict[str, Any]:
    """IFD0 text tags read by our own bounded walker, for EXIF that exifread returns nothing for
    (it gives up on some encodings that exiftool reads with a warning)."""
    from fakescope_cli.evidence.generators.tiff_ifd import tiff_fields

    fields, _order = tiff_fields(blob)
    names = {"Make": "Image Make", "Model": "Image Model", "Software": "Image Software"}
    return {tag: _Text(fields[name].split(b"\0", 1)[0].decode("utf-8", "replace"))
            for name, tag in names.items() if fields.get(name)}


def _camera_name(make: str | None, model: str | None) -> str:
    if make and model:
        if model.lower().startswith(make.split()[0].lower()):
            return model
        return f"{make} {model}"
    return make or model or "unknown"


def read(media: Media) -> list[EvidenceItem]:
    blob, from_segment = _exif_blob(media)
    if blob is None:
        return []
    exifread = _exifread()
    assert _capture is not None
    _capture.local.records = []
    error: str | None = None
    tags: dict[str, Any] = {}
    try:
        fh = _BudgetedIO(blob, MAX_READS, time.monotonic() + MAX_SECONDS)
        tags = exifread.process_file(fh, details=False, extract_thumbnail=False) or {}
    except _OverBudget:
        error = "parsing budget exhausted (looping or oversized IFDs)"
    except Exception as exc:  # exifread has crashed on hostile files before
        error = f"{type(exc).__name__}"
    finally:
        warnings = list(_capture.local.records)
        _capture.local.records = None

    if not isinstance(tags, dict):
        tags = {}
    fallback = False
    if not tags and from_segment:
        tags = _fallback_tags(blob)
        fallback = bool(tags)
    make = _tag_text(tags, "Image Make")
    model = _tag_text(tags, "Image Model")
    if _is_generator_text(make) or _is_generator_text(model):
        make = model = None  # not a camera; the generators reader reports these
    software = _tag_text(tags, "Image Software")
    lens = _tag_text(tags, "EXIF LensModel")
    lens_make = _tag_text(tags, "EXIF LensMake")
    if lens and lens_make and not lens.lower().startswith(lens_make.lower()):
        lens = f"{lens_make} {lens}"[:MAX_TEXT]

    details: dict[str, Any] = {
        "make": make,
        "model": model,
        "lens": lens,
        "exposure_time": _exposure_time(tags),
        "f_number": _tag_number(tags, "EXIF FNumber"),
        "iso": _tag_number(tags, "EXIF ISOSpeedRatings"),
        "focal_length_mm": _tag_number(tags, "EXIF FocalLength"),
        "datetime_original": _tag_text(tags, "EXIF DateTimeOriginal"),
        "gps": _gps_present(tags),
        "software": software,
    }
    details = {k: v for k, v in details.items() if v is not None}
    if isinstance(details.get("iso"), float) and details["iso"].is_integer():
        details["iso"] = int(details["iso"])
    if warnings and tags:
        details["warnings"] = warnings
    if fallback:
        details["read_by"] = "fallback IFD0 walker (exifread found no tags)"
    if error:
        details["error"] = error

    items: list[EvidenceItem] = []
    software_is_ai = bool(software and _GENERATORS.search(software))
    software_is_editor = bool(software and not software_is_ai and _EDITORS.search(software))
    if software:
        details["software_kind"] = (
            "generator" if software_is_ai else "editor" if software_is_editor else "other"
        )

    if make or model:
        items.append(
            EvidenceItem(
                SOURCE,
                "camera",
                f"EXIF names the camera {_camera_name(make, model)}",
                details,
                strong=False,
            )
        )
    elif software_is_editor:
        items.append(
            EvidenceItem(
                SOURCE, "editor", f"EXIF Software names an editor ({software}); no camera is named", details
            )
        )
    if software_is_ai:
        # Weak on purpose: a bare Software string with no generation parameters is one forgeable
        # field, and some tools named here also edit real photos (e.g. generative fill), so it
        # may not mean "wholly generated". Structured generator metadata (generators reader)
        # and valid C2PA manifests are the strong signals; this one only informs fusion.
        items.append(
            EvidenceItem(
                SOURCE,
                "ai",
                f"EXIF Software names an AI image generator ({software})",
                {**details, "tool": software},
                strong=False,
            )
        )
    if not items and (error or (from_segment and not tags)):
        items.append(
            EvidenceItem(
                SOURCE,
                "none",
                "EXIF data is present but malformed; nothing usable could be read",
                {"malformed": True, "error": error or "no readable tags", "warnings": warnings},
            )
        )
    return items
