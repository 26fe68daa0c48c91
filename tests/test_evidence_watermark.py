"""Stable Diffusion invisible-watermark reader, checked against the invisible-watermark package.

The package (test-only; it imports cv2 and pywt) embeds each payload into real photographs the way
the reference pipelines call it; fakescope's numpy decoder must find what the package's own decoder
finds, bit for bit, and must find nothing in real photographs and camera files.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope_cli.errors import InputError
from fakescope_cli.evidence import watermark as wm
from fakescope_cli.media import Media
from tests.conftest import DATA, FIXTURES

cv2 = pytest.importorskip("cv2")
imwatermark = pytest.importorskip("imwatermark")
pywt = pytest.importorskip("pywt")

PAYLOAD = {p.name: p for p in wm.PAYLOADS}
EXIF = FIXTURES / "exif-samples"

# Real photographs at their stored size (camera JPEGs and web/benchmark photos, JPEG and PNG).
# Smooth, bright skies defeat the embedding itself (see test_detection_rates), so the set mixes
# textured and smooth scenes rather than keeping only the ones that work.
PHOTOS = (
    EXIF / "jpg/gps/DSCN0010.jpg",
    EXIF / "jpg/exif-org/nikon-e950.jpg",
    EXIF / "jpg/exif-org/ricoh-rdc5300.jpg",
    DATA / "real/imagenet_samples/n02109525_Saint_Bernard.jpg",
    DATA / "real/imagenet_samples/n03457902_greenhouse.jpg",
    DATA / "real/imagenet_samples/n07693725_bagel.jpg",
    DATA / "real/imagenet_samples/n01797886_ruffed_grouse.jpg",
    DATA / "real/ml72_playground/animals_2.jpg",
    DATA / "real/selfexsr_urban100/img_004_SRF_2_HR.png",
)
# A 1024x1024 crop of a 8 MP phone photo: SDXL's native size, for the timing test.
BIG_PHOTO = EXIF / "jpg/hdr/iphone_hdr_NO.jpg"

# How each pipeline hands the image to WatermarkEncoder.encode(..., "dwtDct"):
#   sd      CompVis / Stability SD 1.x-2.x scripts: 8-bit RGB -> cv2 BGR -> encode -> [..., ::-1]
#   float   generative-models / diffusers >= PR #7013: float32 0..255, RGB[..., ::-1], rounded after
#   float-rgb  diffusers before PR #7013: the same float path without the channel flip
KINDS = (
    ("StableDiffusionV1", "sd"),
    ("SDV2", "sd"),
    ("SDXL", "float"),
    ("SDXL", "float-rgb"),
    ("SDXL", "sd"),
)


def _encoder(payload: wm.Payload):
    enc = imwatermark.WatermarkEncoder()
    if payload.is_text:
        enc.set_watermark("bytes", payload.name.encode("ascii"))
    else:
        enc.set_watermark("bits", [int(b) for b in payload.bits])
    return enc


def embed(rgb: np.ndarray, name: str, kind: str) -> np.ndarray:
    enc = _encoder(PAYLOAD[name])
    if kind == "sd":
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        return np.ascontiguousarray(enc.encode(bgr, "dwtDct")[:, :, ::-1])
    x = rgb.astype(np.float32)
    if kind == "float":
        x = x[:, :, ::-1]
    out = enc.encode(np.ascontiguousarray(x), "dwtDct")
    if kind == "float":
        out = out[:, :, ::-1]
    # diffusers clamps to [-1, 1] and its numpy_to_pil rounds (x * 255).round()
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def package_bits(rgb: np.ndarray, n_bits: int) -> np.ndarray:
    dec = imwatermark.WatermarkDecoder("bits", n_bits)
    bits = dec.decode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")
    return np.asarray(bits, dtype=np.uint8)


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def save_png(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).save(path, format="PNG")
    return path


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def items_of(path: Path, **kw) -> list:
    items = wm.read(Media.open(path, **kw))
    for item in items:
        json.dumps(item.to_dict())
    return items


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> dict[tuple[str, str, str], tuple[np.ndarray, Path]]:
    """Every photo with every payload embedded the pipelines' ways, saved losslessly as PNG."""
    out = tmp_path_factory.mktemp("marked")
    table = {}
    for photo in PHOTOS:
        rgb = load_rgb(photo)
        assert rgb.shape[0] * rgb.shape[1] >= wm.MIN_PIXELS
        for name, kind in KINDS:
            arr = embed(rgb, name, kind)
            table[(photo.name, name, kind)] = (arr, save_png(arr, out / f"{photo.stem}-{name}-{kind}.png"))
    return table


@pytest.fixture(scope="module")
def package_errors(marked) -> dict[tuple[str, str, str], int]:
    """Bit errors of the package's own decoder on each marked image (its payload's length)."""
    table = {}
    for key, (arr, _) in marked.items():
        payload = PAYLOAD[key[1]]
        table[key] = int(np.count_nonzero(package_bits(arr, payload.bits.size) != payload.bits))
    return table


def errors_of(rgb: np.ndarray, payload: wm.Payload, variant: str) -> int:
    return int(np.count_nonzero(wm.decode_bits(rgb, payload.bits.size, variant) != payload.bits))


# --- the format: exact agreement with OpenCV, PyWavelets and the package's own decoder ---------


def test_payload_bits_match_the_package_encoder():
    for payload in wm.PAYLOADS:
        assert list(_encoder(payload)._watermarks) == [int(b) for b in payload.bits]
    assert [p.bits.size for p in wm.PAYLOADS] == [136, 32, 48]
    assert np.packbits(PAYLOAD["SDXL"].bits).tobytes().hex() == "b3ec907bb19e"


def test_u_plane_matches_opencv():
    rng = np.random.default_rng(7)
    colours = rng.integers(0, 256, size=(512, 1024, 3), dtype=np.uint8)
    colours[0, :8] = [[0, 0, 0], [255, 255, 255], [0, 0, 255], [255, 255, 0],
                      [255, 0, 0], [0, 255, 0], [0, 255, 255], [255, 0, 255]]
    expected = cv2.cvtColor(cv2.cvtColor(colours, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV)[..., 1]
    assert np.array_equal(wm._u_plane_uint8(colours), expected)


def test_haar_ll_is_bit_identical_to_pywavelets():
    rng = np.random.default_rng(8)
    plane = rng.integers(0, 256, size=(96, 160)).astype(np.uint8)
    ll, _ = pywt.dwt2(plane, "haar")
    assert np.array_equal(wm._haar_ll(plane), ll)


def test_decode_bits_agrees_with_package_bit_for_bit(marked):
    rng = np.random.default_rng(9)
    arrays = [arr for (_, name, kind), (arr, _) in marked.items() if kind == "sd"]
    arrays += [load_rgb(p) for p in PHOTOS[:3]]  # unmarked
    arrays.append(rng.integers(0, 256, size=(389, 517, 3), dtype=np.uint8))  # odd size, noise
    arrays.append(np.ascontiguousarray(arrays[0][3:300, 5:299]))  # odd crop of a marked image
    for arr in arrays:
        for n_bits in (32, 48, 136):
            assert np.array_equal(wm.decode_bits(arr, n_bits), package_bits(arr, n_bits))


def test_decode_bits_validates_input():
    with pytest.raises(ValueError):
        wm.decode_bits(np.zeros((300, 300, 3), dtype=np.float32), 48)
    with pytest.raises(ValueError):
        wm.decode_bits(np.zeros((300, 300), dtype=np.uint8), 48)
    with pytest.raises(ValueError):
        wm.decode_bits(np.zeros((300, 300, 3), dtype=np.uint8), 48, variant="dct")
    # too small for one block: every bit reads 0, as the package's NaN mean does
    assert not wm.decode_bits(np.full((7, 7, 3), 200, dtype=np.uint8), 48).any()


def test_thresholds_keep_chance_matches_astronomically_unlikely():
    limits = {p.name: p.max_errors for p in wm.PAYLOADS}
    assert limits == {"StableDiffusionV1": 31, "SDV2": 0, "SDXL": 3}
    for p in wm.PAYLOADS:
        assert wm.chance_of_match(p.bits.size, p.max_errors) < 3e-10
        if p.max_errors:
            assert wm.chance_of_match(p.bits.size, p.max_errors + 1) > wm.FALSE_MATCH_BUDGET


# --- the reader on watermarked PNGs --------------------------------------------------------------


def test_reader_reports_what_the_package_decodes(marked, package_errors):
    """Wherever the package's decoder recovers a payload, the reader reports exactly that payload."""
    for (photo, name, kind), (_, path) in marked.items():
        payload = PAYLOAD[name]
        pkg_errors = package_errors[(photo, name, kind)]
        items = items_of(path)
        assert [i.details["payload"] for i in items] in ([], [name]), (photo, name, kind)
        if pkg_errors <= payload.max_errors:
            assert items, (photo, name, kind, pkg_errors)
        for item in items:
            assert item.signal == "ai" and item.strong and item.source == "watermark"
            assert name in item.summary and item.details["bits"] == payload.bits.size
            assert item.details["bit_errors"] <= payload.max_errors
            if kind == "sd":
                assert item.details["bit_errors"] == pkg_errors


def test_reader_names_the_encoding_path(marked):
    for (photo, name, kind), (_, path) in marked.items():
        for item in items_of(path):
            variant = "uint8" if kind == "sd" else kind
            assert variant in item.details["matching_encodings"], (photo, name, kind)
            if kind == "float-rgb":  # the swapped path never reads cleanly any other way
                assert item.details["matching_encodings"] == ["float-rgb"], photo


def test_detection_rates(marked, capsys):
    """Measured on lossless PNGs; the method itself fails on smooth scenes, so not every photo."""
    found: dict[tuple[str, str], int] = {}
    for (_, name, kind), (_, path) in marked.items():
        found[(name, kind)] = found.get((name, kind), 0) + bool(items_of(path))
    with capsys.disabled():
        print(f"\nwatermark found in lossless PNGs (of {len(PHOTOS)} photos): {found}")
    # Measured: 7 of 9 for each payload and path, 6 for SDXL float-rgb (34 of 45).
    for key, count in found.items():
        assert count >= 5, key
    assert sum(found.values()) >= 30


def test_float_decoding_beats_the_package_on_sdxl_outputs(marked, package_errors):
    """The SDXL pipelines embed on float images; the package's 8-bit decoder misreads many of them."""
    sdxl = PAYLOAD["SDXL"]
    ours = package = 0
    for key, (arr, _) in marked.items():
        if key[1] == "SDXL" and key[2] in ("float", "float-rgb"):
            ours += errors_of(arr, sdxl, key[2]) <= sdxl.max_errors
            package += package_errors[key] <= sdxl.max_errors
    assert ours > package  # measured: 13 against 3 of 18


@pytest.mark.slow
def test_jpeg_reencoding(marked, capsys):
    """JPEG erodes the mark: report what survives, and never let a re-encode name a wrong payload."""
    survived = {95: 0, 100: 0}
    total = 0
    for (photo, name, kind), (arr, _) in marked.items():
        if kind == "sd" and name == "SDXL":
            continue
        total += 1
        for quality in survived:
            rgb = jpeg_roundtrip(arr, quality)
            for payload in wm.PAYLOADS:
                hits = [errors_of(rgb, payload, v) <= payload.max_errors for v in payload.variants]
                if payload.name != name:
                    assert not any(hits), (photo, name, kind, quality, payload.name)
            target = PAYLOAD[name]
            survived[quality] += any(
                errors_of(rgb, target, v) <= target.max_errors for v in target.variants
            )
    with capsys.disabled():
        print(f"\nwatermark survives JPEG re-encode (of {total}): {survived}")
    # Measured: q95 0, q100 11 of 36.
    assert survived[100] >= survived[95]
    assert survived[100] >= 8


def test_jpeg_quality_estimate_matches_the_encoder(tmp_path):
    rgb = load_rgb(PHOTOS[0])[:256, :256]
    for quality in (40, 60, 85, 93, 96, 100):
        path = tmp_path / f"q{quality}.jpg"
        Image.fromarray(rgb).save(path, quality=quality)
        assert abs(wm.jpeg_quality_estimate(Media.open(path)) - quality) <= 0.6, quality
    assert wm.jpeg_quality_estimate(Media.open(save_png(rgb, tmp_path / "x.png"))) is None


def test_lossy_jpegs_skip_the_decode_but_high_quality_ones_are_read(marked, tmp_path, monkeypatch):
    """q <= 93 never kept a mark (measured), so the 15 ms/MP decode is skipped; q100 files still get it."""
    found_q100 = 0
    for (photo, name, kind), (arr, _) in marked.items():
        if kind == "sd" and name == "SDXL":
            continue
        path = tmp_path / f"{Path(photo).stem}-{name}-{kind}.jpg"
        Image.fromarray(arr).save(path, quality=100)
        found_q100 += any(item.details["payload"] == name for item in items_of(path))
    assert found_q100 >= 8  # as many as the q100 round-trip above: the gate lets these through
    arr, _ = marked[(PHOTOS[1].name, "SDV2", "sd")]
    lossy = tmp_path / "lossy.jpg"
    Image.fromarray(arr).save(lossy, quality=93)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded a q93 JPEG")

    monkeypatch.setattr(wm, "block_bits", must_not_decode)
    assert items_of(lossy) == []


def test_real_sdxl_output_from_the_wild():
    """An SDXL + IP-Adapter result published as JPEG (Kolors repo), centre-cropped to 256x256.

    The crop kept the block grid aligned (offset 384 px, 32 of 128 block columns: 128 = 32 mod 48)
    and the mark was written by diffusers before PR #7013, i.e. on RGB taken as BGR.
    """
    items = items_of(DATA / "fake/kolors/ipadapter__asset__2_sdxl_ip_result.png")
    assert len(items) == 1
    details = items[0].details
    assert details["payload"] == "SDXL" and details["encoding"] == "float-rgb"
    assert details["bit_errors"] <= 3


# --- screening: a quarter of the block rows first ---------------------------------------------------

# Real photographs of 0.5 MP and more, where read() screens before decoding (cut to keep the test short).
LARGE_PHOTOS = (
    (BIG_PHOTO, (slice(0, 1024), slice(0, 1024))),
    (EXIF / "jpg/mobile/HMD_Nokia_8.3_5G.jpg", (slice(600, 1800), slice(400, 2000))),
    (EXIF / "jpg/hdr/canon_hdr_NO.jpg", (slice(0, 768), slice(0, 1024))),
)


def full_read(rgb: np.ndarray) -> list[tuple[str, int]]:
    """What read() reported before screening: every payload decoded from every block."""
    reads = wm.block_bits(rgb, wm.VARIANTS)
    found = []
    for p in wm.PAYLOADS:
        errors = min(int(np.count_nonzero(wm.majority_bits(reads[v], p.bits.size) != p.bits)) for v in p.variants)
        if errors <= p.max_errors:
            found.append((p.name, errors))
    return found


@pytest.fixture(scope="module")
def marked_large(tmp_path_factory) -> dict[tuple[str, str, str], tuple[np.ndarray, Path]]:
    out = tmp_path_factory.mktemp("marked-large")
    table = {}
    for photo, cut in LARGE_PHOTOS:
        rgb = np.ascontiguousarray(load_rgb(photo)[cut])
        assert wm._screen_applies(rgb)
        for name, kind in KINDS:
            arr = embed(rgb, name, kind)
            table[(photo.name, name, kind)] = (arr, save_png(arr, out / f"{photo.stem}-{name}-{kind}.png"))
    return table


@pytest.mark.slow
def test_screening_reports_exactly_what_the_full_decode_finds(marked, marked_large, tmp_path):
    """Lossless and q100 JPEG copies: read() (screened) and a decode of every block agree, errors included."""
    compared = found = 0
    for (photo, name, kind), (arr, path) in [*marked.items(), *marked_large.items()]:
        copies = [(arr, path)]
        if (photo, name, kind) in marked_large:
            jpeg = tmp_path / f"{path.stem}.jpg"
            Image.fromarray(arr).save(jpeg, quality=100)
            copies.append((load_rgb(jpeg), jpeg))
        for rgb, file in copies:
            expected = full_read(rgb)
            got = [(i.details["payload"], i.details["bit_errors"]) for i in items_of(file)]
            assert got == expected, (photo, name, kind, file.suffix)
            compared += 1
            found += bool(expected)
    assert compared >= 60 and found >= 40


@pytest.mark.slow
def test_screening_z_of_marks_and_of_real_photos(marked, marked_large, capsys):
    """Every mark the full decoder reads scores far above SCREEN_Z; unmarked photos stay below it."""
    marks = [wm.screen_z(arr) for arr, _ in [*marked.values(), *marked_large.values()] if full_read(arr)]
    unmarked = [wm.screen_z(np.asarray(Media.open(p).rgb())) for p in _real_photos()]
    with capsys.disabled():
        print(f"\nscreening z: marks read in full min {min(marks):.1f} (of {len(marks)}); "
              f"unmarked real photos max {max(unmarked):.1f} (of {len(unmarked)}); threshold {wm.SCREEN_Z}")
    # Measured: marks >= 14.5; all 1727 pool images big enough, apart from the genuine SDXL marks, <= 4.2.
    assert min(marks) >= 2 * wm.SCREEN_Z
    assert max(unmarked) < wm.SCREEN_Z


def test_screening_reads_a_quarter_of_an_unmarked_image(tmp_path, monkeypatch):
    photo, cut = LARGE_PHOTOS[1]
    rgb = np.ascontiguousarray(load_rgb(photo)[cut])
    path = save_png(rgb, tmp_path / "unmarked.png")
    rows_read = []
    real_block_bits = wm.block_bits

    def counting(arr, variants=("uint8",)):
        rows_read.append(arr.shape[0])
        return real_block_bits(arr, variants)

    monkeypatch.setattr(wm, "block_bits", counting)
    assert items_of(path) == []
    assert 0 < sum(rows_read) <= 0.3 * rgb.shape[0]


# --- guards ---------------------------------------------------------------------------------------


def test_respects_no_pixels(marked):
    _, path = marked[(PHOTOS[1].name, "SDV2", "sd")]
    assert items_of(path)  # found when pixels are allowed
    assert items_of(path, allow_pixels=False) == []


def test_small_images_are_skipped_without_decoding(tmp_path):
    rgb = load_rgb(PHOTOS[1])  # 800 x 600
    # Keep whole rows so the block grid and numbering survive: 800 x 81 = 64800 < 256 * 256.
    small = np.ascontiguousarray(embed(rgb, "SDXL", "sd")[:81])
    assert errors_of(small, PAYLOAD["SDXL"], "uint8") <= 3  # the mark is still readable
    media = Media.open(save_png(small, tmp_path / "small.png"))
    assert wm.read(media) == []
    assert "_decoded" not in media.__dict__  # the pixels were never decoded


def test_corrupt_pixels_raise_input_error(marked, tmp_path):
    _, path = marked[(PHOTOS[1].name, "SDV2", "sd")]
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError):
        wm.read(Media.open(cut))


# --- no false positives ---------------------------------------------------------------------------


def _real_photos() -> list[Path]:
    """Every 4th real photograph of data/real big enough to carry a mark (about 210)."""
    found = []
    for p in sorted((DATA / "real").rglob("*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            with Image.open(p) as im:
                if im.size[0] * im.size[1] >= wm.MIN_PIXELS:
                    found.append(p)
    return found[::4]


@pytest.mark.slow
def test_no_payload_in_real_photos():
    closest = {p.name: p.bits.size for p in wm.PAYLOADS}
    photos = _real_photos()
    assert len(photos) >= 200
    for path in photos:
        media = Media.open(path)
        assert wm.read(media) == [], path
        reads = wm.block_bits(np.asarray(media.rgb()), wm.VARIANTS)
        for p in wm.PAYLOADS:
            for v in p.variants:
                errors = int(np.count_nonzero(wm.majority_bits(reads[v], p.bits.size) != p.bits))
                closest[p.name] = min(closest[p.name], errors)
    # Far from the limits (31, 0, 3), not just over them. Measured on these photos: 56 of 136,
    # 11 of 32, 16 of 48; on all 1449 images of data/ (real and fake) and exif-samples that are
    # big enough, apart from the one genuine SDXL mark: 50, 9, 11.
    assert closest["StableDiffusionV1"] > 40
    assert closest["SDV2"] > 4
    assert closest["SDXL"] > 7


@pytest.mark.slow
def test_no_payload_in_camera_files():
    """Every JPEG, TIFF and HEIC/HEIF under fixtures/exif-samples that decodes."""
    exts = {".jpg", ".jpeg", ".tif", ".tiff", ".heic", ".heif"}
    decoded = 0
    for path in sorted(p for p in EXIF.rglob("*") if p.is_file() and p.suffix.lower() in exts):
        media = Media.open(path)
        try:
            items = wm.read(media)
        except InputError:
            continue  # the corrupt-file fixtures: nothing to decode
        assert items == [], path
        decoded += (media.width or 0) * (media.height or 0) >= wm.MIN_PIXELS
    assert decoded >= 60  # measured: 72 of the 101 files are at least 256*256 pixels


# --- cost and import weight -----------------------------------------------------------------------


@pytest.mark.slow
def test_timing_per_megapixel(tmp_path, capsys):
    rgb = load_rgb(BIG_PHOTO)[:1024, :1024]
    arr = embed(np.ascontiguousarray(rgb), "SDXL", "float")
    path = save_png(arr, tmp_path / "sdxl-1mp.png")
    times = []
    for _ in range(7):
        start = time.perf_counter()
        reads = wm.block_bits(arr, wm.VARIANTS)
        for p in wm.PAYLOADS:
            for v in p.variants:
                wm.majority_bits(reads[v], p.bits.size)
        times.append(time.perf_counter() - start)
    media = Media.open(path)
    start = time.perf_counter()
    items = wm.read(media)
    full = time.perf_counter() - start
    decode_ms = min(times) * 1000
    with capsys.disabled():
        print(f"\nwatermark decode, 1 MP, all payloads and variants: {decode_ms:.1f} ms "
              f"(median {sorted(times)[3] * 1000:.1f} ms); read() incl. PNG decode {full * 1000:.1f} ms")
    assert [i.details["payload"] for i in items] == ["SDXL"]
    # The decode time is printed, not asserted (a loaded machine is no test): bench/ holds the target.


@pytest.mark.slow
def test_import_pulls_no_heavy_module():
    probe = (
        "import json, sys\n"
        "import fakescope_cli.evidence.watermark\n"
        "print(json.dumps(sorted(m for m in ('torch', 'cv2', 'pywt', 'imwatermark', 'scipy')"
        " if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
