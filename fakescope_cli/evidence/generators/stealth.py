"""'Stealth' metadata hidden in the alpha channel or the RGB low bits (sd-webui-stealth-pnginfo)."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fakescope_cli.errors import InputError
from fakescope_cli.evidence.generators.a1111 import from_infotext
from fakescope_cli.evidence.generators.finding import Finding, parse_json
from fakescope_cli.evidence.generators.texts import from_texts
from fakescope_cli.media import Media

MAX_STEALTH_BYTES = 1 << 20  # hidden payload, compressed
MAX_STEALTH_TEXT = 4 << 20  # hidden payload after gunzip
_STEALTH_SIGS = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}



def from_stealth(media: Media) -> Finding | None:
    """Metadata hidden in the least significant bits, read column by column (x outer, y inner):
    a 15-byte signature, a 32-bit big-endian payload length in bits, then the payload (gzip when
    the signature ends in 'comp'). Alpha mode carries one bit per pixel; RGB mode three (R, G, B).
    Only the leading columns the payload needs are converted to arrays.
    """
    try:
        img = media.pixels()
    except InputError:
        return None
    mode = img.mode
    if mode not in ("RGBA", "LA", "RGB"):
        return None
    width, height = img.size
    if width < 1 or height < 1:
        return None
    for kind in ("alpha", "rgb") if "A" in mode else ("rgb",):
        if kind == "rgb" and mode == "LA":
            continue
        payload = _stealth_payload(img, kind, width, height)
        if payload is not None:
            return interpret_stealth(*payload)
    return None


def _stealth_bits(img: Any, kind: str, height: int, width: int, nbits: int) -> Any:
    import numpy as np

    per_pixel = 1 if kind == "alpha" else 3
    pixels = -(-nbits // per_pixel)
    columns = min(width, -(-pixels // height))
    strip = img.crop((0, 0, columns, height))
    arr = np.asarray(strip)
    if kind == "alpha":
        plane = arr[:, :, -1] if arr.ndim == 3 else arr
        bits = plane.T.reshape(-1) & 1
    else:
        bits = arr[:, :, :3].transpose(1, 0, 2).reshape(-1) & 1
    return bits[:nbits]


def _stealth_payload(img: Any, kind: str, width: int, height: int) -> tuple[str, str, bool] | None:
    import numpy as np

    per_pixel = 1 if kind == "alpha" else 3
    capacity = width * height * per_pixel
    header_bits = 15 * 8 + 32
    if capacity < header_bits:
        return None
    head = np.packbits(_stealth_bits(img, kind, height, width, header_bits)).tobytes()
    sig = _STEALTH_SIGS.get(head[:15])
    if sig is None or sig[0] != kind:
        return None
    compressed = sig[1]
    length = int.from_bytes(head[15:19], "big")
    if length <= 0 or length > MAX_STEALTH_BYTES * 8 or header_bits + length > capacity:
        return None
    bits = _stealth_bits(img, kind, height, width, header_bits + length)[header_bits:]
    blob = np.packbits(bits).tobytes()
    if compressed:
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper
            raw = inflater.decompress(blob, MAX_STEALTH_TEXT)
        except zlib.error:
            return None
        text = raw.decode("utf-8", "replace")
    else:
        text = blob.decode("utf-8", "replace")
    return text, kind, compressed


def interpret_stealth(text: str, kind: str, compressed: bool) -> Finding | None:
    where = f"stealth metadata in the {'alpha channel' if kind == 'alpha' else 'RGB low bits'}"
    found: Finding | None = None
    if text.lstrip().startswith("{"):
        data = parse_json(text)
        if isinstance(data, dict):
            texts = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in list(data.items())[:64]}
            found = from_texts(texts, where)
    else:
        found = from_infotext(text, where, lenient=False)
    if found is not None:
        found.location = where
        found.fields["stealth"] = {"channel": kind, "compressed": compressed}
    return found
