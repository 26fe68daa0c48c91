"""EXIF camera data (make, model, lens, exposure, GPS present, software) via our IFD walker.

A weak signal by design: EXIF is trivial to forge, copy from another photo, or strip, so a
`camera` item never decides a verdict. What this reader adds is context for the report and for
fusion: which camera the file claims, whether an editor touched it, whether the Software tag
names a generator.

Cost and safety: the walker (generators/tiff_ifd.py, shared with the generators reader) is fed
the EXIF block Pillow already cut out of the file (JPEG APP1, WebP/PNG EXIF chunk, HEIF item);
only when Pillow found none is the block looked for in `media.data` (TIFF, or containers Pillow
could not parse). It reads IFD0, the Exif IFD and the GPS IFD only, checks every offset and count
against the data, caps the entries of an IFD and reads each IFD once, so hostile EXIF costs at
most a few thousand entry reads. What it had to skip comes back as warnings on the item.
"""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.evidence.generators.tiff_ifd import Entry, Ifds, read_ifds
from fakescope_cli.media import Media

NEEDS_PIXELS = False
SOURCE = "exif"

MAX_TEXT = 128  # characters kept of any EXIF string

# Tags read (EXIF 2.32 §4.6.4–§4.6.6): IFD0, the Exif IFD, the GPS IFD.
MAKE, MODEL, SOFTWARE = 0x010F, 0x0110, 0x0131
EXPOSURE_TIME, F_NUMBER, ISO, DATETIME_ORIGINAL, FOCAL_LENGTH = 0x829A, 0x829D, 0x8827, 0x9003, 0x920A
LENS_MAKE, LENS_MODEL = 0xA433, 0xA434
GPS_LATITUDE, GPS_LONGITUDE = 0x0002, 0x0004

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


def _exif_blob(media: Media) -> tuple[bytes | None, bool]:
    """The TIFF block to walk and whether it is an EXIF block Pillow (or our APP1 walk) found
    rather than one looked for in the whole file."""
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
        return None, False  # Pillow parsed the header and found no EXIF: there is none to read
    if media.format == "PNG" and media.header_error is None and b"eXIf" not in media.data:
        return None, False  # no EXIF chunk anywhere (Pillow reads one only before the image data)
    if media.format in ("TIFF", "JPEG", "HEIF", "AVIF", "WEBP", "PNG"):
        return _tiff_in_file(media.data, media.format), False
    return None, False


def _tiff_in_file(data: bytes, fmt: str | None) -> bytes | None:
    """Where the TIFF block starts in a file Pillow could not cut the EXIF out of: the file itself
    (TIFF), a PNG eXIf chunk, or the TIFF header after "Exif\0\0" (JPEG APP1, HEIF Exif item, WebP
    EXIF chunk) or at a WebP EXIF chunk's start. The walker bounds-checks whatever follows."""
    if fmt == "TIFF" or data[:2] in (b"II", b"MM"):
        return data
    if fmt == "PNG":
        at = data.find(b"eXIf", 8)
        if at >= 12:
            return data[at + 4 : at + 4 + int.from_bytes(data[at - 4 : at], "big")]
        return None
    at = data.find(b"Exif\0\0")
    if at >= 0 and data[at + 6 : at + 8] in (b"II", b"MM"):
        return data[at + 6 :]
    at = data.find(b"EXIF") if fmt == "WEBP" else -1
    if at >= 0 and data[at + 8 : at + 10] in (b"II", b"MM"):
        return data[at + 8 :]
    return None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()
    return text[:MAX_TEXT] if text else None


def _number(ifds: Ifds, tag: int) -> float | None:
    """The first value of an Exif IFD tag as a finite, non-negative number, rounded for JSON."""
    number = ifds.number(ifds.exif.get(tag))
    if number is None or number != number or number in (float("inf"), float("-inf")) or number < 0:
        return None
    return round(number, 6)


def _exposure_time(ifds: Ifds) -> str | None:
    seconds = _number(ifds, EXPOSURE_TIME)
    if seconds is None or seconds <= 0:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)}"
    return f"{seconds:g}"


def _gps_present(ifds: Ifds) -> bool:
    """True only when coordinates are there: many files carry a GPS IFD with just a version."""
    for tag in (GPS_LATITUDE, GPS_LONGITUDE):
        entry = ifds.gps.get(tag)
        if entry is None or entry.count < 1 or ifds.number(entry) is None:
            return False
    return True


_GRAPH_TEXT = re.compile(r"\s*(prompt|workflow)\s*:\s*\{", re.IGNORECASE)


def _is_generator_text(value: str | None) -> bool:
    # ComfyUI's savers store their graphs in Make/Model/ImageDescription as "prompt:{…}" /
    # "workflow:{…}" (SaveImageExtended: "Prompt:" / "Workflow:"); a generator's name there is no camera.
    return bool(value) and (_GRAPH_TEXT.match(value or "") is not None or _GENERATORS.search(value or "") is not None)


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
    ifds = read_ifds(blob)
    if not ifds and not from_segment:
        return []  # no EXIF found in a file Pillow could not parse: nothing to say

    def text(entries: dict[int, Entry], tag: int) -> str | None:
        return _clean(ifds.text(entries.get(tag)))

    make = text(ifds.ifd0, MAKE)
    model = text(ifds.ifd0, MODEL)
    if _is_generator_text(make) or _is_generator_text(model):
        make = model = None  # not a camera; the generators reader reports these
    software = text(ifds.ifd0, SOFTWARE)
    lens = text(ifds.exif, LENS_MODEL)
    lens_make = text(ifds.exif, LENS_MAKE)
    if lens and lens_make and not lens.lower().startswith(lens_make.lower()):
        lens = f"{lens_make} {lens}"[:MAX_TEXT]

    details: dict[str, Any] = {
        "make": make,
        "model": model,
        "lens": lens,
        "exposure_time": _exposure_time(ifds),
        "f_number": _number(ifds, F_NUMBER),
        "iso": _number(ifds, ISO),
        "focal_length_mm": _number(ifds, FOCAL_LENGTH),
        "datetime_original": text(ifds.exif, DATETIME_ORIGINAL),
        "gps": _gps_present(ifds),
        "software": software,
    }
    details = {k: v for k, v in details.items() if v is not None}
    if isinstance(details.get("iso"), float) and details["iso"].is_integer():
        details["iso"] = int(details["iso"])
    if ifds.warnings and ifds:
        details["warnings"] = list(ifds.warnings)

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
    if not items and not ifds:
        items.append(
            EvidenceItem(
                SOURCE,
                "none",
                "EXIF data is present but malformed; nothing usable could be read",
                {"malformed": True, "error": "no readable tags", "warnings": list(ifds.warnings)},
            )
        )
    return items
