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
from fakescope_cli.media import Media

# Order is the order of the report: strongest, most specific provenance first.
READER_MODULES: tuple[str, ...] = (
    "fakescope_cli.evidence.c2pa",
    "fakescope_cli.evidence.xmp",
    "fakescope_cli.evidence.generators",
    "fakescope_cli.evidence.watermark",
    "fakescope_cli.evidence.exif",
)

_loaded: list[ModuleType] | None = None


def readers() -> list[ModuleType]:
    global _loaded
    if _loaded is None:
        _loaded = [importlib.import_module(name) for name in READER_MODULES]
    return _loaded


def collect(media: Media, pixels_readable: bool = True) -> tuple[list[EvidenceItem], list[dict[str, str]]]:
    """All evidence for one file, and warnings for readers that could not finish.

    `pixels_readable=False` (the decode already failed, and the record says so) skips the readers
    that need pixels instead of repeating that failure as their warning."""
    items: list[EvidenceItem] = []
    warnings: list[dict[str, str]] = []
    for module in readers():
        name = module.__name__.rsplit(".", 1)[-1]
        if getattr(module, "NEEDS_PIXELS", False) and not (media.allow_pixels and pixels_readable):
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
