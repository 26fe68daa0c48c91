"""Our IFD walker (generators/tiff_ifd.py): both byte orders, every field the exif reader reports
checked against Pillow's own EXIF reader on the real camera files, and hostile IFDs (loops,
offsets and counts past the end, unknown types) that end with a warning, never an exception."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

from fakescope_cli.evidence import exif
from fakescope_cli.evidence.generators.tiff_ifd import MAX_ENTRIES, read_ifds, tiff_fields
from fakescope_cli.media import Media
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "exif-samples"
Rational = TiffImagePlugin.IFDRational


def pillow_exif(order: str) -> Image.Exif:
    """Camera-like EXIF written by Pillow (an independent writer) in the given byte order."""
    e = Image.Exif()
    e.endian = order
    e[0x010F] = "NIKON CORPORATION"
    e[0x0110] = "NIKON D750"
    e[0x0131] = "Adobe Lightroom 6.0"
    ifd = e.get_ifd(0x8769)
    ifd[0x829A] = Rational(1, 250)
    ifd[0x829D] = Rational(28, 10)
    ifd[0x8827] = 1600
    ifd[0x920A] = Rational(850, 10)
    ifd[0x9003] = "2019:07:14 18:02:11"
    ifd[0xA433] = "Nikon"
    ifd[0xA434] = "85mm f/1.8G"
    gps = e.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (Rational(43, 1), Rational(28, 1), Rational(1407, 500))
    gps[3] = "E"
    gps[4] = (Rational(11, 1), Rational(53, 1), Rational(0, 1))
    return e


def jpeg_with(exif_bytes: bytes) -> Media:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (40, 50, 60)).save(buf, "JPEG", exif=exif_bytes)
    data = buf.getvalue()
    return Media(path="<memory>", data=data, size=len(data), mtime_ns=0)


@pytest.mark.parametrize("order", ["<", ">"])
def test_both_byte_orders_give_the_same_details(order: str) -> None:
    blob = pillow_exif(order).tobytes()
    assert blob[6:8] == (b"II" if order == "<" else b"MM")
    ifds = read_ifds(blob)
    assert ifds.order == order and ifds.warnings == []
    assert ifds.text(ifds.ifd0[0x0110]) == "NIKON D750"
    assert ifds.number(ifds.exif[0x829D]) == 2.8
    (item,) = exif.read(jpeg_with(blob))
    assert item.signal == "camera"
    assert item.details == {
        "make": "NIKON CORPORATION",
        "model": "NIKON D750",
        "lens": "Nikon 85mm f/1.8G",
        "exposure_time": "1/250",
        "f_number": 2.8,
        "iso": 1600,
        "focal_length_mm": 85.0,
        "datetime_original": "2019:07:14 18:02:11",
        "gps": True,
        "software": "Adobe Lightroom 6.0",
        "software_kind": "editor",
    }
    fields, fields_order = tiff_fields(blob)
    assert fields_order == order and fields["Make"] == b"NIKON CORPORATION\0"


def test_signed_and_zero_denominator_rationals() -> None:
    e = Image.Exif()
    ifd = e.get_ifd(0x8769)
    ifd[0x829A] = Rational(1, 0)  # a zero denominator is no exposure time, not a crash
    ifd[0x829D] = Rational(-4, 1)  # negative: no f-number
    ifd[0x920A] = Rational(24, 1)
    e[0x0110] = "Cam"
    (item,) = exif.read(jpeg_with(e.tobytes()))
    assert "exposure_time" not in item.details and "f_number" not in item.details
    assert item.details["focal_length_mm"] == 24.0


def _independent(path: Path) -> dict[str, Any] | None:
    """What the exif reader should report for `path`, from Pillow's EXIF reader; None when Pillow
    finds no camera Make/Model. Text is compared only where it is plain ASCII (Pillow decodes
    EXIF text as Latin-1, the exif reader as UTF-8)."""
    try:
        with Image.open(path) as im:
            e = im.getexif()
            sub, gps = e.get_ifd(0x8769), e.get_ifd(0x8825)
    except Exception:
        return None
    if not (e.get(0x010F) or e.get(0x0110)):
        return None

    def text(value: Any) -> str | None:
        if not isinstance(value, str) or not value.isascii():
            return None
        return " ".join(value.split("\0", 1)[0].split()) or None

    def number(value: Any) -> float | None:
        value = value[0] if isinstance(value, tuple) and value else value
        try:
            number = float(value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return round(number, 6) if number == number and number >= 0 else None

    seconds = number(sub.get(0x829A))
    exposure = None if not seconds else f"1/{round(1 / seconds)}" if seconds < 1 else f"{seconds:g}"
    return {
        "make": text(e.get(0x010F)),
        "model": text(e.get(0x0110)),
        "software": text(e.get(0x0131)),
        "lens_model": text(sub.get(0xA434)),
        "exposure_time": exposure,
        "f_number": number(sub.get(0x829D)),
        "iso": number(sub.get(0x8827)),
        "focal_length_mm": number(sub.get(0x920A)),
        "datetime_original": text(sub.get(0x9003)),
        "gps": 2 in gps and 4 in gps,
    }


CAMERA_SAMPLES = sorted(
    p for p in SAMPLES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff", ".heic")
)


def test_every_camera_sample_matches_pillows_reading() -> None:
    compared = 0
    for path in CAMERA_SAMPLES:
        want = _independent(path)
        if want is None:
            continue
        items = [i for i in exif.read(Media.open(path)) if i.signal == "camera"]
        assert len(items) == 1, path
        got = items[0].details
        for key, value in want.items():
            if key == "lens_model":
                assert value is None or got["lens"].endswith(value), (path, key, got.get("lens"), value)
            elif value is not None or key in ("exposure_time", "f_number", "iso", "focal_length_mm", "gps"):
                assert got.get(key, False if key == "gps" else None) == value, (path, key, got.get(key), value)
        compared += 1
    assert compared >= 55  # the JPEG, TIFF and HEIC samples that name a camera


@pytest.mark.parametrize(("rel", "want"), [
    # (exposure, f-number, focal length, ISO) as `exiftool -j` prints them for these files
    ("jpg/Canon_40D.jpg", ("1/160", 7.1, 135.0, 100)),
    ("jpg/gps/DSCN0010.jpg", ("1/75", 5.9, 24.0, 64)),
    ("jpg/Nikon_D70.jpg", ("1/200", 9.0, 100.0, 200)),
    ("heic/mobile/iphone_13_pro_max.HEIC", ("1/60", 1.5, 5.7, 250)),
])
def test_rational_formatting_on_real_cameras(rel: str, want: tuple[Any, ...]) -> None:
    d = exif.read(Media.open(SAMPLES / rel))[0].details
    assert (d["exposure_time"], d["f_number"], d["focal_length_mm"], d["iso"]) == want
    assert isinstance(d["iso"], int)


# Pillow warns about broken EXIF while opening some of these synthetic JPEGs (media layer).
pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")


def tiff(order: str, ifd0_at: int, *chunks: tuple[int, bytes]) -> bytes:
    """A TIFF block: header pointing at `ifd0_at`, then each (offset, bytes) chunk placed there."""
    size = max([8] + [at + len(b) for at, b in chunks])
    out = bytearray(size)
    out[:8] = (b"II*\0" if order == "<" else b"MM\0*") + struct.pack(order + "I", ifd0_at)
    for at, b in chunks:
        out[at : at + len(b)] = b
    return bytes(out)


def ifd(order: str, entries: list[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    body = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack(order + "HHII", tag, kind, count, value)
    return body + struct.pack(order + "I", next_ifd)


@pytest.mark.parametrize("order", ["<", ">"])
def test_ifd_loops_are_read_once(order: str) -> None:
    # IFD0 -> Exif IFD at IFD0 itself; the GPS pointer points back at IFD0 too.
    blob = tiff(order, 8, (8, ifd(order, [(0x8769, 4, 1, 8), (0x8825, 4, 1, 8)], next_ifd=8)))
    ifds = read_ifds(blob)
    assert ifds.exif == {} and ifds.gps == {}
    assert any("loop" in w for w in ifds.warnings)


@pytest.mark.parametrize("order", ["<", ">"])
def test_offsets_and_counts_past_the_end(order: str) -> None:
    make = b"Canon\0"
    entries = [
        (0x010F, 2, len(make), 100),  # fine: "Canon" at offset 100
        (0x0110, 2, 0xFFFFFFFF, 100),  # a count far past the end: cut to the data, marked
        (0x0131, 2, 40, 0x7FFFFFF0),  # an offset far past the end: dropped
        (0x8827, 3, 0x10000, 100),  # a damaged count makes a number's place a guess: no number
        (0x8769, 4, 1, 0xFFFFFF00),  # Exif IFD past the end
        (0x1234, 99, 1, 0),  # unknown field type: skipped
    ]
    blob = tiff(order, 8, (8, ifd(order, entries)), (100, make))
    ifds = read_ifds(blob)
    assert set(ifds.ifd0) == {0x010F, 0x0110, 0x8827, 0x8769}
    assert ifds.text(ifds.ifd0[0x010F]) == "Canon" and not ifds.ifd0[0x010F].cut
    model = ifds.ifd0[0x0110]
    assert model.cut and model.size == len(make) and ifds.text(model) == "Canon"  # up to its NUL
    assert ifds.ifd0[0x8827].cut and ifds.number(ifds.ifd0[0x8827]) is None
    assert ifds.exif == {}
    assert ifds.warnings == [
        "IFD0 IFD entry 0x0110 claims 4294967295 bytes; only 6 are read",
        "IFD0 IFD entry 0x0131 points past the end of the EXIF data",
        "IFD0 IFD entry 0x8827 claims 131072 bytes; only 6 are read",
        "the Exif IFD offset points past the end of the EXIF data",
    ]
    fields, _order = tiff_fields(blob)
    assert fields == {"Make": make}  # the generators reader takes no cut-short value


def test_an_ifd_claiming_more_entries_than_fit_is_cut_to_what_fits() -> None:
    blob = tiff("<", 8, (8, struct.pack("<H", 0xFFFF) + b"\0" * 600))
    ifds = read_ifds(blob)
    assert not ifds
    assert ifds.warnings == ["the IFD0 IFD claims 65535 entries; only 50 fit in the EXIF data"]


def test_entries_are_capped_even_when_they_fit() -> None:
    entries = [(0x0100 + i % 0x100, 3, 1, i) for i in range(MAX_ENTRIES + 50)]
    ifds = read_ifds(tiff("<", 8, (8, ifd("<", entries))))
    assert len(ifds.ifd0) == 0x100  # the tags repeat every 256 entries; the last of each is kept
    assert f"only the first {MAX_ENTRIES} are read" in ifds.warnings[0]


def test_not_a_tiff_header_and_invalid_utf8() -> None:
    assert read_ifds(b"JUNKJUNKJUNK").warnings == ["the EXIF data does not start with a TIFF header"]
    assert read_ifds(b"II").warnings == ["the EXIF data does not start with a TIFF header"]
    blob = tiff("<", 8, (8, ifd("<", [(0x010F, 2, 4, 0x00FFFE41)])))  # "A\xfe\xff" inline
    ifds = read_ifds(blob)
    assert ifds.text(ifds.ifd0[0x010F]) == "A\ufffd\ufffd"
    assert ifds.warnings == ["an EXIF text value is not valid UTF-8"]


def test_mutated_camera_exif_never_raises() -> None:
    """Thousands of byte-flipped copies of a real camera's EXIF: the walker and the reader always
    answer (a camera, an editor, a malformed note or nothing), never raise."""
    with Image.open(SAMPLES / "jpg/Canon_40D.jpg") as im:
        blob = im.info["exif"][6:]
    rng = random.Random(20)
    for _ in range(3000):
        mutated = bytearray(blob[:4096])
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(mutated))
            mutated[at] = rng.randrange(256)
        data = bytes(mutated[: rng.randint(0, len(mutated))])
        ifds = read_ifds(data)
        for entries in (ifds.ifd0, ifds.exif, ifds.gps):
            for entry in entries.values():
                ifds.text(entry)
                ifds.number(entry)
        tiff_fields(data)


def test_mutated_camera_exif_in_a_jpeg_gives_an_item_or_nothing() -> None:
    """The reader on top of the walker, through the JPEG's APP1 segment, on mutated EXIF."""
    with Image.open(SAMPLES / "jpg/Canon_40D.jpg") as im:
        blob = im.info["exif"][6:4096]
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    plain = buf.getvalue()
    rng = random.Random(7)
    for _ in range(200):
        mutated = bytearray(blob)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        payload = b"Exif\0\0" + bytes(mutated)
        data = plain[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + plain[2:]
        items = exif.read(Media(path="<memory>", data=data, size=len(data), mtime_ns=0))
        assert all(i.signal in ("camera", "editor", "ai", "none") and not i.strong for i in items)


def test_a_truncated_camera_jpeg_keeps_what_is_there_and_says_what_is_not() -> None:
    """Cut inside its Exif IFD: Pillow cannot parse the header, so the reader looks for the EXIF
    block in the file; IFD0 is whole, the Exif IFD's values lie past the cut."""
    data = (SAMPLES / "jpg/Canon_40D.jpg").read_bytes()[:400]
    media = Media(path="<memory>", data=data, size=len(data), mtime_ns=0)
    assert media.header_error is not None
    (item,) = exif.read(media)
    assert item.signal == "camera" and item.details["model"] == "Canon EOS 40D"
    assert "exposure_time" not in item.details
    assert "the Exif IFD claims 30 entries; only 12 fit in the EXIF data" in item.details["warnings"]


def test_png_exif_chunk_after_the_image_data() -> None:
    """Pillow reads an eXIf chunk only before IDAT; the reader finds a later one itself."""
    e = Image.Exif()
    e[0x010F], e[0x0110] = "Canon", "Canon EOS R5"
    raw = e.tobytes()[6:]
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    png = buf.getvalue()
    chunk = struct.pack(">I", len(raw)) + b"eXIf" + raw + struct.pack(">I", zlib.crc32(b"eXIf" + raw))
    data = png[:-12] + chunk + png[-12:]  # before IEND
    media = Media(path="<memory>", data=data, size=len(data), mtime_ns=0)
    assert not media.info.get("exif")
    (item,) = exif.read(media)
    assert item.signal == "camera" and item.details["model"] == "Canon EOS R5"
