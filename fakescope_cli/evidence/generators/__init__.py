"""Generator metadata: the parameters AI image tools write into the files they save.

Recognised, each as one strong `ai` item naming the tool:
- AUTOMATIC1111 and its forks: PNG text `parameters`; JPEG/WebP EXIF UserComment; "stealth"
  copies hidden in the alpha channel or the RGB low bits (only when pixels may be decoded).
- ComfyUI: PNG `prompt` (API graph) and `workflow` (UI graph) JSON; WebP EXIF Make/Model
  `prompt:{…}` / `workflow:{…}` as its SaveAnimatedWEBP node writes them.
- InvokeAI: `invokeai_metadata` (3.x+), `sd-metadata` (2.x), `Dream` (1.x).
- NovelAI: `Software`=NovelAI with `Comment` JSON and `Description`; also its alpha "stealth" copy.
- Fooocus: `fooocus_scheme` with `parameters` JSON (or A1111 text), and its JPEG EXIF form.
- SwarmUI: `parameters` JSON with `sui_image_params`.
A text field that merely names a generator (PNG `Software`, `Comment`…) is a weak hint only.

Format facts were learned from the tools' public sources and sample files
(d3x-at/sd-parsers fixtures, ComfyUI nodes, the sd-webui-stealth-pnginfo extension, Fooocus
meta_parser); the code is our own. Everything is bounded: JSON above a size cap is not parsed,
text is truncated, and graphs are walked with visit limits.

One module per tool (a1111, comfyui, fooocus, invokeai, novelai, swarmui …), the ComfyUI graph
walker (comfy_graph), the PNG late-chunk reader (png_text) and the TIFF IFD walker (tiff_ifd).
"""

from __future__ import annotations

from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.evidence.generators.finding import MAX_JSON, MAX_PROMPT, SOURCE, as_text
from fakescope_cli.evidence.generators.hints import text_hint
from fakescope_cli.evidence.generators.png_text import png_late_texts
from fakescope_cli.media import Media

__all__ = ["MAX_JSON", "MAX_PROMPT", "NEEDS_PIXELS", "SOURCE", "png_late_texts", "read"]

# Pixels are optional (stealth metadata only) and used only when media.allow_pixels.
NEEDS_PIXELS = False


def read(media: Media) -> list[EvidenceItem]:
    fmt = media.format
    if fmt is None:
        return []
    info = media.info
    texts: dict[str, str] = {}
    for key, value in info.items():
        if isinstance(key, str) and isinstance(value, str):
            texts[key] = value
    if fmt == "PNG":
        # A header Pillow cannot parse gives no text: then read every text chunk from the bytes.
        for key, value in png_late_texts(media.data, after_idat_only=media.header_error is None).items():
            texts.setdefault(key, value)
    comment = as_text(info.get("comment")) if fmt in ("JPEG", "GIF") else None
    if comment:
        texts.setdefault("comment", comment)

    # The parsers are imported when a file has something for them: a one-file metadata scan of a
    # JPEG with no EXIF loads none of them.
    container = {"PNG": "PNG text", "JPEG": "JPEG", "WEBP": "WebP"}.get(fmt, fmt)
    found = None
    if texts and fmt in ("PNG", "WEBP", "GIF"):
        from fakescope_cli.evidence.generators.texts import from_texts

        found = from_texts(texts, container)
    exif = info.get("exif")
    if not exif and fmt == "JPEG":
        from fakescope_cli.evidence.generators.tiff_ifd import jpeg_raw_exif

        exif = jpeg_raw_exif(media.data)  # EXIF under an APP1 header Pillow does not take
    if found is None and isinstance(exif, bytes) and exif:
        from fakescope_cli.evidence.generators.exif_text import from_exif

        found = from_exif(exif, container.replace(" text", ""))
    if found is None and comment:
        from fakescope_cli.evidence.generators.a1111 import from_infotext

        found = from_infotext(comment, f"{container} comment", lenient=False)
    if found is None and fmt in ("PNG", "WEBP") and media.allow_pixels:
        from fakescope_cli.evidence.generators.stealth import from_stealth  # numpy, pixels

        found = from_stealth(media)
    if found is not None:
        return [found.item()]
    hint = text_hint(texts)
    return [item for item in (hint, _text_left_out(media)) if item is not None]


MAX_LIST_SKIPPED = 20  # chunk keywords kept in the details


def _text_left_out(media: Media) -> EvidenceItem | None:
    """Text chunks too large to inflate (left out of the parse, see Media.skipped_text_chunks) may
    hold a generator's workflow: metadata present but unread, not 'no metadata'."""
    skipped = media.skipped_text_chunks if media.format == "PNG" else []
    if not skipped:
        return None
    names = ", ".join(f"{c.chunk_type} '{c.keyword}'" for c in skipped[:3]) + (" …" if len(skipped) > 3 else "")
    return EvidenceItem(SOURCE, "none", f"PNG text chunk {names} too large to read (memory guard)",
                        {"unreadable": True, "chunks": [c.keyword for c in skipped[:MAX_LIST_SKIPPED]]})
