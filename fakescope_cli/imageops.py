"""Pixel conversions shared by readers and detectors (numpy, no torch)."""

from __future__ import annotations

from typing import Any


def to_rgb8(img: Any) -> Any:
    """Return an 8-bit RGB Pillow image for any mode Pillow decodes.

    16-bit greyscale ("I;16", "I") is scaled down rather than clipped, CMYK goes through
    Pillow's conversion, and transparency is flattened onto white.
    """
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")
