"""Generator metadata in EXIF (JPEG / WebP): UserComment, and the IFD0 text tags ComfyUI's savers use."""

from __future__ import annotations

import json

from fakescope_cli.evidence.generators.finding import MAX_JSON, Finding, parse_json
from fakescope_cli.evidence.generators.tiff_ifd import COMFY_EXIF_TAGS, tiff_fields

# Each generator's parser is imported when the EXIF holds text for it: a camera's EXIF (no
# UserComment, or a blank one) loads none of them (~2 ms of a one-file scan).


def _decode_user_comment(raw: bytes, order: str) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then text (EXIF 2.3 §4.6.5)."""
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\0":
        # A1111 (via piexif) writes UTF-16BE whatever the TIFF order; others follow the TIFF
        # order. Decide from where the zero high bytes of ASCII-range text sit.
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16", "replace")
        sample = body[:512]
        even_zeros = sample[0::2].count(0)
        odd_zeros = sample[1::2].count(0)
        if even_zeros != odd_zeros:
            encoding = "utf-16-be" if even_zeros > odd_zeros else "utf-16-le"
        else:
            encoding = "utf-16-le" if order == "<" else "utf-16-be"
        return body[: len(body) - len(body) % 2].decode(encoding, "replace").rstrip("\0")
    if prefix == b"ASCII\0\0\0":
        return body.decode("utf-8", "replace").rstrip("\0")
    if prefix == b"JIS\0\0\0\0\0":
        return body.decode("shift_jis", "replace").rstrip("\0")
    if prefix == b"\0" * 8:
        return body.decode("utf-8", "replace").rstrip("\0")
    return raw.decode("utf-8", "replace").rstrip("\0")  # no prefix (Pillow-written strings)


def _ascii(raw: bytes | None) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip() if raw else ""


def from_exif(blob: bytes, container: str) -> Finding | None:
    fields, order = tiff_fields(blob)
    if not fields:
        return None
    # ComfyUI WebP: IFD0 text tags holding "prompt:{json}" / "workflow:{json}".
    comfy: dict[str, str] = {}
    for name in ("Model", "Make", "ImageDescription", *(COMFY_EXIF_TAGS.values())):
        text = _ascii(fields.get(name))
        key, sep, rest = text.partition(":")
        key = key.strip().lower()  # SaveImageExtended writes "Prompt:" / "Workflow:"
        if sep and key in ("prompt", "workflow") and rest.lstrip().startswith("{"):
            comfy.setdefault(key, rest)
    if comfy:
        from fakescope_cli.evidence.generators.comfyui import from_comfy

        found = from_comfy(comfy.get("prompt"), comfy.get("workflow"), f"{container} EXIF Make/Model/ImageDescription")
        if found is not None:
            return found
    comment_raw = fields.get("UserComment")
    if not comment_raw:
        return None
    comment = _decode_user_comment(comment_raw[: MAX_JSON * 2], order)
    location = f"{container} EXIF UserComment"
    software = _ascii(fields.get("Software"))
    scheme = _ascii(fields.get("MakerNote", b"")[:64])  # Fooocus stores its metadata scheme here
    if software.lower().startswith("fooocus") or scheme in ("fooocus", "a1111"):
        from fakescope_cli.evidence.generators.a1111 import from_infotext

        data = parse_json(comment) if comment.lstrip().startswith("{") else None
        if isinstance(data, dict):
            from fakescope_cli.evidence.generators.fooocus import from_fooocus_json

            return from_fooocus_json(data, location)
        found = from_infotext(comment, location, lenient=False)
        if found is not None:
            found.tool = "Fooocus"
            return found
        return Finding("Fooocus", "fooocus-json", location, parsed=False)
    if not comment.strip(" \0"):
        return None  # a blank UserComment, as cameras write it
    if comment.lstrip().startswith("{"):
        data = parse_json(comment)
        if isinstance(data, dict) and "sui_image_params" in data:
            from fakescope_cli.evidence.generators.swarmui import from_swarm_json

            return from_swarm_json(data, location)
        return comfy_in_comment(comment, data, location)
    from fakescope_cli.evidence.generators.a1111 import from_infotext

    return from_infotext(comment, location, lenient=False)


def comfy_in_comment(text: str, data: object, location: str) -> Finding | None:
    """ComfyUI's graphs in a UserComment (Civitai and ComfyUI save nodes): the API prompt bare, or
    wrapped as {"prompt": {...}, "workflow": {...}} (either may be a JSON string)."""
    from fakescope_cli.evidence.generators.comfyui import from_comfy

    if not isinstance(data, dict):
        return from_comfy(text, None, location) if '"class_type"' in text else None
    if "prompt" in data or "workflow" in data:
        prompt, workflow = data.get("prompt"), data.get("workflow")
        as_text = [v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict) else None
                   for v in (prompt, workflow)]
        return from_comfy(as_text[0], as_text[1], location)
    if any(isinstance(node, dict) and "class_type" in node for node in list(data.values())[:50]):
        return from_comfy(text, None, location)
    return None
