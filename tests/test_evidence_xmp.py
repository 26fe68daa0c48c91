"""XMP reader: real camera/editor fixtures, generated JPEG/PNG/WebP packets, hostile packets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from fakescope_cli.evidence import xmp
from fakescope_cli.media import Media
from tests.conftest import FIXTURES

EXIF = FIXTURES / "exif-samples"
DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
RDF_OPEN = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
)
RDF_CLOSE = "</rdf:RDF></x:xmpmeta>"
NS = ('xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
      'xmlns:xmp="http://ns.adobe.com/xap/1.0/"')


def _packet(body_attrs: str = "", body_elems: str = "") -> str:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>' + RDF_OPEN
        + f'<rdf:Description rdf:about="" {NS} {body_attrs}>{body_elems}</rdf:Description>'
        + RDF_CLOSE + '<?xpacket end="w"?>'
    )


def _items(media: Media) -> list[Any]:
    items = xmp.read(media)
    for item in items:
        assert item.source == "xmp"
        json.dumps(item.to_dict())
    return items


def _file(path: Path) -> list[Any]:
    return _items(Media.open(path))


def _save(tmp_path: Path, fmt: str, packet: str) -> Path:
    img = Image.new("RGB", (32, 24), (90, 120, 200))
    path = tmp_path / f"sample.{fmt.lower()}"
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet)  # the chunk Adobe's XMP spec names for PNG
        img.save(path, "PNG", pnginfo=info)
    else:
        img.save(path, fmt, xmp=packet.encode("utf-8"))
    return path


# --- real fixtures --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("rel", "tool"),
    [
        ("jpg/xmp/BlueSquare.jpg", "Adobe Photoshop CS2 Macintosh"),
        ("jpg/xmp/no_exif.jpg", "Adobe Photoshop CS5.1 Macintosh"),
        ("jpg/Nikon_D70.jpg", "Adobe Photoshop CS2 Windows"),
        ("jpg/invalid/image01137.jpg", "Adobe Fireworks CS4"),  # Fireworks, not Firefly
        # lower-case 'xmp:creatortool' inside an 'xmp:xmpmeta' wrapper
        ("jpg/tests/28-hex_value.jpg", "Microsoft Windows Photo Gallery 6.0.6001.18000"),
    ],
)
def test_editor_creator_tools(rel: str, tool: str) -> None:
    item, *camera = _file(EXIF / rel)
    # A camera named in tiff:Make/Model beside the editor is a separate weak hint.
    assert all(c.signal == "camera" and "tiff:Make/Model" in c.summary for c in camera)
    assert item.signal == "editor" and item.strong is False
    assert item.details["creator_tool"] == [tool]
    assert tool in item.summary


def test_camera_firmware_creator_tool_with_lightroom_history() -> None:
    (item,) = _file(EXIF / "jpg/tests/87_OSError.jpg")
    assert item.signal == "camera" and not item.strong
    assert item.details["creator_tool"] == ["Ver.1.00"]
    assert item.details["history_agents"] == ["Adobe Photoshop Lightroom 6.2.1 (Macintosh)"]
    assert item.details["editors"] == ["Adobe Lightroom"]


@pytest.mark.parametrize(
    "rel",
    ["jpg/hdr/canon_hdr_YES.jpg", "jpg/hdr/canon_hdr_NO.jpg", "jpg/gps/DSCN0010.jpg",
     "tiff/Arbitro.tiff"],
)
def test_xmp_without_provenance_fields_gives_nothing(rel: str) -> None:
    media = Media.open(EXIF / rel)
    assert media.info.get("xmp")  # there is a packet (rating, TIFF compression …) …
    assert _items(media) == []  # … but nothing about who made the image


def test_xmp_that_only_names_the_camera_gives_a_camera_hint() -> None:
    (item,) = _file(EXIF / "jpg/mobile/jolla.jpg")  # tiff:Make/Model "Jolla", nothing else
    assert (item.signal, item.strong) == ("camera", False) and "Jolla" in item.summary


def test_iphone_heic_version_string_is_not_taken_for_a_camera() -> None:
    (item,) = _file(EXIF / "heic/IMG_5195.HEIC")
    assert item.details["creator_tool"] == ["14.4.2"]
    assert item.signal == "none"


def test_heic_without_pillow_xmp_is_scanned_in_the_raw_bytes() -> None:
    media = Media.open(EXIF / "heic/mobile/iphone_13_pro_max.HEIC")
    assert not media.info.get("xmp")
    packets, origin = xmp._packets(media)
    assert origin == "raw-scan" and len(packets) == 1
    assert b"HDRGainMap" in packets[0] and packets[0].endswith(b"xmpmeta>")
    assert _items(media) == []


def test_stripped_content_credentials_are_noted() -> None:
    # Photoshop XMP says a C2PA manifest is embedded (self#jumbf=…), but the file has none.
    (item,) = _file(FIXTURES / "provenance/c2pa/no_manifest.jpg")
    assert item.details.get("c2pa_manifest_missing") is True
    assert "stripped" in item.summary
    assert item.signal == "editor"


def test_every_fixture_reads_without_raising() -> None:
    count = 0
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and not path.name.startswith("README"):
            try:
                media = Media.open(path)
            except Exception:  # not a readable file at all: not this reader's business
                continue
            _items(media)
            count += 1
    assert count > 100


# --- generated files ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_digital_source_type_attribute_marks_ai(tmp_path: Path, fmt: str) -> None:
    path = _save(tmp_path, fmt, _packet(f'Iptc4xmpExt:DigitalSourceType="{DST}trainedAlgorithmicMedia"'))
    media = Media.open(path)
    assert media.format == fmt
    (item,) = _items(media)
    assert item.signal == "ai" and item.strong is True
    assert "trainedAlgorithmicMedia" in item.summary
    assert item.details["from"] == "container"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_digital_source_type_element_forms(tmp_path: Path, fmt: str) -> None:
    elem = f"<Iptc4xmpExt:DigitalSourceType>{DST}compositeWithTrainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>"
    (item,) = _items(Media.open(_save(tmp_path, fmt, _packet(body_elems=elem))))
    assert item.signal == "ai-edited" and item.strong is True

    elem = f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{DST}digitalCapture"/>'
    (item,) = _items(Media.open(_save(tmp_path, fmt, _packet(body_elems=elem))))
    assert item.signal == "camera" and item.strong is False


@pytest.mark.parametrize(
    ("tool", "signal", "strong"),
    [("Midjourney", "ai", True), ("ComfyUI", "ai", True), ("Adobe Firefly", "ai", True),
     ("GIMP 2.10.34", "editor", False), ("Adobe Photoshop 25.0 (Windows)", "editor", False),
     ("Digital Camera X-T3 Ver3.20", "camera", False), ("MyTool 1.0", "none", False)],
)
def test_creator_tool_mapping_in_png(tmp_path: Path, tool: str, signal: str, strong: bool) -> None:
    (item,) = _items(Media.open(_save(tmp_path, "PNG", _packet(f'xmp:CreatorTool="{tool}"'))))
    assert (item.signal, item.strong) == (signal, strong)
    assert item.details["creator_tool"] == [tool]


def test_ai_claim_wins_over_a_camera_claim(tmp_path: Path) -> None:
    packet = _packet(f'xmp:CreatorTool="Ver.1.00" Iptc4xmpExt:DigitalSourceType="{DST}trainedAlgorithmicMedia"')
    (item,) = _items(Media.open(_save(tmp_path, "JPEG", packet)))
    assert item.signal == "ai" and item.strong


def test_utf16_packet() -> None:
    found = xmp._Found()
    problems: list[str] = []
    xmp._scan_packet(_packet('xmp:CreatorTool="Stable Diffusion XL"').encode("utf-16"), found, problems)
    assert problems == [] and found.props["creator_tool"] == ["Stable Diffusion XL"]


def test_tool_name_lists() -> None:
    assert xmp.match_ai_tool("Adobe_Firefly adobe_c2pa/0.12.4") == "Adobe Firefly"
    assert xmp.match_ai_tool("Adobe Fireworks CS5") is None
    assert xmp.match_ai_tool("Adobe Photoshop 26.9.0") is None
    assert xmp.match_ai_tool("DALL·E 3") == "DALL·E"
    assert xmp.classify_tool("Digital Photo Professional 4.15")[0] == "editor"  # Canon's editor
    assert xmp.classify_tool("Canon EOS R5 Firmware Ver 1.8.1")[0] == "camera"
    assert xmp.classify_tool("14.4.2")[0] == "none"
    assert xmp.dst_signal("http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic") == "ai-edited"
    assert xmp.dst_signal("screenCapture") is None


# --- hostile packets ------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>" + RDF_OPEN + f'<rdf:Description rdf:about="" {NS} xmp:CreatorTool="&lol9;"/>' + RDF_CLOSE
)


def test_billion_laughs_is_rejected_quickly(tmp_path: Path) -> None:
    media = Media.open(_save(tmp_path, "JPEG", BILLION_LAUGHS))
    (item,) = _items(media)
    assert item.signal == "none" and not item.strong
    assert "DOCTYPE" in item.summary  # refused before any entity is expanded: bounded work, not timed
    assert "lol" not in json.dumps(item.details)


def test_five_megabyte_packet_is_not_parsed(tmp_path: Path) -> None:
    big = _packet('xmp:CreatorTool="Midjourney"', "<xmp:Label>" + "A" * (5 << 20) + "</xmp:Label>")
    media = Media.open(_save(tmp_path, "PNG", big))
    assert len(media.info["xmp"]) > 5 << 20
    (item,) = _items(media)
    assert "parse limit" in item.details["problems"][0]  # never handed to the XML parser
    assert item.signal == "ai"  # the bounded pattern search still sees the declared generator
    assert len(json.dumps(item.to_dict())) < 4000


def test_unterminated_huge_packet_in_raw_bytes(tmp_path: Path) -> None:
    # GIF: Pillow does not expose XMP, so the raw scan runs; the packet never closes.
    path = tmp_path / "x.gif"
    Image.new("P", (8, 8)).save(path, "GIF", comment=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + b"B" * (5 << 20))
    media = Media.open(path)
    (item,) = _items(media)
    assert item.signal == "none" and "parse limit" in item.summary


@pytest.mark.parametrize(
    "packet",
    [
        RDF_OPEN + '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="GIMP"><unclosed>' + RDF_CLOSE,
        "<x:xmpmeta>" + "<a>" * 5000 + "</x:xmpmeta>",
        "\x00\x00\x00 not xml at all",
        RDF_OPEN + '<rdf:Description xmlns:e="http://example.com/" e:x="&ext;"/>' + RDF_CLOSE,
    ],
)
def test_malformed_packets_never_raise(tmp_path: Path, packet: str) -> None:
    items = _items(Media.open(_save(tmp_path, "JPEG", packet)))
    assert len(items) <= 1
    for item in items:
        assert item.signal in ("editor", "none")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_camera_hint_note_names_xmp_and_iptc_not_exif(tmp_path: Path, fmt: str) -> None:
    from fakescope_cli.evidence.base import weak_sign_note

    elem = f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{DST}digitalCapture"/>'
    (item,) = _items(Media.open(_save(tmp_path, fmt, _packet(body_elems=elem))))
    assert item.signal == "camera"
    note = weak_sign_note(item)
    assert "IPTC DigitalSourceType in XMP" in note and "EXIF" not in note
    assert note.startswith("a weak sign: ") and note.endswith("does not move the score.")


def test_camera_firmware_creator_tool_note_names_xmp() -> None:
    from fakescope_cli.evidence.base import weak_sign_note

    (item,) = _file(EXIF / "jpg/tests/87_OSError.jpg")
    assert item.signal == "camera"
    note = weak_sign_note(item)
    assert "XMP is unsigned text" in note and "IPTC" not in note and "EXIF" not in note


# --- camera named by tiff:Make / tiff:Model ----------------------------------------------------------

TIFF_NS = 'xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'


def test_xmp_camera_make_and_model_are_a_weak_camera_hint(tmp_path: Path) -> None:
    from fakescope_cli.evidence.base import weak_sign_note

    packet = _packet(f'{TIFF_NS} tiff:Make="Canon" tiff:Model="Canon EOS R5"')
    (item,) = _file(_save(tmp_path, "JPEG", packet))
    assert (item.signal, item.strong) == ("camera", False)
    assert "Canon EOS R5" in item.summary and "Canon Canon" not in item.summary
    assert "XMP is unsigned text" in weak_sign_note(item)


def test_xmp_camera_beside_a_capture_claim_is_one_item_beside_an_ai_claim_its_own(tmp_path: Path) -> None:
    capture = _packet(f'{TIFF_NS} tiff:Make="NIKON CORPORATION" tiff:Model="NIKON D850" '
                      f'Iptc4xmpExt:DigitalSourceType="{DST}digitalCapture"')
    (item,) = _file(_save(tmp_path, "JPEG", capture))
    assert item.signal == "camera" and "digitalCapture" in item.summary and "NIKON D850" in item.summary
    ai = _packet(f'{TIFF_NS} tiff:Model="Pixel 8" Iptc4xmpExt:DigitalSourceType="{DST}trainedAlgorithmicMedia"')
    first, second = _file(_save(tmp_path, "PNG", ai))
    assert (first.signal, first.strong) == ("ai", True)
    assert (second.signal, second.strong) == ("camera", False) and "Pixel 8" in second.summary


def test_a_generator_name_in_tiff_make_is_not_a_camera(tmp_path: Path) -> None:
    packet = _packet(f'{TIFF_NS} tiff:Make="Midjourney"')
    assert not [i for i in _file(_save(tmp_path, "JPEG", packet)) if i.signal == "camera"]
