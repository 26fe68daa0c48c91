"""Invisible watermarks written by the Stable Diffusion reference pipelines (numpy only).

The pipelines embed with the `invisible-watermark` package, method "dwtDct" (imwatermark/maxDct.py,
version 0.2.0). The format, as read from that source and checked against it in the tests:

* the image is taken in OpenCV's BGR order and converted to YUV (U = 0.492 (B - Y) + offset);
  only U carries the mark: the default scales are [0, 36, 36], Y's scale is 0, and the channel
  loop stops before V;
* U, cropped to multiples of 4, gets a one-level 2-D Haar DWT; only the LL band is touched;
* LL is cut into 4x4 blocks taken in row-major order, and block k carries payload bit k mod n;
* despite the method's name no DCT is applied: in each block the largest-magnitude coefficient
  other than the top-left one is moved to |c| mod 36 = 9 (bit 0) or 27 (bit 1);
* decoding repeats the choice of coefficient, reads |c| mod 36 > 18 per block and, per payload
  bit, keeps the mean over its blocks times 255 > 127 (a majority, ties read as 1);
* byte payloads are unpacked most significant bit first (numpy.unpackbits).

Only the top-left (H//8*8) x (W//8*8) pixels reach a complete block, so nothing else is read.
Any resize, crop or rotation moves the block grid and erases the mark. Measured on real photos
marked by the package (tests): found in about 3 of 4 lossless PNGs (the embedding itself fails on
smooth, bright areas such as skies), in none after a JPEG re-encode at q90, q93 or q95, in 5 of 36 at
q96 and 11 of 36 at q100. So JPEGs whose quantisation tables put them at quality <= 93 are not decoded
at all (the decode is ~15 ms per megapixel, the largest per-file cost of a scan): nothing is lost.

Screening. Because block k carries bit k mod n all over the image, a quarter of the block rows, in
bands spread from top to bottom, already shows whether a payload is there: per payload and decoding
path, the blocks that carry a 1 must read 1 more often than those that carry a 0 (a two-proportion
z statistic; an unmarked image has no reason to tell them apart). Only an image where some z reaches
SCREEN_Z is read in full and decoded as before, so every reported mark, its bit errors and the
chance-match budget below are those of the full decoder; screening can only cost a miss. It is sized
so that it does not: the full majority decode needs a share f of good blocks with f * sqrt(blocks)
of about 8.6 (136 bits, 31 errors), where the quarter sample gives z = f * sqrt(blocks / 4) ~ 4.3,
above SCREEN_Z; measured on the tests' marked photos the smallest screening z of a mark the full
decoder finds is far above it, and on the pool's real images the largest z is below it (see
bench/results/watermark.txt).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope_cli.evidence.base import EvidenceItem

if TYPE_CHECKING:
    from fakescope_cli.media import Media

NEEDS_PIXELS = True
SOURCE = "watermark"

# JPEGs at or below this IJG quality never kept a mark in the measurements above (0 of 36 at q95).
MAX_LOSSY_QUALITY = 93

# The IJG (libjpeg) example tables, Annex K of ITU-T T.81; quality q scales them by S = 5000/q (q < 50)
# or 200 - 2q percent. Order does not matter here: only their sums are compared.
_IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
             14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
             18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_IJG_CHROMA = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
               24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32


def jpeg_quality_estimate(media: Media) -> float | None:
    """Highest IJG-equivalent quality over the file's luma/chroma tables; None if not a readable JPEG."""
    if media.format != "JPEG":
        return None
    try:
        tables = getattr(media.header, "quantization", None) or {}
    except Exception:  # a broken header: let the normal decode path report it
        return None
    best = None
    for index, reference in ((0, sum(_IJG_LUMA)), (1, sum(_IJG_CHROMA))):
        table = tables.get(index)
        if not table or len(table) != 64:
            continue
        scale = 100.0 * sum(table) / reference
        quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
        best = quality if best is None else max(best, quality)
    return best


# The encoder refuses images under 256*256 pixels (watermark.py), so no smaller image carries a mark.
MIN_PIXELS = 256 * 256

_SCALE = 36.0
_STRIP_ROWS = 512  # pixel rows per pass (a multiple of 8): bounds the temporaries on huge images

# OpenCV's 8-bit BGR->YUV is 14-bit fixed point with rounding (color_yuv: R2Y, G2Y, B2Y, B2UI);
# this integer form matches cv2.cvtColor on all 2**24 colours.
_R2Y, _G2Y, _B2Y, _B2U = 4899, 9617, 1868, 8061
# PyWavelets' Haar analysis filter tap; applying it per axis in the same order as pywt.dwt2
# (rows pairs first, then columns) gives bit-identical LL values, which matters at |c| mod 36 == 18.
_HAAR = 0.7071067811865476

# Ways an encoder may have fed the image, each a decoding hypothesis:
#   uint8     - 8-bit BGR, YUV offset 128: the package's own decoder; SD 1.x/2.x scripts embed so.
#   float     - float32 BGR in 0..255: OpenCV's float YUV has offset 0.5, not 128, so coefficients
#               are signed and the 8-bit decoder misreads many blocks; SDXL pipelines embed so.
#   float-rgb - the float path fed RGB as if BGR: diffusers' SDXL watermarker before PR #7013
#               (issue #6292, Feb 2024) and generative-models before PR #25 (July 2023).
VARIANTS: tuple[str, ...] = ("uint8", "float", "float-rgb")

# Chance-match budget per (payload, variant) test. Bits decoded from an unmarked image are not
# fair coins (smooth scenes read mostly 0), but their distance to these balanced payloads centres
# on n/2 with a spread no wider than a binomial's (measured on ~1450 images, see the tests), so
# the fair-coin tail sum(C(n, i), i <= k) / 2**n bounds the chance of <= k errors; k is the
# largest value within the budget: 31 of 136, 3 of 48, and 0 of 32 (see _allowed_errors).
# With five tests per image the chance of any false match stays under 1e-9.
FALSE_MATCH_BUDGET = 1e-10


def chance_of_match(n_bits: int, max_errors: int) -> float:
    """Probability that n random bits lie within max_errors of a fixed n-bit payload."""
    return sum(comb(n_bits, i) for i in range(max_errors + 1)) / 2.0**n_bits


def _allowed_errors(n_bits: int) -> int:
    k = 0
    while chance_of_match(n_bits, k + 1) <= FALSE_MATCH_BUDGET:
        k += 1
    # A 32-bit payload cannot meet the budget at all (an exact match is 2**-32 = 2.3e-10):
    # only an exact match counts for it.
    return k


@dataclass(frozen=True)
class Payload:
    name: str
    bits: np.ndarray  # uint8 0/1, in embedding order
    pipeline: str
    variants: tuple[str, ...]
    max_errors: int
    is_text: bool


def _text_bits(text: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(text.encode("ascii"), dtype=np.uint8))


# Stability AI's generative-models, sgm/inference/helpers.py ("A fixed 48-bit message that was
# choosen at random", 0xB3EC907BB19E), copied into diffusers'
# src/diffusers/pipelines/stable_diffusion_xl/watermark.py; embedded with set_watermark("bits", ...)
# in the order of bin(x)[2:], most significant bit first.
SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110


def _make_payloads() -> tuple[Payload, ...]:
    sdxl = np.array([int(c) for c in format(SDXL_MESSAGE, "048b")], dtype=np.uint8)
    specs = (
        # CompVis/stable-diffusion scripts/txt2img.py and img2img.py: wm = "StableDiffusionV1",
        # put_watermark() converts the 8-bit RGB sample to BGR and calls encode(img, "dwtDct").
        ("StableDiffusionV1", _text_bits("StableDiffusionV1"),
         "the Stable Diffusion 1.x reference scripts (CompVis/stable-diffusion)", ("uint8",), True),
        # Stability-AI/stablediffusion scripts/txt2img.py (and img2img, gradio/streamlit demos):
        # wm = "SDV2", the same put_watermark().
        ("SDV2", _text_bits("SDV2"),
         "the Stable Diffusion 2.x reference scripts (Stability-AI/stablediffusion)", ("uint8",), True),
        ("SDXL", sdxl,
         "the SDXL-family pipelines (Stability-AI/generative-models, diffusers StableDiffusionXL)",
         ("float", "float-rgb", "uint8"), False),
    )
    return tuple(
        Payload(name, bits, pipeline, variants, _allowed_errors(bits.size), is_text)
        for name, bits, pipeline, variants, is_text in specs
    )


PAYLOADS: tuple[Payload, ...] = _make_payloads()


def _block_maxima(ll: np.ndarray) -> np.ndarray:
    """Per 4x4 LL block, row-major: the largest |c| except the block's top-left coefficient.

    The encoder quantises the coefficient at argmax |c|, whose magnitude is simply this maximum.
    """
    rows, cols = ll.shape[0] // 4, ll.shape[1] // 4
    blocks = ll[: rows * 4, : cols * 4].reshape(rows, 4, cols, 4).swapaxes(1, 2).reshape(-1, 16)
    return np.abs(blocks[:, 1:]).max(axis=1)


_INV_2_14 = 1.0 / (1 << 14)


def _u_plane_uint8(rgb: np.ndarray) -> np.ndarray:
    """The U plane of cv2.cvtColor(BGR image, COLOR_BGR2YUV) for 8-bit input (integer-valued float32).

    The fixed-point sums stay below 2**24, where float32 holds every integer and scaling by 2**-14
    is exact, so floor() reproduces the >> 14 of the integer form exactly (checked on all 2**24
    colours) in about half the time, computed in place.
    """
    y = rgb[..., 0].astype(np.float32)
    y *= _R2Y
    y += rgb[..., 1].astype(np.float32) * _G2Y
    y += rgb[..., 2].astype(np.float32) * _B2Y
    y += 1 << 13
    y *= _INV_2_14
    np.floor(y, out=y)
    u = rgb[..., 2].astype(np.float32)
    u -= y
    u *= _B2U
    u += (128 << 14) + (1 << 13)
    u *= _INV_2_14
    np.floor(u, out=u)
    return np.clip(u, 0, 255, out=u)


def _haar_ll(plane: np.ndarray) -> np.ndarray:
    """LL band of a one-level 2-D Haar DWT (even-sized input), bit-identical to pywt.dwt2."""
    # The same float64 products and sums as H * x[0::2] + H * x[1::2], then the same across columns,
    # computed in place on half-size copies (half the time of converting the whole plane first).
    half = plane[0::2].astype(np.float64)
    half *= _HAAR
    lower = plane[1::2].astype(np.float64)
    lower *= _HAAR
    half += lower
    ll = half[:, 0::2] * _HAAR
    ll += half[:, 1::2] * _HAAR
    return ll


def _block_bits_uint8(rgb: np.ndarray) -> np.ndarray:
    ll = _haar_ll(_u_plane_uint8(rgb))
    return (_block_maxima(ll) % _SCALE) > _SCALE / 2


def _channel_box_sums(rgb: np.ndarray) -> np.ndarray:
    """Sums over each 2x2 pixel square, per channel (float32, half height and width)."""
    x = rgb.astype(np.int16)
    pair = x[0::2] + x[1::2]
    return (pair[:, 0::2] + pair[:, 1::2]).astype(np.float32)


# The float path's U = 0.492 (B - Y) + 0.5 with Y = 0.299 R + 0.587 G + 0.114 B is linear, so
# LL = 0.5 * (2x2 sum of U) is a weighted sum of the 2x2 channel sums plus 0.5 * 4 * 0.5.
_LL_R = -0.246 * 0.299
_LL_G = -0.246 * 0.587
_LL_B = 0.246 * (1.0 - 0.114)


def _block_bits_float(sums: np.ndarray, swap_rb: bool) -> np.ndarray:
    sr, sg, sb = sums[..., 0], sums[..., 1], sums[..., 2]
    if swap_rb:
        sr, sb = sb, sr
    ll = _LL_R * sr + _LL_G * sg + _LL_B * sb + 1.0
    return (_block_maxima(ll) % _SCALE) > _SCALE / 2


def _as_rgb_array(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError("expected an 8-bit RGB array of shape (height, width, 3)")
    return arr


def block_bits(rgb: np.ndarray, variants: tuple[str, ...] = ("uint8",)) -> dict[str, np.ndarray]:
    """Per-block bit reads (bool, blocks in row-major order) for each decoding variant."""
    arr = _as_rgb_array(rgb)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s): {sorted(unknown)}")
    height, width = arr.shape[0] // 8 * 8, arr.shape[1] // 8 * 8
    parts: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    # Strips of whole block rows keep the row-major block order when concatenated.
    for top in range(0, height, _STRIP_ROWS):
        strip = arr[top : min(top + _STRIP_ROWS, height), :width, :3]
        sums = None
        for variant in variants:
            if variant == "uint8":
                parts[variant].append(_block_bits_uint8(strip))
                continue
            if sums is None:
                sums = _channel_box_sums(strip)
            parts[variant].append(_block_bits_float(sums, swap_rb=variant == "float-rgb"))
    return {
        v: np.concatenate(p) if p else np.zeros(0, dtype=bool) for v, p in parts.items()
    }


def majority_bits(blocks: np.ndarray, n_bits: int) -> np.ndarray:
    """Payload bits from per-block reads: block k votes for bit k mod n_bits."""
    if n_bits < 1:
        raise ValueError("n_bits must be at least 1")
    slot = np.arange(blocks.size) % n_bits
    ones = np.bincount(slot, weights=blocks, minlength=n_bits)
    total = np.bincount(slot, minlength=n_bits)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ones / total
    # The package's rule, float for float; a bit with no block (mean NaN) reads 0 as there.
    return (mean * 255 > 127).astype(np.uint8)


# --- screening: a spread-out sample of block rows first ------------------------------------------

SCREEN_Z = 6.0  # over every unmarked pool image's (max 4.1), far under a readable mark's (min 14.5)
SCREEN_EVERY = 4  # one band of block rows in four is read (one in eight: marks' z fell to 10.2)
_SCREEN_BAND = 64  # pixel rows per band (8 block rows): long runs keep the numpy work vectorised
_SCREEN_MIN_BLOCKS = 8192  # below about 0.5 MP the whole image is cheap: read it all


def _screen_applies_to_size(height: int, width: int) -> bool:
    return (height // 8) * (width // 8) >= _SCREEN_MIN_BLOCKS


def _screen_applies(rgb: np.ndarray) -> bool:
    return _screen_applies_to_size(rgb.shape[0], rgb.shape[1])


def screen_rows(height: int) -> np.ndarray:
    """Pixel rows of the screening sample: every SCREEN_EVERY-th band of whole block rows."""
    usable = height // 8 * 8
    starts = np.arange(0, usable, _SCREEN_BAND * SCREEN_EVERY)
    rows = (starts[:, None] + np.arange(_SCREEN_BAND)[None, :]).ravel()
    return rows[rows < usable]


def _block_index(rows: np.ndarray, cols: int) -> np.ndarray:
    """Row-major index in the full image of every block in the given pixel rows (whole block rows)."""
    block_rows = rows[::8] // 8
    return (block_rows[:, None] * cols + np.arange(cols)[None, :]).ravel()


def sampled_block_bits(rgb: np.ndarray, rows: np.ndarray,
                       variants: tuple[str, ...] = VARIANTS) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Block reads of the given pixel rows (whole block rows, multiples of 8) and each block's index
    in the full image's row-major order, which says which payload bit it carries."""
    arr = _as_rgb_array(rgb)
    width = arr.shape[1] // 8 * 8
    reads = block_bits(np.ascontiguousarray(arr[rows, :width, :3]), variants)
    return reads, _block_index(rows, width // 8)


def payload_z(reads: np.ndarray, index: np.ndarray, payload_bits: np.ndarray) -> float:
    """How much more often blocks carrying a 1 read 1 than blocks carrying a 0, as a z statistic."""
    carries_one = payload_bits[index % payload_bits.size].astype(bool)
    n1, n0 = int(carries_one.sum()), int((~carries_one).sum())
    if n1 == 0 or n0 == 0:
        return 0.0
    ones1 = int(np.count_nonzero(reads & carries_one))
    ones0 = int(np.count_nonzero(reads & ~carries_one))
    pooled = (ones1 + ones0) / (n1 + n0)
    spread = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0)) ** 0.5
    return 0.0 if spread == 0.0 else (ones1 / n1 - ones0 / n0) / spread


def screen_z(rgb: np.ndarray) -> float:
    """The largest screening z over every payload and decoding path, on the sampled block rows."""
    reads, index = sampled_block_bits(rgb, screen_rows(rgb.shape[0]))
    return max(payload_z(reads[v], index, p.bits) for p in PAYLOADS for v in p.variants)


def screen_z_image(image: Any) -> float:
    """screen_z of an RGB Pillow image, converting only the sampled bands to arrays (converting the
    whole image costs about as much as the screen itself)."""
    width, height = image.size
    rows = screen_rows(height)
    starts = rows[::_SCREEN_BAND]
    bands = [np.asarray(image.crop((0, int(top), width, int(min(top + _SCREEN_BAND, height // 8 * 8)))))
             for top in starts]
    sample = np.ascontiguousarray(np.concatenate(bands)) if bands else np.zeros((0, width, 3), np.uint8)
    reads = block_bits(sample, VARIANTS)
    index = _block_index(rows, width // 8)
    return max(payload_z(reads[v], index, p.bits) for p in PAYLOADS for v in p.variants)


def decode_bits(rgb: np.ndarray, n_bits: int, variant: str = "uint8") -> np.ndarray:
    """Decode n_bits from an 8-bit RGB array (H, W, 3); returns uint8 0/1 in embedding order.

    With the default variant this reproduces the package's own dwtDct decoder bit for bit.
    """
    return majority_bits(block_bits(rgb, (variant,))[variant], n_bits)


def _item(payload: Payload, tried: list[tuple[int, str, np.ndarray]]) -> EvidenceItem:
    errors, variant, bits = min(tried, key=lambda t: t[0])  # first listed variant wins a tie
    packed = np.packbits(bits).tobytes()
    details: dict[str, object] = {
        "payload": payload.name,
        "pipeline": payload.pipeline,
        "method": "invisible-watermark dwtDct",
        "encoding": variant,
        # Every encoding path that also decodes within the limit (an 8-bit and a float embed can
        # both read cleanly), so "encoding" is the likeliest path, not a proven one.
        "matching_encodings": [v for e, v, _ in tried if e <= payload.max_errors],
        "bits": int(payload.bits.size),
        "bit_errors": errors,
        "max_bit_errors": payload.max_errors,
        "chance_match": chance_of_match(int(payload.bits.size), payload.max_errors),
        "decoded_hex": packed.hex(),
    }
    if payload.is_text:
        details["decoded_text"] = packed.decode("ascii", "backslashreplace")
    exact = "exact match" if errors == 0 else f"{errors} of {payload.bits.size} bits differ"
    summary = (
        f"Invisible watermark '{payload.name}' decoded ({exact}): written by {payload.pipeline}."
    )
    return EvidenceItem(source=SOURCE, signal="ai", summary=summary, details=details, strong=True)


def read(media: Media) -> list[EvidenceItem]:
    if not media.allow_pixels:
        return []
    width, height = media.width, media.height
    if not width or not height or width * height < MIN_PIXELS:
        return []
    quality = jpeg_quality_estimate(media)
    if quality is not None and quality <= MAX_LOSSY_QUALITY:
        return []
    image = media.rgb()
    if image.mode not in ("RGB", "RGBA"):
        return []
    if _screen_applies_to_size(image.size[1], image.size[0]) and screen_z_image(image) < SCREEN_Z:
        return []
    rgb = np.asarray(image)
    reads = block_bits(rgb, VARIANTS)
    n_blocks = reads["uint8"].size
    items: list[EvidenceItem] = []
    for payload in PAYLOADS:
        n = int(payload.bits.size)
        if n_blocks < n:
            continue
        tried = []
        for variant in payload.variants:
            bits = majority_bits(reads[variant], n)
            tried.append((int(np.count_nonzero(bits != payload.bits)), variant, bits))
        if min(t[0] for t in tried) <= payload.max_errors:
            items.append(_item(payload, tried))
    return items
