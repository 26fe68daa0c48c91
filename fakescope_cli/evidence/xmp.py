"""XMP outside C2PA: IPTC DigitalSourceType, xmp:CreatorTool and the tools named in the edit history.

XMP is plain, unsigned text: anyone can write or strip it. A self-declared AI origin is still taken
as strong (a forger gains nothing by adding it); camera and editor hints stay weak.

Where the packet comes from: Pillow's ``info["xmp"]`` (JPEG APP1, PNG iTXt ``XML:com.adobe.xmp``,
WebP, TIFF tag 700) and, for containers Pillow does not expose (HEIF/AVIF via pillow-heif, GIF, or a
header Pillow cannot parse), a bounded scan of the raw bytes for ``<x:xmpmeta … </x:xmpmeta>``.

Parsing is defensive: packets that declare a DOCTYPE or ENTITY are rejected unparsed (XMP never
needs one, and it is the door to entity-expansion bombs and external entities); packets over
``MAX_PACKET`` are not handed to the XML parser — only a bounded regex looks for the two properties
that matter.

The DigitalSourceType vocabulary lives in source_types.py, the tool-name lists in tools.py (both are
shared with the C2PA reader).
"""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli.evidence.base import EvidenceItem, Signal
from fakescope_cli.evidence.c2pa_markers import has_manifest_marker
from fakescope_cli.evidence.source_types import dst_code, dst_signal
from fakescope_cli.evidence.tools import classify_tool, match_ai_tool, match_editor
from fakescope_cli.media import Media

NEEDS_PIXELS = False
SOURCE = "xmp"

MAX_PACKET = 1 << 20  # bytes handed to the XML parser
MAX_FALLBACK_SCAN = 8 << 20  # bytes of an oversized packet searched by regex
MAX_RAW_PACKETS = 4  # packets taken from a raw scan (HEIF files often carry two or three)
MAX_VALUES = 20  # values kept per property
MAX_TEXT = 300  # characters kept per value

# --- getting the packet -------------------------------------------------------------------------

def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return None


def _raw_packets(data: bytes) -> list[bytes]:
    """Up to MAX_RAW_PACKETS `<…xmpmeta …>…</…xmpmeta>` spans, each at most MAX_PACKET (+1 to flag)."""
    out: list[bytes] = []
    pos = 0
    while len(out) < MAX_RAW_PACKETS:
        hit = data.find(b"xmpmeta", pos)
        if hit < 0:
            break
        pos = hit + 7
        # Must be an opening tag: '<' then an optional 'prefix:' right before the name.
        lt = data.rfind(b"<", max(0, hit - 32), hit)
        if lt < 0 or data[lt + 1 : lt + 2] == b"/" or not re.fullmatch(rb"<([A-Za-z_][\w.-]*:)?", data[lt:hit]):
            continue
        end = data.find(b"xmpmeta>", pos, lt + MAX_PACKET + 16)
        if end < 0:
            # No close within the cap: hand over an oversized slice so the caller reports it.
            out.append(data[lt : lt + MAX_PACKET + 1])
            break
        out.append(data[lt : end + 8])
        pos = end + 8
    return out


def _packets(media: Media) -> tuple[list[bytes], str]:
    info = media.info
    packets: list[bytes] = []
    for key in ("xmp", "XML:com.adobe.xmp"):
        raw = _as_bytes(info.get(key))
        if raw and raw.strip(b"\x00 \t\r\n"):
            packets.append(raw)
            break
    if packets:
        return packets, "container"
    # A parsed header of these already exposes XMP when present; a raw scan there could pick up a
    # packet that belongs to an embedded thumbnail or a C2PA ingredient instead.
    if media.format in ("JPEG", "PNG", "WEBP") and media.header_error is None:
        return [], ""
    return _raw_packets(media.data), "raw-scan"


# --- parsing --------------------------------------------------------------------------------------

_DOCTYPE = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_TIFF_NS = "http://ns.adobe.com/tiff/1.0/"
_STEVT_NS = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
_PS_NS = "http://ns.adobe.com/photoshop/1.0/"
_DCTERMS_NS = "http://purl.org/dc/terms/"


def _normalise_encoding(packet: bytes) -> bytes:
    if packet[:2] in (b"\xff\xfe", b"\xfe\xff") or packet[:2] in (b"<\x00", b"\x00<"):
        try:
            return packet.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return packet
    return packet


def _root_span(packet: bytes) -> bytes | None:
    """The xmpmeta element (or a bare rdf:RDF) out of the packet, without xpacket wrapper or padding."""
    for name in (b"xmpmeta", b"RDF"):
        m = re.search(rb"<([A-Za-z_][\w.-]*:)?" + name + rb"[\s>/]", packet)
        if m:
            close = packet.rfind(name + b">")
            if close > m.start():
                return packet[m.start() : close + len(name) + 1]
    return None


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _element_value(el: Any) -> str | None:
    text = (el.text or "").strip()
    if text:
        return text
    res = el.get(f"{{{_RDF}}}resource")
    if res:
        return res.strip()
    for li in el.iter(f"{{{_RDF}}}li"):  # rdf:Alt / Seq / Bag: first non-empty item
        t = (li.text or "").strip()
        if t:
            return t
    return None


class _Found:
    """Property values gathered from one or more packets."""

    def __init__(self) -> None:
        self.props: dict[str, list[str]] = {}
        self.truncated = False

    def add(self, key: str, value: str | None) -> None:
        if not value:
            return
        value = value.strip()
        if not value:
            return
        if len(value) > MAX_TEXT:
            value, self.truncated = value[:MAX_TEXT], True
        vals = self.props.setdefault(key, [])
        if value in vals:
            return
        if len(vals) >= MAX_VALUES:
            self.truncated = True
            return
        vals.append(value)


def _property_key(ns: str, local: str) -> str | None:
    low = local.lower()
    if low == "digitalsourcetype":
        return "digital_source_type"
    if low == "creatortool":  # 'xmp:creatortool' in lower case exists in the wild
        return "creator_tool"
    if low == "software" and ns == _TIFF_NS:
        return "software"
    if low == "softwareagent" and ns == _STEVT_NS:
        return "history_agents"
    if low == "credit" and ns == _PS_NS:
        return "credit"
    if low == "provenance" and ns == _DCTERMS_NS:
        return "c2pa_remote_manifest"
    if low in ("make", "model") and ns == _TIFF_NS:
        return f"camera_{low}"
    return None


def _parse_xml(span: bytes, found: _Found) -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(span)  # no DTD (checked by the caller), so no entities to expand
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr, value in el.attrib.items():
            key = _property_key(*_split(attr))
            if key:
                found.add(key, value)
        key = _property_key(*_split(el.tag))
        if key:
            found.add(key, _element_value(el))


# Regex fallback for oversized packets: attribute form (name="value") and element form (<name>value<).
_FALLBACK = {
    "digital_source_type": re.compile(
        rb"DigitalSourceType\s*(?:=\s*[\"']([^\"'<>]{1,300})[\"']|>\s*([^<]{1,300})<|[^>]{0,200}?rdf:resource\s*=\s*[\"']([^\"']{1,300}))",
        re.IGNORECASE,
    ),
    "creator_tool": re.compile(
        rb"CreatorTool\s*(?:=\s*[\"']([^\"'<>]{1,300})[\"']|>\s*([^<]{1,300})<)", re.IGNORECASE
    ),
}


def _regex_scan(packet: bytes, found: _Found) -> None:
    for key, rx in _FALLBACK.items():
        for n, m in enumerate(rx.finditer(packet, 0, MAX_FALLBACK_SCAN)):
            if n >= MAX_VALUES:
                break
            raw = next((g for g in m.groups() if g), b"")
            found.add(key, raw.decode("utf-8", "replace"))


def _scan_packet(packet: bytes, found: _Found, problems: list[str]) -> None:
    packet = _normalise_encoding(packet)
    if _DOCTYPE.search(packet, 0, MAX_FALLBACK_SCAN):
        problems.append("XMP packet declares a DOCTYPE/ENTITY: rejected unparsed")
        return
    if len(packet) > MAX_PACKET:
        problems.append(f"XMP packet is over the {MAX_PACKET}-byte parse limit; "
                        "searched by pattern only")
        _regex_scan(packet, found)
        return
    span = _root_span(packet)
    if span is None:
        problems.append("XMP packet has no xmpmeta or rdf:RDF element")
        return
    try:
        _parse_xml(span, found)
    except Exception as exc:  # ParseError, and anything expat raises on hostile bytes
        problems.append(f"XMP packet is not well-formed XML ({type(exc).__name__}: {str(exc)[:120]}); "
                        "searched by pattern only")
        _regex_scan(span, found)


# --- judgement ------------------------------------------------------------------------------------

def _judge(props: dict[str, list[str]]) -> tuple[Signal, bool, list[str], dict[str, Any]]:
    """(signal, strong, reasons, classification details) from the gathered properties."""
    reasons: list[str] = []
    cls: dict[str, Any] = {}
    dst_signals = [(v, dst_signal(v)) for v in props.get("digital_source_type", [])]
    creator = props.get("creator_tool", [])
    creator_cls = [(v, *classify_tool(v)) for v in creator]
    agents = props.get("history_agents", []) + props.get("software", [])
    agent_ai = [(v, match_ai_tool(v)) for v in agents if match_ai_tool(v)]
    agent_editors = sorted({name for v in agents if (name := match_editor(v))})
    credit_ai = [(v, match_ai_tool(v)) for v in props.get("credit", []) if match_ai_tool(v)]
    if agent_editors:
        cls["editors"] = agent_editors

    ai_dst = [dst_code(v) for v, s in dst_signals if s == "ai"]
    comp_dst = [dst_code(v) for v, s in dst_signals if s == "ai-edited"]
    ai_creator = [(v, name) for v, s, name in creator_cls if s == "ai"]
    if ai_dst or ai_creator or credit_ai:
        reasons += [f"DigitalSourceType {c}" for c in ai_dst]
        reasons += [f"CreatorTool '{v}' ({name})" for v, name in ai_creator]
        reasons += [f"Credit '{v}' ({name})" for v, name in credit_ai]
        return "ai", True, reasons, cls
    if comp_dst or agent_ai:
        reasons += [f"DigitalSourceType {c}" for c in comp_dst]
        reasons += [f"edited with '{v}' ({name})" for v, name in agent_ai]
        return "ai-edited", True, reasons, cls
    cam_dst = [dst_code(v) for v, s in dst_signals if s == "camera"]
    cam_creator = [v for v, s, _ in creator_cls if s == "camera"]
    if cam_dst or cam_creator:
        reasons += [f"DigitalSourceType {c}" for c in cam_dst]
        reasons += [f"CreatorTool '{v}' looks like camera firmware" for v in cam_creator]
        if agent_editors:
            reasons.append("later edited in " + ", ".join(agent_editors))
        return "camera", False, reasons, cls
    edit_dst = [dst_code(v) for v, s in dst_signals if s == "editor"]
    edit_creator = [(v, name) for v, s, name in creator_cls if s == "editor"]
    if edit_dst or edit_creator or agent_editors:
        reasons += [f"DigitalSourceType {c}" for c in edit_dst]
        reasons += [f"CreatorTool '{v}' ({name})" for v, name in edit_creator]
        if agent_editors and not edit_creator:
            reasons.append("edited in " + ", ".join(agent_editors))
        return "editor", False, reasons, cls
    reasons += [f"DigitalSourceType {dst_code(v)}" for v, _ in dst_signals]
    reasons += [f"CreatorTool '{v}' (not a known generator, editor or camera)" for v in creator]
    return "none", False, reasons, cls


def _provenance_note(media: Media, refs: list[str], details: dict[str, Any]) -> str | None:
    """What dcterms:provenance (the C2PA manifest reference) says about this file."""
    if not refs:
        return None
    ref = refs[0]
    if ref.startswith("self#jumbf"):
        if has_manifest_marker(media.data, media.format):
            return None  # the C2PA reader reports the manifest itself
        details["c2pa_manifest_missing"] = True
        return "refers to an embedded C2PA manifest the file no longer carries (Content Credentials stripped)"
    return f"references Content Credentials at {ref} (not fetched)"


_GRAPH_TEXT = re.compile(r"\s*(prompt|workflow)\s*:\s*\{", re.IGNORECASE)  # ComfyUI savers' "Prompt: {…}"

_REPORTED = ("digital_source_type", "creator_tool", "software", "history_agents", "credit",
             "c2pa_remote_manifest", "camera_make", "camera_model")


def _camera(props: dict[str, list[str]]) -> str | None:
    """The camera tiff:Make/Model name, or None (also when the "camera" is a generator's name)."""
    make = next(iter(props.get("camera_make", [])), None)
    model = next(iter(props.get("camera_model", [])), None)
    if any(v and (match_ai_tool(v) or _GRAPH_TEXT.match(v)) for v in (make, model)):
        return None  # not a camera; a generator writing its name or graph there is not a capture claim
    if make and model:
        # "Canon" + "Canon EOS R5" reads "Canon EOS R5", as the EXIF reader words it.
        return model if model.lower().startswith(make.split()[0].lower()) else f"{make} {model}"
    return make or model


def read(media: Media) -> list[EvidenceItem]:
    packets, origin = _packets(media)
    if not packets:
        return []
    found = _Found()
    problems: list[str] = []
    for packet in packets:
        _scan_packet(packet, found, problems)
    props = found.props
    if not any(props.get(k) for k in _REPORTED):
        if not problems:
            return []  # XMP with nothing that speaks to provenance (ratings, dates …)
        # Metadata there but unread: "unreadable" lets fusion say so instead of "nothing found".
        return [EvidenceItem(SOURCE, "none", problems[0],
                             {"problems": problems, "packets": len(packets), "from": origin, "unreadable": True})]

    signal, strong, reasons, cls = _judge(props)
    camera = _camera(props)
    camera_item: EvidenceItem | None = None
    if camera is not None:
        said = f"camera {camera} (tiff:Make/Model)"
        if signal == "camera" or (signal == "none" and not reasons):
            signal = "camera"  # the packet's own capture claim, or the only thing it says
            reasons.append(said)
        else:
            # A camera named beside another claim is a claim of its own: a separate weak hint.
            camera_item = EvidenceItem(SOURCE, "camera", f"XMP names the {said}",
                                       {"camera_make": props.get("camera_make", [])[:1],
                                        "camera_model": props.get("camera_model", [])[:1], "from": origin})
    details: dict[str, Any] = {k: v for k, v in props.items()}
    details.update(cls)
    details["from"] = origin
    details["packets"] = len(packets)
    if problems:
        details["problems"] = problems
    if found.truncated:
        details["truncated"] = True
    details["reasons"] = reasons

    lead = {
        "ai": "XMP declares AI generation",
        "ai-edited": "XMP declares an edit with generative AI",
        "camera": "XMP points to a camera capture",
        "editor": "XMP names an image editor",
        "none": "XMP names a source that says nothing about AI, camera or editor",
    }[signal]
    if signal == "camera" and reasons == [f"camera {camera} (tiff:Make/Model)"]:
        summary = f"XMP names the {reasons[0]}"
    else:
        summary = f"{lead}: {'; '.join(reasons)}" if reasons else ""
    note = _provenance_note(media, props.get("c2pa_remote_manifest", []), details)
    if note:
        summary = f"{summary}; {note}" if summary else f"XMP {note}"
    if not summary:
        if not problems:
            return [camera_item] if camera_item else []  # only a reference the C2PA reader reports
        summary = "XMP present but unusable"
        details["unreadable"] = True
    if problems:
        summary += f" ({problems[0]})"
    item = EvidenceItem(SOURCE, signal, summary[:600], details, strong)
    return [item, camera_item] if camera_item else [item]
