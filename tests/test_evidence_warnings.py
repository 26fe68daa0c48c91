"""file_warnings: what the record says about how the file itself looked (name vs bytes …)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from fakescope_cli.evidence import file_warnings
from fakescope_cli.media import Media


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 30)).save(buf, fmt)
    return buf.getvalue()


def _mismatch(tmp_path: Path, name: str, fmt: str) -> list[str]:
    path = tmp_path / name
    path.write_bytes(_image(fmt))
    return [w["message"] for w in file_warnings(Media.open(path)) if w["code"] == "extension-mismatch"]


@pytest.mark.parametrize("name", ["notes.txt", "report.PDF", "letter.doc", "blob.dat", "dump.bin"])
def test_an_image_named_as_a_non_image_type_is_pointed_out(tmp_path: Path, name: str) -> None:
    suffix = name[name.rindex("."):]
    assert _mismatch(tmp_path, name, "PNG") == [f"named {suffix} but the bytes are PNG"]


def test_the_suffix_is_quoted_as_written(tmp_path: Path) -> None:
    assert _mismatch(tmp_path, "PNGUP.JPG", "PNG") == ["named .JPG but the bytes are PNG"]
    assert _mismatch(tmp_path, "real.JPE", "JPEG") == []


@pytest.mark.parametrize("name", ["no_extension", ".hidden", "photo.unknownext", "scan.TIFF"])
def test_no_warning_without_a_known_contradicting_extension(tmp_path: Path, name: str) -> None:
    assert _mismatch(tmp_path, name, "TIFF") == []
