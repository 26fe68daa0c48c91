"""Generator layouts of issue #20, each in a small file written here the way the tool writes it
(Pillow only): ComfyUI graphs in an EXIF UserComment (bare or wrapped) of JPEG and WebP,
ComfyUI-SaveImageExtended's "Prompt:"/"Workflow:" in EXIF Make/ImageDescription, JSON `parameters`
chunks from Hugging Face Spaces and RuinedFooocus, and A1111-style text from Forge Classic/Neo,
SD.Next and ComfyUI SaveImageWithMetaData, each named as its tool."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from fakescope_cli.evidence import collect, exif, generators
from fakescope_cli.evidence.generators.tiff_ifd import read_ifds, tiff_fields
from fakescope_cli.fusion import Thresholds, fuse
from fakescope_cli.media import Media

# A small ComfyUI API graph: checkpoint → two text encodes → KSampler on an empty latent.
GRAPH = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 25, "cfg": 6.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
}
WORKFLOW = {"nodes": [{"id": 3, "type": "KSampler", "widgets_values": [42, "fixed", 25, 6.5, "euler", "normal", 1]}],
            "links": []}


def _image_bytes(fmt: str, exif_obj: Image.Exif | None = None, pnginfo: PngImagePlugin.PngInfo | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {}
    if exif_obj is not None:
        kwargs["exif"] = exif_obj.tobytes()
    if pnginfo is not None:
        kwargs["pnginfo"] = pnginfo
    Image.new("RGB", (16, 16), (90, 120, 200)).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _media(tmp_path: Path, name: str, data: bytes) -> Media:
    path = tmp_path / name
    path.write_bytes(data)
    return Media.open(path)


def _user_comment(text: str) -> Image.Exif:
    """UserComment as piexif.helper.UserComment.dump(…, encoding="unicode") writes it (Civitai, the
    ComfyUI save nodes): the 8-byte UNICODE prefix, then UTF-16 big-endian text."""
    exif_obj = Image.Exif()
    exif_obj.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
    return exif_obj


@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("WEBP", "webp")])
@pytest.mark.parametrize("wrapped", [False, True])
def test_comfyui_graph_in_exif_user_comment(tmp_path: Path, fmt: str, ext: str, wrapped: bool) -> None:
    text = json.dumps({"prompt": GRAPH, "workflow": WORKFLOW} if wrapped else GRAPH)
    media = _media(tmp_path, f"comfy.{ext}", _image_bytes(fmt, _user_comment(text)))
    (item,) = generators.read(media)
    assert item.signal == "ai" and item.strong
    d = item.details
    assert d["tool"] == "ComfyUI" and d["location"].endswith("EXIF UserComment")
    assert d["prompt"] == "a lighthouse at dusk" and d["negative_prompt"] == "blurry"
    assert d["seed"] == 42 and d["steps"] == 25 and d["model"] == "sd_xl_base_1.0.safetensors"


def test_comfyui_graph_wrapped_as_json_strings(tmp_path: Path) -> None:
    # Some nodes store the graphs as JSON strings inside the wrapper.
    text = json.dumps({"prompt": json.dumps(GRAPH), "workflow": json.dumps(WORKFLOW)})
    media = _media(tmp_path, "comfy.jpg", _image_bytes("JPEG", _user_comment(text)))
    (item,) = generators.read(media)
    assert item.details["tool"] == "ComfyUI" and item.details["seed"] == 42


def test_a_json_user_comment_that_is_not_a_graph_is_not_ai(tmp_path: Path) -> None:
    text = json.dumps({"caption": "holiday", "rating": 5, "prompt": None})
    media = _media(tmp_path, "plain.jpg", _image_bytes("JPEG", _user_comment(text)))
    assert generators.read(media) == []


@pytest.mark.parametrize("make_key, description_key", [("Prompt", "Workflow"), ("prompt", "workflow"),
                                                       ("PROMPT", "WORKFLOW")])
def test_save_image_extended_prompt_in_make_is_comfyui_never_a_camera(
        tmp_path: Path, make_key: str, description_key: str) -> None:
    exif_obj = Image.Exif()
    exif_obj[0x010F] = f"{make_key}: {json.dumps(GRAPH)}"  # Make
    exif_obj[0x010E] = f"{description_key}: {json.dumps(WORKFLOW)}"  # ImageDescription
    media = _media(tmp_path, "extended.jpg", _image_bytes("JPEG", exif_obj))
    items, _warnings = collect(media)
    gen = [i for i in items if i.source == "generator"]
    assert len(gen) == 1 and gen[0].details["tool"] == "ComfyUI" and gen[0].strong
    assert gen[0].details["prompt"] == "a lighthouse at dusk"
    assert not [i for i in items if i.signal == "camera"], [i.summary for i in items]
    assert not any("EXIF names the camera" in i.summary for i in items)
    assert fuse(items, None, Thresholds()).verdict == "ai-generated"


def _png_with(texts: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    return _image_bytes("PNG", pnginfo=info)


def test_hugging_face_space_json_parameters(tmp_path: Path) -> None:
    params = {"prompt": "an astronaut riding a horse", "negative_prompt": "low quality", "seed": 7,
              "width": 768, "height": 512, "guidance_scale": 5.0, "num_inference_steps": 30}
    media = _media(tmp_path, "space.png", _png_with({"parameters": json.dumps(params)}))
    (item,) = generators.read(media)
    assert item.signal == "ai" and item.strong
    d = item.details
    assert "diffusers" in d["tool"] and d["tool"] != "AUTOMATIC1111"
    assert d["prompt"] == "an astronaut riding a horse" and d["negative_prompt"] == "low quality"
    assert d["seed"] == 7 and d["steps"] == 30 and d["size"] == "768x512"


def test_a_json_caption_alone_is_not_a_generation_request(tmp_path: Path) -> None:
    media = _media(tmp_path, "caption.png", _png_with({"parameters": json.dumps({"prompt": "see the sea"})}))
    assert [i for i in generators.read(media) if i.strong] == []


def test_ruined_fooocus_json_parameters(tmp_path: Path) -> None:
    params = {"Prompt": "a red fox in snow", "Negative": "cartoon", "steps": 30, "cfg": 8.0, "width": 1152,
              "height": 896, "seed": 123456, "sampler_name": "dpmpp_2m_sde_gpu", "scheduler": "karras",
              "base_model_name": "sd_xl_base_1.0_0.9vae.safetensors", "software": "RuinedFooocus"}
    media = _media(tmp_path, "ruined.png", _png_with({"parameters": json.dumps(params)}))
    (item,) = generators.read(media)
    d = item.details
    assert item.strong and d["tool"] == "RuinedFooocus"
    assert d["prompt"] == "a red fox in snow" and d["negative_prompt"] == "cartoon"
    assert d["seed"] == 123456 and d["steps"] == 30 and d["model"] == "sd_xl_base_1.0_0.9vae.safetensors"


INFOTEXT = ("a castle on a hill\nNegative prompt: fog\n"
            "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 99, Size: 512x512, "
            "Model hash: abc123, Model: dreamshaper_8")


@pytest.mark.parametrize("tail, tool", [
    (", Version: classic", "Stable Diffusion WebUI Forge Classic"),
    (", Version: neo", "Stable Diffusion WebUI Forge Neo"),
    (", Version: f2.0.1v1.10.1-previous-669-gdfdcbab6", "Stable Diffusion WebUI Forge"),
    (", Version: 5fb1a9c3e", "SD.Next"),
    (", App: SD.Next, Version: 2f9e3ab", "SD.Next"),
    (", Version: v1.10.1", "AUTOMATIC1111"),
])
def test_a1111_forks_are_named_by_their_version(tmp_path: Path, tail: str, tool: str) -> None:
    media = _media(tmp_path, "fork.png", _png_with({"parameters": INFOTEXT + tail}))
    (item,) = generators.read(media)
    assert item.details["tool"] == tool and item.details["seed"] == 99


def test_comfyui_save_image_with_metadata_is_not_automatic1111(tmp_path: Path) -> None:
    # Its parameters text: "CFG Scale" (capital S), "Hashes" JSON, and no Version.
    text = ("a castle on a hill\nNegative prompt: fog\nSteps: 20, Sampler: euler_karras, CFG Scale: 7.0, "
            'Seed: 99, Clip skip: 1, Size: 512x512, Model: dreamshaper_8, Model hash: abc123, Hashes: {"model": "abc123"}')
    media = _media(tmp_path, "swm.png", _png_with({"parameters": text}))
    (item,) = generators.read(media)
    assert item.details["tool"] == "ComfyUI (SaveImageWithMetaData)"
    assert item.details["cfg"] == 7.0 and item.details["seed"] == 99


def test_exif_reader_and_generators_reader_share_one_walker() -> None:
    """IFD0 Make/Model as Pillow writes them: the exif reader names the camera, and tiff_fields
    (the generators reader's view) gets the same tags' raw bytes from the same walk."""
    exif_obj = Image.Exif()
    exif_obj[0x010F] = "Canon"
    exif_obj[0x0110] = "Canon EOS R5"
    blob = exif_obj.tobytes()
    ifds = read_ifds(blob)
    assert ifds.text(ifds.ifd0[0x010F]) == "Canon" and ifds.text(ifds.ifd0[0x0110]) == "Canon EOS R5"
    fields, _order = tiff_fields(blob)
    assert fields["Make"] == b"Canon\0" and fields["Model"] == b"Canon EOS R5\0"


@pytest.mark.parametrize("header", [b"Exif\0\xff", b"Exif\0", b"exif\0\0"])
def test_exif_under_a_header_pillow_does_not_take_is_still_read(tmp_path: Path, header: bytes) -> None:
    """Pillow (and so info["exif"]) ignores an APP1 EXIF segment whose header is not exactly
    "Exif\\0\\0"; exiftool reads it with a warning. Both readers fall back on the segment's bytes."""
    exif_obj = _user_comment(json.dumps({"prompt": GRAPH}))
    exif_obj[0x010F] = "Canon"
    exif_obj[0x0110] = "Canon EOS 5D"
    tiff = exif_obj.tobytes()[6:]
    plain = _image_bytes("JPEG")
    body = header + tiff
    data = plain[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + plain[2:]
    media = _media(tmp_path, "odd-exif.jpg", data)
    assert not media.info.get("exif")  # Pillow gives nothing: the case the fallback is for
    (item,) = generators.read(media)
    assert item.details["tool"] == "ComfyUI" and item.details["seed"] == 42
    (camera,) = exif.read(media)
    assert camera.signal == "camera" and "Canon EOS 5D" in camera.summary
