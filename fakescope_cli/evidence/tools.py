"""Generative tools, editors and camera firmware as they name themselves in CreatorTool, C2PA claim
generators and softwareAgent fields (used by the XMP and C2PA readers)."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base imports this module (weak_sign_note)
    from fakescope_cli.evidence.base import Signal

# Generative image services and tools as they name themselves in CreatorTool, claim generators and
# softwareAgent fields. Kept short and specific on purpose: a false match turns into a strong "ai".
AI_TOOLS: tuple[tuple[str, str], ...] = (
    ("Midjourney", r"midjourney"),
    ("DALL·E", r"\bdall[\s\-·・.]?e\b"),
    ("Adobe Firefly", r"\bfirefly\b"),
    ("Stable Diffusion", r"stable[\s\-]?diffusion|\bsdxl\b|stability\s?ai|dreamstudio"),
    ("ComfyUI", r"comfy\s?ui"),
    ("AUTOMATIC1111", r"automatic1111"),
    ("InvokeAI", r"invoke\s?ai"),
    ("Fooocus", r"fooocus"),
    ("NovelAI", r"novel\s?ai\b"),
    ("Google Imagen / Gemini", r"google\s+imagen|\bimagen\s*\d|made with google ai|\bgemini\b"),
    ("Ideogram", r"ideogram"),
    ("Leonardo.Ai", r"leonardo[\s.]?ai"),
    ("OpenAI (ChatGPT, GPT image)", r"chatgpt|\bgpt-?4o\b|gpt[\s\-]?image|\bopenai\b"),
    ("Microsoft Designer / Bing Image Creator", r"bing image creator|microsoft designer"),
    ("FLUX (Black Forest Labs)", r"\bflux(\.1)?[\s\-.]?(dev|schnell|pro|kontext)|black forest labs"),
    ("Kandinsky", r"kandinsky"),
    ("Playground AI", r"playground\s?(ai|v\d)"),
    ("Recraft", r"\brecraft\b"),
)
# Editors and raw developers (including the camera makers' own desktop software, which must be
# tested before the camera patterns below).
EDITOR_TOOLS: tuple[tuple[str, str], ...] = (
    ("Adobe Lightroom", r"lightroom"),  # before Photoshop: "Adobe Photoshop Lightroom 6.2"
    ("Adobe Photoshop", r"photoshop"),
    ("Adobe Camera Raw", r"camera raw"),
    ("Adobe Fireworks", r"\bfireworks\b"),
    ("Adobe Illustrator", r"\billustrator\b"),
    ("GIMP", r"\bgimp\b"),
    ("Affinity Photo", r"\baffinity\b"),
    ("Capture One", r"capture\s?one"),
    ("darktable", r"darktable"),
    ("RawTherapee", r"rawtherapee"),
    ("Paint.NET", r"paint\.net"),
    ("Pixelmator", r"pixelmator"),
    ("Krita", r"\bkrita\b"),
    ("Snapseed", r"snapseed"),
    ("Luminar", r"\bluminar\b"),
    ("ACDSee", r"acdsee"),
    ("DxO", r"\bdxo\b"),
    ("ON1", r"\bon1\b"),
    ("Corel PaintShop", r"paint\s?shop|\bcorel\b"),
    ("Picasa", r"picasa"),
    ("Windows Photo Gallery / Photos", r"windows photo|microsoft photos|windows live photo"),
    ("Apple Photos / Aperture", r"\baperture\b|\biphoto\b"),
    ("Canon Digital Photo Professional", r"digital photo professional"),
    ("Nikon NX / ViewNX", r"capture\s?nx|nx studio|view\s?nx"),
    ("Olympus / OM Workspace", r"olympus (viewer|workspace)|om workspace"),
    ("Sony Imaging Edge", r"imaging edge|playmemories"),
    ("SILKYPIX", r"silkypix"),
    ("Photopea", r"photopea"),
    ("Canva", r"\bcanva\b"),
    ("PhotoScape", r"photoscape"),
    ("IrfanView", r"irfanview"),
    ("XnView", r"xnview"),
    ("digiKam", r"digikam"),
    ("ImageMagick", r"imagemagick|graphicsmagick"),
    ("PaintTool SAI", r"painttool"),
    ("Clip Studio Paint", r"clip studio"),
    ("Procreate", r"procreate"),
    ("PicsArt", r"picsart"),
)
# What cameras write as CreatorTool: a bare firmware string ("Ver.1.00", "Firmware Version 1.1"),
# a maker model plus version ("COOLPIX P1V1.0", "Digital Camera X-T3 Ver3.20"), Pixel's "HDR+ 1.0".
# A bare version number ("14.4.2", as iOS writes) is not enough: screenshots carry it too.
CAMERA_FIRMWARE = re.compile(
    r"^\s*(ver(sion)?[\s.]*\d|firmware\b|fw\s*\d)"
    r"|\bdigital camera\b|\bhdr\+"
    r"|\b(canon|nikon|coolpix|fujifilm|finepix|olympus|panasonic|lumix|pentax|leica|hasselblad|ricoh"
    r"|sony|ilce|gopro|dji|kodak|sigma|minolta|casio|samsung)\b.*\bv(er)?\.?\s*\d",
    re.IGNORECASE,
)


@cache
def _compiled(table: tuple[tuple[str, str], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    # Compiled when a file first names a tool: ~2 ms of every run otherwise, and most files name none.
    return tuple((name, re.compile(rx, re.IGNORECASE)) for name, rx in table)


def _normalise_tool(text: str) -> str:
    # "Adobe_Firefly", "stable_diffusion": underscores defeat word boundaries.
    return text.replace("_", " ")


def match_ai_tool(text: str) -> str | None:
    """The AI generator a tool string names, or None."""
    norm = _normalise_tool(text)
    for name, rx in _compiled(AI_TOOLS):
        if rx.search(norm):
            return name
    return None


def match_editor(text: str) -> str | None:
    norm = _normalise_tool(text)
    for name, rx in _compiled(EDITOR_TOOLS):
        if rx.search(norm):
            return name
    return None


def classify_tool(text: str) -> tuple[Signal, str | None]:
    """(signal, matched name) for a CreatorTool-like string: ai, editor, camera or none."""
    ai = match_ai_tool(text)
    if ai:
        return "ai", ai
    editor = match_editor(text)
    if editor:
        return "editor", editor
    if CAMERA_FIRMWARE.search(text):
        return "camera", None
    return "none", None
