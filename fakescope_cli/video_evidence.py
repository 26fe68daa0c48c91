"""Provenance in video containers: C2PA in MP4/MOV/AVI, and what the container's tags say.

The XMP packet (MP4 'uuid' box, QuickTime 'XMP_' atom; Matroska tags through PyAV) goes to the
image XMP reader unchanged (VideoMedia.info carries it), so IPTC DigitalSourceType and CreatorTool
mean the same in a video as in a still. C2PA manifests in BMFF are read by c2pa-python (offline)
and judged by the image C2PA reader's `assess_store`. This module adds the container's own tags:
encoder/software strings, camera make/model (QuickTime udta '©mak'/'©mod', Apple's
com.apple.quicktime.* keys, Android's com.android.* keys), and generator traces (see
docs/design-notes.md, "Video evidence", for the sources of each pattern).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.video import VideoFacts, VideoMedia

SOURCE = "container"
C2PA_MIME_TYPES = {"MP4": "video/mp4", "MOV": "video/quicktime", "AVI": "video/x-msvideo"}

# Video generators as they name themselves in encoder/software/comment tags and claim generators.
# Short and specific on purpose: a false match is a strong "ai". Image tools (xmp.AI_TOOLS) are
# matched as well.
VIDEO_AI_TOOLS: tuple[tuple[str, str], ...] = (
    ("OpenAI Sora", r"\bsora\b"),
    ("Google Veo", r"\bveo\s?\d|\bgoogle veo\b"),
    ("Runway", r"\brunway(ml)?\b.*\bgen-?\d|\brunwayml\b"),
    ("Kling", r"\bkling\b|kuaishou"),
    ("Pika", r"\bpika\s?(labs|art|\d)"),
    ("Luma Dream Machine", r"dream machine|\blumalabs\b|luma ai"),
    ("MiniMax Hailuo", r"\bhailuo\b|minimax"),
    ("HunyuanVideo", r"hunyuan\s?video"),
    ("Wan", r"\bwan\s?2\.\d|\bwan-?video\b|\bwanx\b"),
    ("CogVideoX", r"cogvideo"),
    ("LTX-Video", r"\bltx-?video\b|\bltxv\b"),
    ("Mochi", r"\bmochi[\s-]?1\b"),
    ("AnimateDiff", r"animatediff"),
    ("Stable Video Diffusion", r"stable video diffusion|\bsvd[\s_-]?xt\b"),
    ("Synthesia", r"synthesia"),
    ("HeyGen", r"\bheygen\b"),
    ("D-ID", r"\bd-id\b"),
)
_VIDEO_AI_RES = tuple((name, re.compile(rx, re.IGNORECASE)) for name, rx in VIDEO_AI_TOOLS)

# Keys by meaning, as QuickTime udta atoms, Apple/Android metadata keys and FFmpeg's tag names spell them.
TOOL_KEYS = ("©too", "©swr", "©enc", "encoder", "software", "com.apple.quicktime.software",
             "encoded_by", "ENCODER", "WRITING_APP", "writing_app", "ENCODED_BY", "creation_tool")
MAKE_KEYS = ("©mak", "com.apple.quicktime.make", "com.android.manufacturer", "make")
MODEL_KEYS = ("©mod", "com.apple.quicktime.model", "com.android.model", "model")
DATE_KEYS = ("com.apple.quicktime.creationdate", "©day", "creation_time", "date", "DATE_RECORDED")
TEXT_KEYS = ("©cmt", "comment", "COMMENT", "description", "©des", "title", "©nam", "©inf",
             "com.apple.quicktime.description", "com.apple.quicktime.comment", "synopsis")
_FFMPEG_MUXER = re.compile(r"^lavf\d", re.IGNORECASE)


def match_video_ai_tool(text: str) -> str | None:
    from fakescope_cli.evidence.xmp import match_ai_tool

    norm = text.replace("_", " ")
    for name, rx in _VIDEO_AI_RES:
        if rx.search(norm):
            return name
    return match_ai_tool(text)


def _first(tags: dict[str, str], keys: tuple[str, ...]) -> tuple[str, str] | None:
    lowered = {k.lower(): (k, v) for k, v in tags.items()}
    for key in keys:
        hit = lowered.get(key.lower())
        if hit and hit[1].strip():
            return hit
    return None


def read(media: VideoMedia, facts: VideoFacts) -> list[EvidenceItem]:
    """Evidence from the container (C2PA through c2pa-python; tags); never raises for bad data."""
    items = _c2pa(media)
    items.extend(tag_evidence(facts.tags))
    return items


def tag_evidence(tags: dict[str, str]) -> list[EvidenceItem]:
    """Items for what the container's tags say: a generator's workflow graph (strong), a generator's
    name (a hint), an editor or encoder, a camera make/model (weak)."""
    out: list[EvidenceItem] = []
    comfy = _comfy_workflow(tags)
    if comfy is not None:
        out.append(comfy)
    tool = _first(tags, TOOL_KEYS)
    texts = [hit for k in TEXT_KEYS if (hit := _first(tags, (k,)))]
    for key, value in ([tool] if tool else []) + texts:
        name = match_video_ai_tool(value)
        if name and not any(i.signal == "ai" for i in out):
            # A name in a free-text tag is a hint, as a Software string naming a generator is in an
            # image: anyone can type it. The workflow graph above, or a signed manifest, decides.
            out.append(EvidenceItem(SOURCE, "ai", f"Video metadata names the generator {name} ({key}: "
                                    f"{_short(value)})", {"key": key, "value": _short(value, 300),
                                                          "generator": name}))
    if tool and not any(i.signal == "ai" for i in out):
        key, value = tool
        from fakescope_cli.evidence.xmp import match_editor

        editor = match_editor(value) or _video_editor(value)
        if editor:
            out.append(EvidenceItem(SOURCE, "editor", f"Video written by {editor} ({key}: {_short(value)})",
                                    {"key": key, "value": _short(value, 300), "editor": editor}))
        elif _FFMPEG_MUXER.search(value.strip()):
            out.append(EvidenceItem(SOURCE, "editor", f"Video written by FFmpeg's libavformat ({value.strip()[:40]}): "
                                    "re-encoded or remuxed by software, not as a camera wrote it",
                                    {"key": key, "value": _short(value, 300), "editor": "FFmpeg"}))
        else:
            out.append(EvidenceItem(SOURCE, "none", f"Video encoder/software tag: {_short(value)}",
                                    {"key": key, "value": _short(value, 300)}))
    make, model = _first(tags, MAKE_KEYS), _first(tags, MODEL_KEYS)
    if make or model:
        name = " ".join(v for v in ((make or ("", ""))[1].strip(), (model or ("", ""))[1].strip()) if v)
        if make and model and model[1].lower().startswith(make[1].split()[0].lower()):
            name = model[1].strip()
        date = _first(tags, DATE_KEYS)
        details: dict[str, Any] = {"make": make[1] if make else None, "model": model[1] if model else None,
                                   "keys": [hit[0] for hit in (make, model) if hit]}
        if date:
            details["creation_date"] = _short(date[1], 60)
        if not match_video_ai_tool(name):
            out.append(EvidenceItem(SOURCE, "camera", f"Video metadata names the camera {_short(name)}"
                                    + (f", recorded {_short(date[1], 40)}" if date else ""), details))
    return out


_VIDEO_EDITORS = (("Adobe Premiere", r"premiere"), ("Adobe After Effects", r"after effects"),
                  ("Final Cut Pro", r"final cut"), ("DaVinci Resolve", r"davinci|resolve"),
                  ("iMovie", r"\bimovie\b"), ("CapCut", r"capcut"), ("HandBrake", r"handbrake"),
                  ("Shotcut", r"shotcut"), ("Kdenlive", r"kdenlive"), ("OpenShot", r"openshot"),
                  ("Adobe Media Encoder", r"media encoder"), ("Apple Compressor", r"\bcompressor\b"))
_VIDEO_EDITOR_RES = tuple((n, re.compile(rx, re.IGNORECASE)) for n, rx in _VIDEO_EDITORS)


def _video_editor(text: str) -> str | None:
    return next((name for name, rx in _VIDEO_EDITOR_RES if rx.search(text)), None)


def _comfy_workflow(tags: dict[str, str]) -> EvidenceItem | None:
    """ComfyUI's video nodes (VideoHelperSuite's Video Combine) write the prompt graph and workflow
    as JSON into the container's 'comment' tag (FFmpeg -metadata): a generator trace."""
    hit = _first(tags, ("comment", "©cmt", "COMMENT"))
    if hit is None:
        return None
    key, value = hit
    text = value.strip()
    if not text.startswith("{") or ("class_type" not in text and '"nodes"' not in text):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    nodes: list[str] = []
    if isinstance(parsed, dict):
        graph = parsed.get("prompt") if isinstance(parsed.get("prompt"), dict) else parsed
        nodes = sorted({str(n.get("class_type"))[:60] for n in graph.values()
                        if isinstance(n, dict) and n.get("class_type")})[:20]
    return EvidenceItem(SOURCE, "ai", f"Video metadata holds a ComfyUI workflow ({key} tag)",
                        {"key": key, "generator": "ComfyUI", "nodes": nodes, "parsed": parsed is not None},
                        strong=True)


def _c2pa(media: VideoMedia) -> list[EvidenceItem]:
    """Content Credentials in an MP4/MOV/AVI, read offline and judged as for images."""
    from fakescope_cli.evidence import c2pa as c2pa_reader

    mime = C2PA_MIME_TYPES.get(media.container)
    if mime is None:
        return []
    marker = media.facts.c2pa_box or c2pa_reader.has_manifest_marker(media.data, None)
    if not marker:
        return []

    def unreadable(summary: str, exc: BaseException | None = None) -> EvidenceItem:
        details = {"unreadable": True}
        if exc is not None:
            details |= {"error": str(exc)[:300] or type(exc).__name__, "error_type": type(exc).__name__}
        return EvidenceItem("c2pa", "none", summary[:600], details)

    try:
        import c2pa as lib
    except ImportError as exc:
        return [unreadable("C2PA data may be present, but c2pa-python is not installed", exc)]
    try:
        reader = lib.Reader.try_create(mime, io.BytesIO(media.data), None, c2pa_reader.offline_context(lib))
        if reader is None:
            return []
        with reader:
            text = reader.json()
        store = json.loads(text)
    except Exception as exc:  # the native layer on hostile bytes: report, never crash the scan
        return [unreadable(f"C2PA data present but cannot be read: {str(exc)[:200]}", exc)]
    if not isinstance(store, dict):
        return [unreadable("C2PA manifest store JSON is not an object")]
    return [c2pa_reader.assess_store(store)]


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
