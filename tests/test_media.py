from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fakescope_cli.errors import InputError
from fakescope_cli.media import Media, sniff_format


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("JPEG", "JPEG"), ("PNG", "PNG"), ("GIF", "GIF"), ("WEBP", "WEBP"), ("TIFF", "TIFF"), ("BMP", "BMP")],
)
def test_sniff_from_bytes_not_extension(tmp_path, fmt, name):
    data = _save(Image.new("RGB", (16, 12), (200, 10, 10)), fmt)
    assert sniff_format(data[:64]) == name
    p = tmp_path / "misleading.txt"
    p.write_bytes(data)
    m = Media.open(p)
    assert m.format == name and (m.width, m.height) == (16, 12)


def test_heif_fixture_sniffed(fixtures_dir):
    m = Media.open(fixtures_dir / "exif-samples/heic/samplefilehub.heif")
    assert m.format == "HEIF" and m.width == 640


def test_avif_roundtrip_if_supported(tmp_path):
    try:
        data = _save(Image.new("RGB", (32, 32), (1, 2, 3)), "AVIF")
    except (KeyError, OSError, ValueError):
        pytest.skip("this Pillow build cannot write AVIF")
    assert sniff_format(data[:64]) == "AVIF"


def test_read_only_and_identity(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(_save(Image.new("RGB", (4, 4)), "PNG"))
    before = (p.stat().st_mtime_ns, p.read_bytes())
    m = Media.open(p)
    m.pixels()
    assert m.size == len(before[1])
    import hashlib

    assert m.sha256 == hashlib.sha256(before[1]).hexdigest()
    assert (p.stat().st_mtime_ns, p.read_bytes()) == before


def test_empty_truncated_and_garbage(tmp_path):
    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as ei:
        Media.open(empty)
    assert ei.value.code == "empty-file"

    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    jpg = _save(noisy, "JPEG", quality=90)
    trunc = tmp_path / "t.jpg"
    trunc.write_bytes(jpg[: len(jpg) // 2])
    m = Media.open(trunc)
    assert m.format == "JPEG"
    with pytest.raises(InputError) as ei:
        m.pixels()
    assert ei.value.code == "truncated"

    garbage = tmp_path / "g.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    with pytest.raises(InputError) as ei:
        Media.open(garbage).pixels()
    assert ei.value.code in ("corrupt-image", "truncated")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge greyscale image (compressed zeros)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = b"".join(comp.compress(row) for _ in range(16)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_png(50_000, 50_000))
    m = Media.open(p)
    assert (m.width, m.height) == (50_000, 50_000)
    with pytest.raises(InputError) as ei:
        m.pixels()
    assert ei.value.code == "pixel-limit"


def test_text_chunk_bomb_capped(tmp_path):
    base = _save(Image.new("RGB", (4, 4)), "PNG")
    huge = zlib.compress(b"A" * (64 << 20), 9)  # 64 MiB of text in ~64 KiB
    ztxt = _png_chunk(b"zTXt", b"parameters\0\0" + huge)
    data = base[:33] + ztxt + base[33:]
    p = tmp_path / "ztxt.png"
    p.write_bytes(data)
    m = Media.open(p)
    info = m.info  # must not inflate 64 MiB
    assert len(str(info.get("parameters", ""))) < (8 << 20)


def test_sixteen_bit_and_cmyk_to_rgb(tmp_path):
    arr = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    p16 = tmp_path / "g16.png"
    Image.fromarray(arr).save(p16)
    rgb = Media.open(p16).rgb()
    assert rgb.mode == "RGB" and np.asarray(rgb).max() > 200
    pc = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(pc)
    rgb = np.asarray(Media.open(pc).rgb())
    assert rgb.shape == (8, 8, 3) and rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 60


def test_no_pixels_mode_never_decodes(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_png(50_000, 50_000))
    m = Media.open(p, allow_pixels=False)
    with pytest.raises(InputError):
        m.pixels()


def test_bad_png_crc_is_reported_as_a_warning(tmp_path):
    from fakescope_cli.analyze import Analyzer, ScanConfig
    from fakescope_cli.inputs import Candidate

    data = bytearray(_save(Image.new("RGB", (16, 16), (9, 9, 9)), "PNG"))
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4:idat], "big")
    crc_at = idat + 4 + length
    data[crc_at:crc_at + 4] = bytes(b ^ 0xFF for b in data[crc_at:crc_at + 4])
    p = tmp_path / "badcrc.png"
    p.write_bytes(bytes(data))
    record = Analyzer(ScanConfig(backend="none")).analyze(Candidate(str(p), True))
    assert record["errors"] == [] and record["width"] == 16
    assert [w["code"] for w in record["warnings"]] == ["png-crc"] and "IDAT" in record["warnings"][0]["message"]
    # A broken header checksum is not decodable at all: an error record.
    head = bytearray(_save(Image.new("RGB", (16, 16)), "PNG"))
    head[29] ^= 0xFF  # IHDR's CRC
    q = tmp_path / "badhead.png"
    q.write_bytes(bytes(head))
    rec = Analyzer(ScanConfig(backend="none")).analyze(Candidate(str(q), True))
    assert rec["verdict"] == "error" and rec["errors"][0]["code"] == "corrupt-image"
    # A broken checksum in an ancillary chunk before the image data (a text chunk): Pillow refuses the
    # file, but the image is sound; the chunk is left out and the warning names it.
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    text = bytearray(_save(Image.new("RGB", (16, 16), (9, 9, 9)), "PNG", pnginfo=info))
    at = text.index(b"tEXt")
    end = at + 4 + int.from_bytes(text[at - 4:at], "big")
    text[end:end + 4] = b"\0\0\0\0"
    r = tmp_path / "badtext.png"
    r.write_bytes(bytes(text))
    rec = Analyzer(ScanConfig(backend="none")).analyze(Candidate(str(r), True))
    assert rec["errors"] == [] and rec["width"] == 16 and rec["verdict"] == "no-verdict"
    assert [w["code"] for w in rec["warnings"]] == ["png-crc"] and "tEXt" in rec["warnings"][0]["message"]
    assert r.read_bytes() == bytes(text)  # the evidence itself is never repaired
    # The same damaged generator chunk before or after the image data: the same verdict, both flagged
    params = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 16x16, Model: sd_xl_base_1.0"
    outcomes = []
    for where in ("before", "after"):
        png = bytearray(_save(Image.new("RGB", (16, 16), (9, 9, 9)), "PNG"))
        body = b"parameters\0" + params.encode()
        chunk = len(body).to_bytes(4, "big") + b"tEXt" + body + b"\0\0\0\0"  # wrong CRC
        at = png.index(b"IDAT") - 4 if where == "before" else png.index(b"IEND") - 4
        png[at:at] = chunk
        f = tmp_path / f"gen_{where}.png"
        f.write_bytes(bytes(png))
        rec = Analyzer(ScanConfig(backend="none")).analyze(Candidate(str(f), True))
        outcomes.append((rec["verdict"], [w["code"] for w in rec["warnings"]]))
    assert outcomes[0] == outcomes[1] == ("ai-generated", ["png-crc"]), outcomes


def _scan(path):
    from fakescope_cli.analyze import Analyzer, ScanConfig
    from fakescope_cli.inputs import Candidate

    return Analyzer(ScanConfig(backend="none")).analyze(Candidate(str(path), True))


def _comfy_png(tmp_path, pad: int, zip_text: bool):
    import json

    from PIL import PngImagePlugin

    workflow = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
                "pad": {"class_type": "Note", "inputs": {"text": "x" * pad}}}
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(workflow), zip=zip_text)
    p = tmp_path / f"comfy_{'z' if zip_text else 'u'}.png"
    Image.new("RGB", (64, 64)).save(p, pnginfo=info)
    return p


@pytest.mark.parametrize("zip_text", [True, False])
def test_large_compressed_comfyui_workflow_is_read_not_called_corrupt(tmp_path, zip_text):
    # 5 MB of workflow: over Pillow's own 1 MiB chunk default, well under our bound.
    p = _comfy_png(tmp_path, 5_000_000, zip_text)
    m = Media.open(p)
    assert m.header_error is None
    assert len(m.info["prompt"]) > 5_000_000
    record = _scan(p)
    assert record["errors"] == [] and record["verdict"] == "ai-generated"
    assert [e["details"]["tool"] for e in record["evidence"] if e["source"] == "generator"] == ["ComfyUI"]
    assert not any("No provenance metadata" in r for r in record["reasons"])


def test_text_chunk_limits_stay_bounded():
    from PIL import PngImagePlugin

    from fakescope_cli import media

    media._prepare_pillow("PNG")
    assert PngImagePlugin.MAX_TEXT_CHUNK == media.MAX_TEXT_CHUNK
    assert PngImagePlugin.MAX_TEXT_MEMORY == media.MAX_TEXT_MEMORY
    assert 8 << 20 <= media.MAX_TEXT_CHUNK <= media.MAX_TEXT_MEMORY <= 128 << 20


def test_text_bomb_is_left_out_and_parsed_once(tmp_path):
    base = _save(Image.new("RGB", (4, 4)), "PNG")
    params = b"parameters\0a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 4x4, Model: sd15"
    bomb = _png_chunk(b"zTXt", b"junk\0\0" + zlib.compress(b"A" * (80 << 20), 9))
    p = tmp_path / "bomb_text.png"
    p.write_bytes(base[:33] + _png_chunk(b"tEXt", params) + bomb + base[33:])
    m = Media.open(p)
    assert m.header_error is None and m.header is m.header  # cached: the bomb is not met again
    assert [(c.chunk_type, c.keyword, c.reason) for c in m.skipped_text_chunks] == [("zTXt", "junk", "chunk")]
    assert m.info["parameters"].startswith("a cat")  # the text under the limits is still read
    record = _scan(p)
    assert record["errors"] == [] and record["verdict"] == "ai-generated"
    assert "metadata-partial" not in [w["code"] for w in record["warnings"]]


def _workflow_bomb_png(tmp_path, *, after_idat: bool = False, name: str = "workflow_bomb.png"):
    """A sound 24x16 PNG with EXIF and a zTXt `workflow` of ~60 KB that inflates to 63 MB:
    over fakescope's 32 MiB per-chunk limit, under its 64 MiB total."""
    base = _save(Image.new("RGB", (24, 16), (30, 60, 90)), "PNG", exif=_exif_with_software())
    comp = zlib.compressobj(9)
    blob = b"".join(comp.compress(b'{"class_type": "KSampler"} ' * 37_000) for _ in range(63)) + comp.flush()
    bomb = _png_chunk(b"zTXt", b"workflow\0\0" + blob)
    at = base.index(b"IEND") - 4 if after_idat else 33  # after IHDR, or just before IEND
    p = tmp_path / name
    p.write_bytes(base[:at] + bomb + base[at:])
    return p


def _exif_with_software() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0131] = "fakescope-test"  # Software
    return exif


def test_oversized_text_chunk_does_not_make_a_sound_png_an_error(tmp_path):
    import tracemalloc

    from fakescope_cli.media import MAX_TEXT_CHUNK, png_without_big_text

    p = _workflow_bomb_png(tmp_path)
    assert p.stat().st_size < 300_000
    m = Media.open(p)
    assert m.header_error is None and (m.width, m.height) == (24, 16)
    assert "workflow" not in m.info and m.header.getexif()[0x0131] == "fakescope-test"
    assert np.asarray(m.rgb())[0, 0].tolist() == [30, 60, 90]
    (chunk,) = m.skipped_text_chunks
    assert (chunk.chunk_type, chunk.keyword, chunk.reason) == ("zTXt", "workflow", "chunk")
    assert chunk.size == MAX_TEXT_CHUNK + 1  # measured up to the limit, no further
    (warning,) = m.skipped_text_warnings
    assert warning["code"] == "text-chunk-skipped"
    assert "zTXt 'workflow'" in warning["message"] and "32 MiB" in warning["message"]
    # Measuring the chunk inflates piecewise: 63 MB of text is never held.
    tracemalloc.start()
    try:
        stripped, skipped = png_without_big_text(p.read_bytes())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20 and len(skipped) == 1 and b"zTXt" not in stripped
    assert Image.open(io.BytesIO(stripped)).size == (24, 16)  # kept chunks' CRCs still hold


@pytest.mark.slow
def test_oversized_text_chunk_record_is_not_an_error(tmp_path):
    from tests.conftest import run_cli

    p = _workflow_bomb_png(tmp_path)
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(p), timeout=120)
    (record,) = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert record["errors"] == [] and record["verdict"] != "error"
    assert (record["width"], record["height"]) == (24, 16)
    codes = [w["code"] for w in record["warnings"]]
    assert "metadata-partial" not in codes and "png-crc" not in codes
    assert not any("corrupt" in r for r in record["reasons"])


def test_oversized_text_chunk_record_carries_the_warning(tmp_path):
    record = _scan(_workflow_bomb_png(tmp_path))
    (warning,) = [w for w in record["warnings"] if w["code"] == "text-chunk-skipped"]
    assert "'workflow'" in warning["message"]
    # the chunk left out may hold a generator's workflow: not "no provenance found"
    assert not any(r.startswith("No provenance metadata found") for r in record["reasons"])
    assert any("'workflow' too large to read" in r and "unknown" in r for r in record["reasons"])


def test_oversized_text_chunk_after_the_image_data(tmp_path):
    # Pillow reads text after IDAT only when decoding: the same remedy applies there.
    m = Media.open(_workflow_bomb_png(tmp_path, after_idat=True))
    assert m.header_error is None and m.skipped_text_chunks == []
    assert m.pixels().size == (24, 16)
    assert [c.keyword for c in m.skipped_text_chunks] == ["workflow"]
    assert m.header.size == (24, 16) and m.skipped_text_warnings


def test_text_chunks_over_the_total_are_left_out_in_file_order():
    from fakescope_cli.media import MAX_TEXT_MEMORY, png_without_big_text

    base = _save(Image.new("RGB", (4, 4)), "PNG")
    third = MAX_TEXT_MEMORY // 3 + 1
    each = zlib.compress(b"B" * third, 9)  # under the per-chunk limit; three are over the total
    texts = b"".join(_png_chunk(b"zTXt", k + b"\0\0" + each) for k in (b"one", b"two", b"three"))
    small = _png_chunk(b"tEXt", b"note\0kept")
    data = base[:33] + texts + small + base[33:]
    stripped, skipped = png_without_big_text(data)
    assert [(c.keyword, c.reason) for c in skipped] == [("three", "memory")]
    m = Media(path="t.png", data=data, size=len(data), mtime_ns=0)
    assert m.header_error is None and m.info["note"] == "kept" and len(m.info["two"]) == third
    assert stripped == base[:33] + texts[: texts.index(b"three") - 8] + small + base[33:]


def test_normal_png_has_no_skipped_text(tmp_path):
    p = _comfy_png(tmp_path, 1000, zip_text=True)
    m = Media.open(p)
    assert m.skipped_text_chunks == [] and m.skipped_text_warnings == []
    assert "text-chunk-skipped" not in [w["code"] for w in _scan(p)["warnings"]]


def test_corrupt_png_with_a_text_bomb_is_still_an_error(tmp_path):
    base = _save(Image.new("RGB", (4, 4)), "PNG")
    bomb = _png_chunk(b"zTXt", b"junk\0\0" + zlib.compress(b"A" * (40 << 20), 9))
    # Damaged besides the text: a broken IHDR checksum, or image data cut off after the bomb.
    broken = bytearray(base[:33] + bomb + base[33:])
    broken[29] ^= 0xFF
    for name, data in (("badihdr.png", bytes(broken)), ("cut.png", base[:33] + bomb + base[33:45])):
        p = tmp_path / name
        p.write_bytes(data)
        record = _scan(p)
        assert record["verdict"] == "error", name
        assert record["errors"][0]["code"] in ("corrupt-image", "truncated"), record["errors"]
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert _scan(garbage)["errors"][0]["code"] == "corrupt-image"


@pytest.mark.parametrize(
    ("fmt", "ext", "count", "words"),
    [("GIF", "gif", 5, "animated GIF with 5 frames"), ("WEBP", "webp", 5, "animated WEBP with 5 frames"),
     ("PNG", "png", 5, "animated APNG with 5 frames"), ("TIFF", "tiff", 3, "multi-page TIFF with 3 pages")],
)
def test_multi_frame_files_warn_that_only_the_first_frame_is_analysed(tmp_path, fmt, ext, count, words):
    frames = [Image.new("RGB", (24, 24), (40 * i, 200 - 40 * i, 0)) for i in range(count)]
    p = tmp_path / f"multi.{ext}"
    frames[0].save(p, format=fmt, save_all=True, append_images=frames[1:])
    m = Media.open(p)
    first = np.asarray(m.rgb()).copy()
    assert m.frame_count == count
    assert np.array_equal(np.asarray(m.rgb()), first)  # counting did not move the decoded frame
    record = _scan(p)
    (warning,) = [w for w in record["warnings"] if w["code"] == "first-frame-only"]
    assert words in warning["message"] and "only the first" in warning["message"]


def test_still_images_and_metadata_only_scans_get_no_frame_warning(tmp_path):
    p = tmp_path / "still.gif"
    Image.new("RGB", (8, 8)).save(p)
    assert Media.open(p).frame_count == 1
    assert _scan(p)["warnings"] == []
    from fakescope_cli.evidence import file_warnings

    anim = tmp_path / "anim.gif"
    Image.new("RGB", (8, 8)).save(anim, save_all=True, append_images=[Image.new("RGB", (8, 8), (9, 9, 9))])
    assert file_warnings(Media.open(anim, allow_pixels=False)) == []  # nothing was scored at all


@pytest.mark.parametrize(
    ("name", "fmt", "mismatch"),
    [("photo.jpg", "PNG", ".jpg"), ("photo.JPEG", "JPEG", None), ("shot.png", "WEBP", ".png"),
     ("scan.tif", "TIFF", None), ("no_extension", "PNG", None), ("notes.txt", "PNG", ".txt")],
)
def test_extension_mismatch(tmp_path, name, fmt, mismatch):
    p = tmp_path / name
    p.write_bytes(_save(Image.new("RGB", (8, 8)), fmt))
    assert Media.open(p).extension_mismatch == mismatch
    codes = [w for w in _scan(p)["warnings"] if w["code"] == "extension-mismatch"]
    if mismatch:
        assert codes == [{"code": "extension-mismatch", "message": f"named {mismatch} but the bytes are {fmt}"}]
    else:
        assert codes == []
