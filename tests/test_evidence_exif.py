"""EXIF reader: real camera files (JPEG, HEIC), editor and generator Software tags, the files
that once crashed EXIF readers, hostile EXIF built here, and a quiet stderr."""

from __future__ import annotations

import io
import json
import struct

import pytest
from PIL import Image

from fakescope_cli.evidence import exif
from fakescope_cli.evidence.base import SIGNALS, EvidenceItem
from fakescope_cli.media import Media
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "exif-samples"


def read_path(rel: str) -> list[EvidenceItem]:
    items = exif.read(Media.open(SAMPLES / rel))
    json.dumps([i.to_dict() for i in items], allow_nan=False)
    return items


def by_signal(items: list[EvidenceItem], signal: str) -> EvidenceItem:
    matches = [i for i in items if i.signal == signal]
    assert len(matches) == 1, items
    return matches[0]


def media_of(data: bytes) -> Media:
    return Media(path="<memory>", data=data, size=len(data), mtime_ns=0)


def jpeg_with_app1(payload: bytes) -> bytes:
    """A valid tiny JPEG with `payload` spliced in as its first APP1 segment."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "JPEG")
    data = buf.getvalue()
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def test_canon_40d() -> None:
    item = by_signal(read_path("jpg/Canon_40D.jpg"), "camera")
    assert item.source == "exif"
    assert item.strong is False
    d = item.details
    assert d["make"] == "Canon"
    assert d["model"] == "Canon EOS 40D"
    assert d["exposure_time"] == "1/160"
    assert d["f_number"] == 7.1
    assert d["iso"] == 100
    assert d["focal_length_mm"] == 135.0
    assert d["datetime_original"] == "2008:05:30 15:56:01"
    assert d["gps"] is False  # a GPS IFD with only a version number is not a location
    assert d["software"] == "GIMP 2.4.5"
    assert d["software_kind"] == "editor"
    assert "Canon EOS 40D" in item.summary


def test_gps_sample_reports_presence_only() -> None:
    item = by_signal(read_path("jpg/gps/DSCN0010.jpg"), "camera")
    assert item.details["gps"] is True
    assert item.details["model"] == "COOLPIX P6000"
    text = json.dumps(item.to_dict())
    # Coordinates (43° 28' …N, 11° 53' …E) must not be copied anywhere.
    for fragment in ("1407/500", "645599999", "43, 28", "[43", "GPSLatitude", "latitude"):
        assert fragment not in text


def test_heic_iphone() -> None:
    item = by_signal(read_path("heic/IMG_5195.HEIC"), "camera")
    assert item.details["make"] == "Apple"
    assert item.details["model"] == "iPhone 11 Pro Max"
    assert item.details["lens"].startswith("Apple iPhone 11 Pro Max back triple camera")
    assert item.details["gps"] is True
    item = by_signal(read_path("heic/mobile/iphone_13_pro_max.HEIC"), "camera")
    assert item.details["model"] == "iPhone 13 Pro Max"
    assert item.details["iso"] == 250


def test_editor_only() -> None:
    item = by_signal(read_path("jpg/xmp/BlueSquare.jpg"), "editor")
    assert item.details["software"] == "Adobe Photoshop CS2 Macintosh"
    assert "camera" not in [i.signal for i in read_path("jpg/xmp/BlueSquare.jpg")]


def test_no_exif_no_items() -> None:
    assert read_path("jpg/exif-org/olympus-d320l.jpg") == []
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    assert exif.read(media_of(buf.getvalue())) == []


@pytest.mark.parametrize(
    "rel",
    sorted(
        str(p.relative_to(SAMPLES))
        for pattern in ("jpg/tests/*", "jpg/invalid/*", "jpg/corrupted.jpg")
        for p in SAMPLES.glob(pattern)
        if p.suffix.lower() in (".jpg", ".jpeg")
    ),
)
def test_former_crashers(rel: str, capfd: pytest.CaptureFixture[str]) -> None:
    items = read_path(rel)
    assert all(i.signal in SIGNALS and i.strong is False for i in items)
    assert capfd.readouterr().err == ""


def test_every_sample_without_exception(capfd: pytest.CaptureFixture[str]) -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    assert len(files) > 90
    cameras = 0  # what reading them costs per file is bench/bench_readers.py's figure
    for path in files:
        items = exif.read(Media.open(path))
        json.dumps([i.to_dict() for i in items], allow_nan=False)
        assert all(i.signal in SIGNALS for i in items)
        cameras += any(i.signal == "camera" for i in items)
    assert cameras >= 55  # 58 of the samples name a camera
    assert capfd.readouterr().err == ""


def test_walker_warnings_become_details() -> None:
    # Its Exif IFD pointer is a 154-byte ASCII string, not an offset; IFD0 is still read.
    item = by_signal(read_path("jpg/tests/30-type_error.jpg"), "editor")
    assert item.details["warnings"] == ["the Exif IFD pointer holds no usable offset"]
    # A GPS IFD pointer with no value at all.
    item = by_signal(read_path("jpg/tests/45-gps_ifd.jpg"), "camera")
    assert item.details["warnings"] == ["the GPS IFD pointer holds no usable offset"]
    assert item.details["gps"] is False and item.details["exposure_time"] == "1/59"


def test_generator_software_is_weak_ai() -> None:
    e = Image.Exif()
    e[0x0131] = "NovelAI"
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", exif=e)
    item = by_signal(exif.read(media_of(buf.getvalue())), "ai")
    assert item.strong is False
    assert item.details["software_kind"] == "generator"


def test_comfyui_webp_make_is_not_a_camera() -> None:
    e = Image.Exif()
    e[0x0110] = 'prompt:{"3": {"inputs": {}, "class_type": "KSampler"}}'
    e[0x010F] = 'workflow:{"nodes": [], "links": []}'
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "WEBP", exif=e)
    assert [i for i in exif.read(media_of(buf.getvalue())) if i.signal == "camera"] == []


# Pillow itself warns about the broken EXIF while opening these synthetic files (media layer).
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_unreadable_exif_block_is_reported_as_malformed() -> None:
    # TIFF header whose first IFD points far outside the block.
    payload = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 0x7FFFFFF0) + b"\0" * 32
    items = exif.read(media_of(jpeg_with_app1(payload)))
    item = by_signal(items, "none")
    assert item.details["malformed"] is True
    assert item.details["warnings"] == ["the IFD0 IFD offset points past the end of the EXIF data"]


# Pillow itself warns about the broken EXIF while opening these synthetic files (media layer).
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_pathological_ifd_entry_count_is_cut_to_the_data(capfd: pytest.CaptureFixture[str]) -> None:
    # An IFD claiming 65535 entries in 600 bytes: only the 50 that fit are read (all empty).
    payload = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + b"\0" * 600
    items = exif.read(media_of(jpeg_with_app1(payload)))
    item = by_signal(items, "none")
    assert item.details["warnings"] == ["the IFD0 IFD claims 65535 entries; only 50 fit in the EXIF data"]
    assert capfd.readouterr().err == ""


def test_truncated_camera_file() -> None:
    data = (SAMPLES / "jpg/Canon_40D.jpg").read_bytes()
    for cut in (4, 40, 400, 2000):
        items = exif.read(media_of(data[:cut]))
        json.dumps([i.to_dict() for i in items])


def test_camera_hint_note_names_exif() -> None:
    from fakescope_cli.evidence.base import weak_sign_note

    note = weak_sign_note(by_signal(read_path("jpg/Canon_40D.jpg"), "camera"))
    assert note == "a weak sign: EXIF is easy to forge or strip, so it does not move the score."
