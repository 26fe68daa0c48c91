"""Model-free provenance: run every reader over one file and gather what they found.

Readers are modules with `read(media) -> list[EvidenceItem]` and `NEEDS_PIXELS`. They are imported
lazily so that `fakescope --help` stays light, and each is isolated: a reader that fails adds a
warning to the record, it never loses the file.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fakescope_cli.errors import InputError
from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.media import Media, extension_mismatch

# Order is the order of the report: strongest, most specific provenance first.
READER_MODULES: tuple[str, ...] = (
    "fakescope_cli.evidence.c2pa",
    "fakescope_cli.evidence.xmp",
    "fakescope_cli.evidence.generators",
    "fakescope_cli.evidence.watermark",
    "fakescope_cli.evidence.exif",
)

# Readers that need decoded pixels: not even imported for a metadata-only scan (the watermark
# reader pulls in numpy, ~50 ms of a one-file `--no-pixels` run). Each still says NEEDS_PIXELS itself.
PIXEL_READERS = frozenset({"fakescope_cli.evidence.watermark"})

_loaded: dict[str, ModuleType] = {}


def readers(pixels: bool = True) -> list[ModuleType]:
    names = [n for n in READER_MODULES if pixels or n not in PIXEL_READERS]
    for name in names:
        if name not in _loaded:
            _loaded[name] = importlib.import_module(name)
    return [_loaded[name] for name in names]


def collect(media: Media, pixels_readable: bool = True) -> tuple[list[EvidenceItem], list[dict[str, str]]]:
    """All evidence for one file, and warnings: about the file itself (see `file_warnings`) and
    for readers that could not finish.

    `pixels_readable=False` (the decode already failed, and the record says so) skips the readers
    that need pixels instead of repeating that failure as their warning."""
    items: list[EvidenceItem] = []
    warnings = file_warnings(media, pixels_readable)
    pixels = media.allow_pixels and pixels_readable
    for module in readers(pixels):
        name = module.__name__.rsplit(".", 1)[-1]
        if getattr(module, "NEEDS_PIXELS", False) and not pixels:
            continue
        try:
            items.extend(module.read(media))
        except InputError as exc:
            warnings.append({"code": f"{name}-reader", "message": f"{name}: {exc.message}"})
        except Exception as exc:  # a reader bug must not lose the file
            warnings.append(
                {"code": f"{name}-reader", "message": f"{name} reader failed: {type(exc).__name__}: {exc}"}
            )
    return items, warnings


def file_warnings(media: Media, pixels_readable: bool = True) -> list[dict[str, str]]:
    """What an investigator should know about how much of the file was looked at."""
    out: list[dict[str, str]] = []
    renamed = extension_warning(media.name, media.format)
    if renamed is not None:
        out.append(renamed)
    if media.header_error is not None:
        # Readers fall back on the raw bytes (C2PA store, XMP packets, PNG text chunks); EXIF and
        # anything else only the parsed header gives were not read, so "nothing found" is partial.
        out.append({"code": "metadata-partial",
                    "message": "the image header cannot be parsed, so metadata was searched in the raw "
                               "bytes only (C2PA, XMP, PNG text chunks); EXIF and other header fields "
                               "were not read"})
    out.extend(media.skipped_text_warnings)  # oversized PNG text chunks left out; the rest was read
    if media.allow_pixels and pixels_readable:
        frames = media.frame_count
        if frames is not None and frames > 1:
            # The detector and the watermark check see frame 0 only; later frames may differ.
            what, unit = ("multi-page TIFF", "page") if media.format == "TIFF" else \
                (f"animated {'APNG' if media.format == 'PNG' else media.format}", "frame")
            out.append({"code": "first-frame-only",
                        "message": f"{what} with {frames} {unit}s: only the first {unit} was analysed"})
    return out


def extension_warning(name: str, fmt: str | None) -> dict[str, str] | None:
    """The warning for a file whose name promises another format than its bytes. It depends on the
    name, not the content, so a result served from the cache gets it anew for the name scanned now."""
    suffix = extension_mismatch(name, fmt)
    if suffix is None:
        return None
    # A renamed file is not proof of anything, but it is a question worth asking.
    return {"code": "extension-mismatch", "message": f"named {suffix} but the bytes are {fmt}"}
