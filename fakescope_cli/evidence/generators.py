"""Generator metadata: the parameters AI image tools write into the files they save.

Recognised, each as one strong `ai` item naming the tool:
- AUTOMATIC1111 and its forks: PNG text `parameters`; JPEG/WebP EXIF UserComment; "stealth"
  copies hidden in the alpha channel or the RGB low bits (only when pixels may be decoded).
- ComfyUI: PNG `prompt` (API graph) and `workflow` (UI graph) JSON; WebP EXIF Make/Model
  `prompt:{…}` / `workflow:{…}` as its SaveAnimatedWEBP node writes them.
- InvokeAI: `invokeai_metadata` (3.x+), `sd-metadata` (2.x), `Dream` (1.x).
- NovelAI: `Software`=NovelAI with `Comment` JSON and `Description`; also its alpha "stealth" copy.
- Fooocus: `fooocus_scheme` with `parameters` JSON (or A1111 text), and its JPEG EXIF form.
- SwarmUI: `parameters` JSON with `sui_image_params`.
A text field that merely names a generator (PNG `Software`, `Comment`…) is a weak hint only.

Format facts were learned from the tools' public sources and sample files
(d3x-at/sd-parsers fixtures, ComfyUI nodes, the sd-webui-stealth-pnginfo extension, Fooocus
meta_parser); the code is our own. Everything is bounded: JSON above a size cap is not parsed,
text is truncated, and graphs are walked with visit limits.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.errors import InputError
from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.media import MAX_TEXT_CHUNK, Media

# Pixels are optional (stealth metadata only) and used only when media.allow_pixels.
NEEDS_PIXELS = False

SOURCE = "generator"
MAX_PROMPT = 2000  # characters kept of a prompt / negative prompt
MAX_FIELD = 256  # characters kept of a model name, sampler …
MAX_JSON = 2_000_000  # characters: larger JSON is not parsed (the tool is still reported)
MAX_LATE_TEXT = MAX_TEXT_CHUNK  # bytes of PNG text read from the raw chunks (Pillow's bound)
MAX_EXIF_VALUE = 4 << 20  # bytes of one EXIF text value (WebP EXIF may hold whole workflows)
MAX_STEALTH_BYTES = 1 << 20  # hidden payload, compressed
MAX_STEALTH_TEXT = 4 << 20  # hidden payload after gunzip
MAX_GRAPH_NODES = 5000
_STEALTH_SIGS = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}


@dataclass
class _Finding:
    tool: str
    fmt: str  # metadata format, e.g. "a1111-parameters"
    location: str  # where it was found, e.g. "PNG text 'parameters'"
    fields: dict[str, Any] = field(default_factory=dict)
    parsed: bool = True
    truncated: bool = False

    def put_text(self, key: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip() or key in self.fields:
            return
        value = value.strip()
        if len(value) > MAX_PROMPT:
            value = value[:MAX_PROMPT]
            self.truncated = True
        self.fields[key] = value

    def put(self, key: str, value: Any) -> None:
        """Store a short scalar: bounded string, finite number; anything else is dropped."""
        if value is None or isinstance(value, bool) or key in self.fields:
            return
        if isinstance(value, int):
            if abs(value) < 10**20:  # seeds are at most 64-bit; longer "numbers" are junk
                self.fields[key] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                self.fields[key] = int(value) if key in ("seed", "steps") and value.is_integer() else value
        elif isinstance(value, str) and value.strip():
            self.fields[key] = value.strip()[:MAX_FIELD]

    def item(self) -> EvidenceItem:
        details: dict[str, Any] = {"tool": self.tool, "format": self.fmt, "location": self.location}
        details.update(self.fields)
        if not self.parsed:
            details["parsed"] = False
        if self.truncated:
            details["truncated"] = True
        model = f", model {self.fields['model']}" if "model" in self.fields else ""
        summary = f"{self.tool} generation metadata in {self.location}{model}."
        return EvidenceItem(SOURCE, "ai", summary, details, strong=True)


# ---------------------------------------------------------------- small helpers


def _json(text: Any) -> Any:
    """Parse JSON defensively: size cap, NaN/Infinity become None, errors give None."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or len(text) > MAX_JSON:
        return None
    try:
        return json.loads(text, parse_constant=lambda _c: None)
    except (ValueError, RecursionError):
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,30}\s*", value):
        return int(value)
    return None


def _num(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        if math.isfinite(number):
            return int(number) if number.is_integer() and "." not in value else number
    return None


def _size(width: Any, height: Any) -> str | None:
    w, h = _int(width), _int(height)
    return f"{w}x{h}" if w and h and w > 0 and h > 0 else None


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


# ---------------------------------------------------------------- AUTOMATIC1111 text

# One "Key: value" pair of the parameters line; values may be JSON-quoted strings with commas.
_A1111_PAIR = re.compile(r'\s*([A-Za-z][\w \-/+.()]{0,63}?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_A1111_STEPS = re.compile(r"^\s*Steps: \d+")


def _a1111_parse(text: str) -> tuple[str, str, dict[str, str]] | None:
    """Split A1111 infotext into prompt, negative prompt and the parameters line.

    Returns None unless a line starting with "Steps: N" also names a sampler or a seed, which
    keeps free-text comments from being mistaken for generator output.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if _A1111_STEPS.match(lines[index]):
            break
    else:
        return None
    pairs: dict[str, str] = {}
    for key, value in _A1111_PAIR.findall(lines[index][:20000]):
        value = value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            unquoted = _json(value)
            value = unquoted if isinstance(unquoted, str) else value[1:-1]
        pairs.setdefault(key.strip(), value)
    if "Sampler" not in pairs and "Seed" not in pairs:
        return None
    body = lines[:index]
    negative: list[str] = []
    prompt: list[str] = []
    target = prompt
    for line in body:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:") :]
        target.append(line)
    return "\n".join(prompt), "\n".join(negative), pairs


def _a1111_tool(version: str | None, default: str = "AUTOMATIC1111") -> str:
    if not version:
        return default
    if version.lower().startswith("fooocus"):
        return "Fooocus"
    if re.match(r"f\d+\.\d+", version):  # Forge tags its builds "f<forge>v<a1111>"
        return "Stable Diffusion WebUI Forge"
    if version.lower().startswith("comfyui"):
        return "ComfyUI"
    return default


def _fill_a1111(finding: _Finding, parsed: tuple[str, str, dict[str, str]]) -> None:
    prompt, negative, pairs = parsed
    finding.put_text("prompt", prompt)
    finding.put_text("negative_prompt", negative)
    finding.put("model", pairs.get("Model"))
    finding.put("model_hash", pairs.get("Model hash"))
    finding.put("sampler", pairs.get("Sampler"))
    finding.put("scheduler", pairs.get("Schedule type"))
    finding.put("seed", _int(pairs.get("Seed")))
    finding.put("steps", _int(pairs.get("Steps")))
    finding.put("cfg", _num(pairs.get("CFG scale")))
    finding.put("size", pairs.get("Size"))
    finding.put("version", pairs.get("Version"))


def _from_a1111_text(text: str, location: str, *, lenient: bool) -> _Finding | None:
    """A1111 infotext; `lenient` reports the tool even when the text does not parse
    (the PNG key `parameters` is the A1111 convention, an EXIF comment is not)."""
    parsed = _a1111_parse(text)
    if parsed is None:
        if not lenient or not text.strip():
            return None
        return _Finding("AUTOMATIC1111", "a1111-parameters", location, parsed=False)
    finding = _Finding(_a1111_tool(parsed[2].get("Version")), "a1111-parameters", location)
    _fill_a1111(finding, parsed)
    return finding


# ---------------------------------------------------------------- Fooocus / SwarmUI


def _from_fooocus_json(data: dict[str, Any], location: str) -> _Finding:
    finding = _Finding("Fooocus", "fooocus-json", location)
    finding.put_text("prompt", data.get("prompt"))
    finding.put_text("negative_prompt", data.get("negative_prompt"))
    finding.put("model", data.get("base_model"))
    finding.put("refiner_model", data.get("refiner_model") if data.get("refiner_model") != "None" else None)
    finding.put("sampler", data.get("sampler"))
    finding.put("scheduler", data.get("scheduler"))
    finding.put("seed", _int(data.get("seed")))
    finding.put("steps", _int(data.get("steps")))
    finding.put("cfg", _num(data.get("guidance_scale")))
    resolution = data.get("resolution")
    if isinstance(resolution, str):
        match = re.fullmatch(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", resolution.strip())
        if match:
            finding.put("size", _size(match.group(1), match.group(2)))
    finding.put("version", data.get("version"))
    return finding


def _from_swarm_json(data: dict[str, Any], location: str) -> _Finding:
    finding = _Finding("SwarmUI", "swarmui-json", location)
    params = data.get("sui_image_params")
    if isinstance(params, dict):
        finding.put_text("prompt", params.get("prompt"))
        finding.put_text("negative_prompt", params.get("negativeprompt"))
        finding.put("model", params.get("model"))
        finding.put("sampler", params.get("sampler"))
        finding.put("scheduler", params.get("scheduler"))
        finding.put("seed", _int(params.get("seed")))
        finding.put("steps", _int(params.get("steps")))
        finding.put("cfg", _num(params.get("cfgscale")))
        finding.put("size", _size(params.get("width"), params.get("height")))
        finding.put("version", params.get("swarm_version"))
    return finding


# ---------------------------------------------------------------- ComfyUI

_LOADER_KEYS = ("ckpt_name", "unet_name", "model_path")
_TEXT_KEYS = ("text", "text_g", "text_l", "t5xxl", "clip_l", "prompt")
_SCALAR_ALIASES = ("value", "int", "seed", "number", "float", "string", "text")
# Inputs that lead away from the conditioning (prompt) chain or into other samplers.
_NOT_CONDITIONING = frozenset(
    "clip model vae clip_vision image pixels samples latent latent_image control_net mask "
    "style_model upscale_model".split()
)
_NOT_PARAMS = frozenset({"positive", "negative", "latent_image", "conditioning", "model", "image"})
_MODEL_FILE = re.compile(r"\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$", re.IGNORECASE)


def _node_order(node_id: str) -> tuple[int, int, str]:
    # isdecimal, not isdigit: int() rejects digits such as "³" that isdigit accepts (found by fuzzing).
    return (0, int(node_id), "") if node_id.isdecimal() and len(node_id) < 12 else (1, 0, node_id)


class _ApiGraph:
    """ComfyUI's API-format prompt: {node_id: {"class_type": str, "inputs": {...}}}."""

    def __init__(self, graph: dict[str, Any]) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        for node_id, node in list(graph.items())[:MAX_GRAPH_NODES]:
            if isinstance(node, dict) and isinstance(node.get("inputs"), dict):
                self.nodes[str(node_id)] = node

    def cls(self, node_id: str) -> str:
        value = self.nodes[node_id].get("class_type")
        return value if isinstance(value, str) else ""

    def inputs(self, node_id: str) -> dict[str, Any]:
        return self.nodes[node_id]["inputs"]

    def link(self, value: Any) -> str | None:
        """A link is [source_node_id, output_index]."""
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
            target = str(value[0])
            if target in self.nodes:
                return target
        return None

    def samplers(self) -> list[str]:
        found = [
            node_id
            for node_id, node in self.nodes.items()
            if "latent_image" in node["inputs"] and ({"positive", "guider"} & node["inputs"].keys())
        ]
        return sorted(found, key=self._sampler_rank)

    def _sampler_rank(self, node_id: str) -> tuple[Any, ...]:
        # The first pass of the generation: starts from an empty latent, adds noise, lowest id.
        inputs = self.inputs(node_id)
        latent = self.link(inputs.get("latent_image"))
        from_empty = latent is not None and "Empty" in self.cls(latent) and "Latent" in self.cls(latent)
        no_noise = inputs.get("add_noise") == "disable"
        return (not from_empty, no_noise, _node_order(node_id))

    def scalar(self, node_id: str, keys: tuple[str, ...]) -> Any:
        """A parameter on the node itself, through one link to a primitive, or on a
        neighbouring helper node (RandomNoise, KSamplerSelect, BasicScheduler, CFGGuider)."""
        inputs = self.inputs(node_id)
        for key in keys:
            if key in inputs:
                value = self._resolve(inputs[key], keys)
                if value is not None:
                    return value
        frontier = [node_id]
        seen = {node_id}
        for _depth in range(2):
            nxt: list[str] = []
            for current in frontier:
                for name, value in self.inputs(current).items():
                    target = self.link(value)
                    if target is None or target in seen or name in _NOT_PARAMS:
                        continue
                    seen.add(target)
                    nxt.append(target)
                    for key in keys:
                        if key in self.inputs(target):
                            found = self._resolve(self.inputs(target)[key], keys)
                            if found is not None:
                                return found
            frontier = nxt
        return None

    def _resolve(self, value: Any, keys: tuple[str, ...]) -> Any:
        target = self.link(value)
        if target is None:
            return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        inputs = self.inputs(target)
        for key in keys + _SCALAR_ALIASES:
            candidate = inputs.get(key)
            if isinstance(candidate, (str, int, float)) and not isinstance(candidate, bool):
                return candidate
        return None

    def model_for(self, node_id: str) -> str | None:
        """The checkpoint / UNet feeding this sampler (through LoRA and patch nodes)."""
        order = ("model", "guider", "sigmas")
        inputs = self.inputs(node_id)
        queue = [t for t in (self.link(inputs.get(k)) for k in order) if t is not None]
        seen = set(queue)
        visits = 0
        while queue and visits < 200:
            current = queue.pop(0)
            visits += 1
            name = self._loader_name(current)
            if name:
                return name
            for key, value in self.inputs(current).items():
                target = self.link(value)
                if (
                    target is not None
                    and target not in seen
                    and key not in ("positive", "negative", "latent_image")
                ):
                    seen.add(target)
                    queue.append(target)
        return None

    def _loader_name(self, node_id: str) -> str | None:
        inputs = self.inputs(node_id)
        for key in _LOADER_KEYS:
            value = inputs.get(key)
            if isinstance(value, str) and value.strip():
                return value
        return None

    def all_models(self) -> list[str]:
        names: list[str] = []
        for node_id in sorted(self.nodes, key=_node_order):
            name = self._loader_name(node_id)
            if name and name not in names:
                names.append(name[:MAX_FIELD])
            if len(names) >= 10:
                break
        return names

    def conditioning_texts(self, start: str | None) -> list[str]:
        """Prompt texts reachable upstream of a conditioning input, breadth first."""
        if start is None:
            return []
        texts: list[str] = []
        queue = [start]
        seen = {start}
        visits = 0
        while queue and visits < 200 and len(texts) < 8:
            current = queue.pop(0)
            visits += 1
            inputs = self.inputs(current)
            for key in _TEXT_KEYS:
                if key in inputs:
                    value = self._resolve(inputs[key], ("string", "text", "value"))
                    if isinstance(value, str) and value.strip() and value not in texts:
                        texts.append(value)
                        break
            for key, value in inputs.items():
                target = self.link(value)
                if target is not None and target not in seen and key not in _NOT_CONDITIONING:
                    seen.add(target)
                    queue.append(target)
        return texts

    def condition_start(self, sampler: str, which: str) -> str | None:
        inputs = self.inputs(sampler)
        direct = self.link(inputs.get(which))
        if direct is not None:
            return direct
        guider = self.link(inputs.get("guider"))
        if guider is None:
            return None
        guider_inputs = self.inputs(guider)
        if which in guider_inputs:
            return self.link(guider_inputs[which])
        return self.link(guider_inputs.get("conditioning")) if which == "positive" else None

    def size_for(self, sampler: str | None) -> str | None:
        candidates = []
        if sampler is not None:
            latent = self.link(self.inputs(sampler).get("latent_image"))
            if latent is not None:
                candidates.append(latent)
        candidates += [
            n
            for n in sorted(self.nodes, key=_node_order)
            if "EmptyLatent" in self.cls(n) or ("Empty" in self.cls(n) and "Latent" in self.cls(n))
        ]
        for node_id in candidates:
            inputs = self.inputs(node_id)
            size = _size(inputs.get("width"), inputs.get("height"))
            if size:
                return size
        return None


def _fill_comfy_api(finding: _Finding, graph: dict[str, Any]) -> bool:
    api = _ApiGraph(graph)
    if not api.nodes:
        return False
    samplers = api.samplers()
    sampler = samplers[0] if samplers else None
    if sampler is not None:
        finding.put("model", api.model_for(sampler))
        finding.put("sampler", api.scalar(sampler, ("sampler_name",)))
        finding.put("scheduler", api.scalar(sampler, ("scheduler",)))
        finding.put("seed", _int(api.scalar(sampler, ("seed", "noise_seed"))))
        finding.put("steps", _int(api.scalar(sampler, ("steps",))))
        finding.put("cfg", _num(api.scalar(sampler, ("cfg",))))
        finding.put("denoise", _num(api.scalar(sampler, ("denoise",))))
        positive = api.conditioning_texts(api.condition_start(sampler, "positive"))
        negative = api.conditioning_texts(api.condition_start(sampler, "negative"))
        finding.put_text("prompt", "\n".join(positive))
        finding.put_text("negative_prompt", "\n".join(negative))
    models = api.all_models()
    if models:
        finding.put("model", models[0])
        if len(models) > 1:
            finding.fields["models"] = models
    finding.put("size", api.size_for(sampler))
    finding.fields["samplers"] = len(samplers)
    finding.fields["nodes"] = len(api.nodes)
    return True


def _fill_comfy_workflow(finding: _Finding, workflow: dict[str, Any]) -> bool:
    """The UI graph: used only when the API prompt is missing. Reads loader file names and
    the widget values of plain KSampler nodes; the prompt is not identifiable reliably here."""
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        return False
    models: list[str] = []
    for node in nodes[:MAX_GRAPH_NODES]:
        if not isinstance(node, dict):
            continue
        kind = node.get("type") if isinstance(node.get("type"), str) else ""
        widgets = node.get("widgets_values")
        if not isinstance(widgets, list):
            continue
        if "Loader" in kind:
            for value in widgets[:4]:
                if isinstance(value, str) and _MODEL_FILE.search(value) and value not in models:
                    models.append(value[:MAX_FIELD])
        if kind == "KSampler" and len(widgets) >= 7:
            finding.put("seed", _int(widgets[0]))
            finding.put("steps", _int(widgets[2]))
            finding.put("cfg", _num(widgets[3]))
            finding.put("sampler", widgets[4] if isinstance(widgets[4], str) else None)
            finding.put("scheduler", widgets[5] if isinstance(widgets[5], str) else None)
        elif kind == "KSamplerAdvanced" and len(widgets) >= 7:
            finding.put("seed", _int(widgets[1]))
            finding.put("steps", _int(widgets[3]))
            finding.put("cfg", _num(widgets[4]))
            finding.put("sampler", widgets[5] if isinstance(widgets[5], str) else None)
    if models:
        finding.put("model", models[0])
        if len(models) > 1:
            finding.fields["models"] = models[:10]
    finding.fields["nodes"] = len(nodes)
    return True


# Node types of ComfyUI's default graphs: in a UI workflow they appear as `"type": "KSampler"`.
_COMFY_NODE_TYPE = re.compile(
    r'"type"\s*:\s*"(?:KSampler(?:Advanced)?|CheckpointLoaderSimple|CLIPTextEncode|VAEDecode|VAELoader'
    r'|EmptyLatentImage|SaveImage|LoraLoader|UNETLoader|DualCLIPLoader|SamplerCustom(?:Advanced)?)"'
)
# A loader node's first widget value (its model file), for a graph too large to parse.
_COMFY_LOADER_MODEL = re.compile(
    r'"type"\s*:\s*"[A-Za-z]*Loader[A-Za-z]*"[^{}\[\]]{0,400}"widgets_values"\s*:\s*\[\s*"([^"\\]{1,256})"'
)


def _looks_like_comfy(prompt: str | None, workflow: str | None) -> bool:
    """Without valid JSON (broken, or over MAX_JSON), the chunk names alone are not unique to
    ComfyUI; its markers are. Searched with substring scans over the whole text (at most one PNG
    text chunk, MAX_TEXT_CHUNK), linear and fast: ComfyUI writes "links" after every node, so a
    large workflow has it only near its end."""
    if prompt is not None and prompt.lstrip().startswith("{") and '"class_type"' in prompt:
        return True
    if workflow is None or not workflow.lstrip().startswith("{") or '"nodes"' not in workflow:
        return False
    return '"links"' in workflow or _COMFY_NODE_TYPE.search(workflow) is not None


def _comfy_model_hint(workflow: str | None) -> str | None:
    """The first model file a loader node names, found by pattern in an unparsed workflow."""
    for match in _COMFY_LOADER_MODEL.finditer(workflow or ""):
        if _MODEL_FILE.search(match.group(1)):
            return match.group(1)[:MAX_FIELD]
    return None


def _from_comfy(prompt: str | None, workflow: str | None, location: str) -> _Finding | None:
    graph = _json(prompt) if prompt else None
    if isinstance(graph, dict):
        finding = _Finding("ComfyUI", "comfyui-prompt", location)
        if _fill_comfy_api(finding, graph):
            return finding
    flow = _json(workflow) if workflow else None
    if isinstance(flow, dict):
        finding = _Finding("ComfyUI", "comfyui-workflow", location)
        if _fill_comfy_workflow(finding, flow):
            return finding
    if _looks_like_comfy(prompt, workflow):
        finding = _Finding("ComfyUI", "comfyui-prompt" if prompt else "comfyui-workflow", location, parsed=False)
        if not isinstance(flow, dict):
            finding.put("model", _comfy_model_hint(workflow))
        return finding
    return None


# ---------------------------------------------------------------- InvokeAI


def _split_invoke_negative(text: str) -> tuple[str, str]:
    """InvokeAI 1.x/2.x put the negative prompt in square brackets inside the prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", text)
    positive = re.sub(r"\[[^\[\]]*\]", "", text)
    return re.sub(r"\s+", " ", positive).strip(), ", ".join(n.strip() for n in negatives if n.strip())


def _from_invoke_metadata(data: Any, location: str) -> _Finding:
    finding = _Finding("InvokeAI", "invokeai-metadata", location, parsed=isinstance(data, dict))
    if not isinstance(data, dict):
        return finding
    finding.put_text("prompt", data.get("positive_prompt"))
    finding.put_text("negative_prompt", data.get("negative_prompt"))
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("model_name") or model.get("name")
    finding.put("model", model if isinstance(model, str) else None)
    finding.put("sampler", data.get("scheduler"))
    finding.put("seed", _int(data.get("seed")))
    finding.put("steps", _int(data.get("steps")))
    finding.put("cfg", _num(data.get("cfg_scale")))
    finding.put("size", _size(data.get("width"), data.get("height")))
    finding.put("generation_mode", data.get("generation_mode"))
    finding.put("version", data.get("app_version"))
    return finding


def _from_sd_metadata(data: Any, location: str) -> _Finding:
    finding = _Finding("InvokeAI", "invokeai-sd-metadata", location, parsed=isinstance(data, dict))
    if not isinstance(data, dict):
        return finding
    finding.put("model", data.get("model_weights"))
    finding.put("model_hash", data.get("model_hash"))
    finding.put("version", data.get("app_version"))
    image = data.get("image")
    if isinstance(image, dict):
        prompt = image.get("prompt")
        if isinstance(prompt, list):
            parts = [
                p.get("prompt")
                for p in prompt[:16]
                if isinstance(p, dict) and isinstance(p.get("prompt"), str)
            ]
            prompt = " ".join(parts)
        if isinstance(prompt, str):
            positive, negative = _split_invoke_negative(prompt)
            finding.put_text("prompt", positive)
            finding.put_text("negative_prompt", negative)
        finding.put("sampler", image.get("sampler"))
        finding.put("seed", _int(image.get("seed")))
        finding.put("steps", _int(image.get("steps")))
        finding.put("cfg", _num(image.get("cfg_scale")))
        finding.put("size", _size(image.get("width"), image.get("height")))
    return finding


_DREAM_FLAGS = {
    "s": "steps",
    "S": "seed",
    "C": "cfg",
    "A": "sampler",
    "W": "width",
    "H": "height",
    "m": "model",
}


def _from_dream(text: str, location: str) -> _Finding:
    """InvokeAI 1.x `Dream`: '"prompt [negative]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms'."""
    finding = _Finding("InvokeAI", "invokeai-dream", location)
    text = text[:MAX_JSON]
    match = re.match(r'\s*"((?:\\.|[^"\\])*)"(.*)$', text, re.DOTALL)
    if not match:
        finding.parsed = False
        return finding
    positive, negative = _split_invoke_negative(match.group(1))
    finding.put_text("prompt", positive)
    finding.put_text("negative_prompt", negative)
    flags = dict(re.findall(r"(?:^|\s)-([A-Za-z])\s+([^\s]+)", match.group(2)))
    values = {name: flags[flag] for flag, name in _DREAM_FLAGS.items() if flag in flags}
    finding.put("model", values.get("model"))
    finding.put("sampler", values.get("sampler"))
    finding.put("seed", _int(values.get("seed")))
    finding.put("steps", _int(values.get("steps")))
    finding.put("cfg", _num(values.get("cfg")))
    finding.put("size", _size(values.get("width"), values.get("height")))
    return finding


# ---------------------------------------------------------------- NovelAI


def _from_novelai(texts: dict[str, str], location: str) -> _Finding:
    finding = _Finding("NovelAI", "novelai", location)
    comment = _json(texts.get("Comment")) if texts.get("Comment") else None
    if isinstance(comment, dict):
        prompt = comment.get("prompt")
        v4 = comment.get("v4_prompt")
        if not isinstance(prompt, str) and isinstance(v4, dict) and isinstance(v4.get("caption"), dict):
            prompt = v4["caption"].get("base_caption")
        finding.put_text("prompt", prompt if isinstance(prompt, str) else texts.get("Description"))
        finding.put_text("negative_prompt", comment.get("uc"))
        finding.put("sampler", comment.get("sampler"))
        finding.put("seed", _int(comment.get("seed")))
        finding.put("steps", _int(comment.get("steps")))
        finding.put("cfg", _num(comment.get("scale")))
        finding.put("size", _size(comment.get("width"), comment.get("height")))
    else:
        finding.parsed = "Comment" not in texts
        finding.put_text("prompt", texts.get("Description"))
    finding.put("model", texts.get("Source"))  # e.g. "Stable Diffusion XL C1E1DE52"
    return finding


# ---------------------------------------------------------------- text-chunk dispatch


def _from_texts(texts: dict[str, str], where: str) -> _Finding | None:
    """Recognise a tool from a key → text mapping (PNG chunks or a stealth JSON payload)."""

    def loc(key: str) -> str:
        return f"{where} '{key}'"

    if texts.get("Software", "").strip().lower().startswith("novelai"):
        return _from_novelai(texts, loc("Comment" if "Comment" in texts else "Software"))
    if "invokeai_metadata" in texts:
        return _from_invoke_metadata(_json(texts["invokeai_metadata"]), loc("invokeai_metadata"))
    if "sd-metadata" in texts:
        data = _json(texts["sd-metadata"])
        if isinstance(data, dict) or "Dream" not in texts:
            return _from_sd_metadata(data, loc("sd-metadata"))
    if "Dream" in texts:
        return _from_dream(texts["Dream"], loc("Dream"))
    for key in ("invokeai_graph", "invokeai_workflow"):
        if key in texts:
            return _Finding("InvokeAI", key.replace("_", "-"), loc(key), parsed=False)

    parameters = texts.get("parameters")
    scheme = texts.get("fooocus_scheme")
    if parameters is not None and parameters.lstrip().startswith("{"):
        data = _json(parameters)
        if isinstance(data, dict) and "sui_image_params" in data:
            return _from_swarm_json(data, loc("parameters"))
        if isinstance(data, dict) and (
            scheme is not None
            or data.get("metadata_scheme") == "fooocus"
            or str(data.get("version", "")).startswith("Fooocus")
        ):
            return _from_fooocus_json(data, loc("parameters"))
        if scheme is not None:
            return _Finding("Fooocus", "fooocus-json", loc("parameters"), parsed=False)
    if scheme is not None and parameters is None:
        return _Finding("Fooocus", "fooocus-json", loc("fooocus_scheme"), parsed=False)

    if "prompt" in texts or "workflow" in texts:
        key = "prompt" if "prompt" in texts else "workflow"
        found = _from_comfy(texts.get("prompt"), texts.get("workflow"), loc(key))
        if found is not None:
            # Save nodes that also write A1111-style `parameters` fill what the graph lacked.
            if parameters is not None:
                parsed = _a1111_parse(parameters)
                if parsed is not None:
                    _fill_a1111(found, parsed)
            return found

    if parameters is not None and not parameters.lstrip().startswith("{"):
        found = _from_a1111_text(parameters, loc("parameters"), lenient=True)
        if found is not None and scheme is not None:
            found.tool = "Fooocus"
        return found
    return None


# ---------------------------------------------------------------- PNG chunks after IDAT


def _png_late_texts(data: bytes, after_idat_only: bool = True) -> dict[str, str]:
    """tEXt/zTXt/iTXt chunks after the image data: Pillow reads those only on full decode.

    With `after_idat_only=False` (Pillow could not parse the header, so it gave no text at all)
    the chunks before the image data are read too. Walks chunk headers only (a seek per chunk);
    text is bounded in total.
    """
    out: dict[str, str] = {}
    pos, seen_idat, budget, steps = 8, False, MAX_LATE_TEXT, 0
    end = len(data)
    while pos + 8 <= end and steps < 200_000:
        steps += 1
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        body_start = pos + 8
        body_end = body_start + length
        if body_end + 4 > end or length > 0x7FFFFFFF:
            break
        if ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            break
        elif (seen_idat or not after_idat_only) and ctype in (b"tEXt", b"zTXt", b"iTXt") \
                and length <= budget:
            parsed = _png_text_chunk(ctype, data[body_start:body_end], budget)
            budget -= max(length, len(parsed[1]) if parsed else 0)  # inflated text counts too
            if parsed is None and ctype != b"tEXt":
                budget = 0  # corrupt or over-long compressed text: stop inflating anything more
            if parsed is not None and parsed[0] not in out:
                out[parsed[0]] = parsed[1]
        pos = body_end + 4
    return out


def _inflate(blob: bytes, limit: int) -> bytes | None:
    try:
        inflater = zlib.decompressobj()
        result = inflater.decompress(blob, limit)
    except zlib.error:
        return None
    return result if not inflater.unconsumed_tail else None


def _png_text_chunk(ctype: bytes, body: bytes, limit: int) -> tuple[str, str] | None:
    key, sep, rest = body.partition(b"\0")
    if not sep or not key or len(key) > 79:
        return None
    name = key.decode("latin-1")
    if ctype == b"tEXt":
        return name, rest.decode("latin-1")
    if ctype == b"zTXt":
        raw = _inflate(rest[1:], limit)
        return (name, raw.decode("latin-1")) if raw is not None else None
    # iTXt: compression flag, method, language\0, translated keyword\0, text
    if len(rest) < 2:
        return None
    flag, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if flag:
        inflated = _inflate(text, limit)
        if inflated is None:
            return None
        text = inflated
    return name, text.decode("utf-8", "replace")


# ---------------------------------------------------------------- EXIF (JPEG / WebP)

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_IFD0_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software"}
_EXIF_TAGS = {0x9286: "UserComment", 0x927C: "MakerNote"}
# ComfyUI's WebP saver counts downward from Make for each extra_pnginfo key.
_COMFY_EXIF_TAGS = {0x010D: "DocumentName", 0x010C: "Tag 0x010C", 0x010B: "Tag 0x010B"}


def _tiff_fields(blob: bytes) -> tuple[dict[str, bytes], str]:
    """The few text tags generators use, from EXIF bytes ("Exif\\0\\0" + TIFF or bare TIFF).

    A deliberately tiny, bounded walker: IFD0 and the Exif IFD only.
    """
    if blob.startswith(b"Exif\0\0"):
        blob = blob[6:]
    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        return {}, "<"
    order = "<" if blob[:2] == b"II" else ">"
    out: dict[str, bytes] = {}
    try:
        ifd0 = struct.unpack_from(order + "I", blob, 4)[0]
        # Fooocus puts UserComment and MakerNote in IFD0 (Pillow's top level), so look there too.
        exif_ifd = _walk_ifd(
            blob, order, ifd0, {**_IFD0_TAGS, **_COMFY_EXIF_TAGS, **_EXIF_TAGS, 0x8769: "ExifIFD"}, out
        )
        if exif_ifd is not None:
            _walk_ifd(blob, order, exif_ifd, _EXIF_TAGS, out)
    except struct.error:
        pass
    return out, order


def _walk_ifd(
    blob: bytes, order: str, offset: int, wanted: dict[int, str], out: dict[str, bytes]
) -> int | None:
    if offset < 8 or offset + 2 > len(blob):
        return None
    count = min(struct.unpack_from(order + "H", blob, offset)[0], 1024, (len(blob) - offset - 2) // 12)
    pointer: int | None = None
    for index in range(count):
        entry = offset + 2 + 12 * index
        tag, kind, n = struct.unpack_from(order + "HHI", blob, entry)
        name = wanted.get(tag)
        if name == "ExifIFD":
            if kind in (4, 13):  # LONG or IFD
                pointer = struct.unpack_from(order + "I", blob, entry + 8)[0]
            continue
        if name is None or kind not in _TYPE_SIZES:
            continue
        size = _TYPE_SIZES[kind] * n
        start = entry + 8 if size <= 4 else struct.unpack_from(order + "I", blob, entry + 8)[0]
        if size > MAX_EXIF_VALUE or start + size > len(blob):
            continue
        out[name] = blob[start : start + size]
    return pointer


def _decode_user_comment(raw: bytes, order: str) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then text (EXIF 2.3 §4.6.5)."""
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\0":
        # A1111 (via piexif) writes UTF-16BE whatever the TIFF order; others follow the TIFF
        # order. Decide from where the zero high bytes of ASCII-range text sit.
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16", "replace")
        sample = body[:512]
        even_zeros = sample[0::2].count(0)
        odd_zeros = sample[1::2].count(0)
        if even_zeros != odd_zeros:
            encoding = "utf-16-be" if even_zeros > odd_zeros else "utf-16-le"
        else:
            encoding = "utf-16-le" if order == "<" else "utf-16-be"
        return body[: len(body) - len(body) % 2].decode(encoding, "replace").rstrip("\0")
    if prefix == b"ASCII\0\0\0":
        return body.decode("utf-8", "replace").rstrip("\0")
    if prefix == b"JIS\0\0\0\0\0":
        return body.decode("shift_jis", "replace").rstrip("\0")
    if prefix == b"\0" * 8:
        return body.decode("utf-8", "replace").rstrip("\0")
    return raw.decode("utf-8", "replace").rstrip("\0")  # no prefix (Pillow-written strings)


def _ascii(raw: bytes | None) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip() if raw else ""


def _from_exif(blob: bytes, container: str) -> _Finding | None:
    fields, order = _tiff_fields(blob)
    if not fields:
        return None
    # ComfyUI WebP: IFD0 text tags holding "prompt:{json}" / "workflow:{json}".
    comfy: dict[str, str] = {}
    for name in ("Model", "Make", "ImageDescription", *(_COMFY_EXIF_TAGS.values())):
        text = _ascii(fields.get(name))
        key, sep, rest = text.partition(":")
        if sep and key in ("prompt", "workflow") and rest.lstrip().startswith("{"):
            comfy.setdefault(key, rest)
    if comfy:
        found = _from_comfy(comfy.get("prompt"), comfy.get("workflow"), f"{container} EXIF Make/Model")
        if found is not None:
            return found
    comment_raw = fields.get("UserComment")
    if not comment_raw:
        return None
    comment = _decode_user_comment(comment_raw[: MAX_JSON * 2], order)
    location = f"{container} EXIF UserComment"
    software = _ascii(fields.get("Software"))
    scheme = _ascii(fields.get("MakerNote", b"")[:64])  # Fooocus stores its metadata scheme here
    if software.lower().startswith("fooocus") or scheme in ("fooocus", "a1111"):
        data = _json(comment) if comment.lstrip().startswith("{") else None
        if isinstance(data, dict):
            return _from_fooocus_json(data, location)
        found = _from_a1111_text(comment, location, lenient=False)
        if found is not None:
            found.tool = "Fooocus"
            return found
        return _Finding("Fooocus", "fooocus-json", location, parsed=False)
    if comment.lstrip().startswith("{"):
        data = _json(comment)
        if isinstance(data, dict) and "sui_image_params" in data:
            return _from_swarm_json(data, location)
        return None
    return _from_a1111_text(comment, location, lenient=False)


# ---------------------------------------------------------------- stealth (alpha / RGB LSB)


def _from_stealth(media: Media) -> _Finding | None:
    """Metadata hidden in the least significant bits, read column by column (x outer, y inner):
    a 15-byte signature, a 32-bit big-endian payload length in bits, then the payload (gzip when
    the signature ends in 'comp'). Alpha mode carries one bit per pixel; RGB mode three (R, G, B).
    Only the leading columns the payload needs are converted to arrays.
    """
    try:
        img = media.pixels()
    except InputError:
        return None
    mode = img.mode
    if mode not in ("RGBA", "LA", "RGB"):
        return None
    width, height = img.size
    if width < 1 or height < 1:
        return None
    for kind in ("alpha", "rgb") if "A" in mode else ("rgb",):
        if kind == "rgb" and mode == "LA":
            continue
        payload = _stealth_payload(img, kind, width, height)
        if payload is not None:
            return _interpret_stealth(*payload)
    return None


def _stealth_bits(img: Any, kind: str, height: int, width: int, nbits: int) -> Any:
    import numpy as np

    per_pixel = 1 if kind == "alpha" else 3
    pixels = -(-nbits // per_pixel)
    columns = min(width, -(-pixels // height))
    strip = img.crop((0, 0, columns, height))
    arr = np.asarray(strip)
    if kind == "alpha":
        plane = arr[:, :, -1] if arr.ndim == 3 else arr
        bits = plane.T.reshape(-1) & 1
    else:
        bits = arr[:, :, :3].transpose(1, 0, 2).reshape(-1) & 1
    return bits[:nbits]


def _stealth_payload(img: Any, kind: str, width: int, height: int) -> tuple[str, str, bool] | None:
    import numpy as np

    per_pixel = 1 if kind == "alpha" else 3
    capacity = width * height * per_pixel
    header_bits = 15 * 8 + 32
    if capacity < header_bits:
        return None
    head = np.packbits(_stealth_bits(img, kind, height, width, header_bits)).tobytes()
    sig = _STEALTH_SIGS.get(head[:15])
    if sig is None or sig[0] != kind:
        return None
    compressed = sig[1]
    length = int.from_bytes(head[15:19], "big")
    if length <= 0 or length > MAX_STEALTH_BYTES * 8 or header_bits + length > capacity:
        return None
    bits = _stealth_bits(img, kind, height, width, header_bits + length)[header_bits:]
    blob = np.packbits(bits).tobytes()
    if compressed:
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper
            raw = inflater.decompress(blob, MAX_STEALTH_TEXT)
        except zlib.error:
            return None
        text = raw.decode("utf-8", "replace")
    else:
        text = blob.decode("utf-8", "replace")
    return text, kind, compressed


def _interpret_stealth(text: str, kind: str, compressed: bool) -> _Finding | None:
    where = f"stealth metadata in the {'alpha channel' if kind == 'alpha' else 'RGB low bits'}"
    found: _Finding | None = None
    if text.lstrip().startswith("{"):
        data = _json(text)
        if isinstance(data, dict):
            texts = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in list(data.items())[:64]}
            found = _from_texts(texts, where)
    else:
        found = _from_a1111_text(text, where, lenient=False)
    if found is not None:
        found.location = where
        found.fields["stealth"] = {"channel": kind, "compressed": compressed}
    return found


# ---------------------------------------------------------------- weak hints

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"\bmidjourney\b", "Midjourney"),
        (r"\bdall[-·\s]?e\b", "DALL-E"),
        (r"\bstable[\s_-]?diffusion\b|\bsdxl\b", "Stable Diffusion"),
        (r"\bnovel\s?ai\b", "NovelAI"),
        (r"\bcomfy\s?ui\b", "ComfyUI"),
        (r"\binvoke\s?ai\b", "InvokeAI"),
        (r"\bautomatic1111\b", "AUTOMATIC1111"),
        (r"\bfooocus\b", "Fooocus"),
        (r"\badobe firefly\b", "Adobe Firefly"),
        (r"\bleonardo\.ai\b", "Leonardo.Ai"),
        (r"\bideogram\b", "Ideogram"),
        (r"\bdreamstudio\b", "DreamStudio"),
        (r"\bnightcafe\b", "NightCafe"),
        (r"\bcraiyon\b", "Craiyon"),
        (r"\bbing image creator\b", "Bing Image Creator"),
        (r"\bflux\.1\b", "FLUX.1"),
    )
)
_HINT_KEYS = ("Software", "Comment", "Description", "Title", "Source", "Author", "Generator", "comment")


def _hint(texts: dict[str, str]) -> EvidenceItem | None:
    """A text field that only names a generator. Weak on purpose: it is one free-text string
    without generation parameters, trivially written by anyone (or quoting a tool in a caption),
    so it may inform fusion but must not decide the verdict alone."""
    for key in _HINT_KEYS:
        value = texts.get(key)
        if not value:
            continue
        for pattern, name in _HINTS:
            if pattern.search(value[:4096]):
                return EvidenceItem(
                    SOURCE,
                    "ai",
                    f"The '{key}' metadata field mentions {name}.",
                    {"tool": name, "format": "text-hint", "field": key, "value": value[:200]},
                    strong=False,
                )
    return None


# ---------------------------------------------------------------- entry point


def read(media: Media) -> list[EvidenceItem]:
    fmt = media.format
    if fmt is None:
        return []
    info = media.info
    texts: dict[str, str] = {}
    for key, value in info.items():
        if isinstance(key, str) and isinstance(value, str):
            texts[key] = value
    if fmt == "PNG":
        # A header Pillow cannot parse gives no text: then read every text chunk from the bytes.
        for key, value in _png_late_texts(media.data, after_idat_only=media.header_error is None).items():
            texts.setdefault(key, value)
    comment = _as_text(info.get("comment")) if fmt in ("JPEG", "GIF") else None
    if comment:
        texts.setdefault("comment", comment)

    container = {"PNG": "PNG text", "JPEG": "JPEG", "WEBP": "WebP"}.get(fmt, fmt)
    found = _from_texts(texts, container) if fmt in ("PNG", "WEBP", "GIF") else None
    exif = info.get("exif")
    if found is None and isinstance(exif, bytes) and exif:
        found = _from_exif(exif, container.replace(" text", ""))
    if found is None and comment:
        found = _from_a1111_text(comment, f"{container} comment", lenient=False)
    if found is None and fmt in ("PNG", "WEBP") and media.allow_pixels:
        found = _from_stealth(media)
    if found is not None:
        return [found.item()]
    hint = _hint(texts)
    return [item for item in (hint, _text_left_out(media)) if item is not None]


MAX_LIST_SKIPPED = 20  # chunk keywords kept in the details


def _text_left_out(media: Media) -> EvidenceItem | None:
    """Text chunks too large to inflate (left out of the parse, see Media.skipped_text_chunks) may
    hold a generator's workflow: metadata present but unread, not 'no metadata'."""
    skipped = media.skipped_text_chunks if media.format == "PNG" else []
    if not skipped:
        return None
    names = ", ".join(f"{c.chunk_type} '{c.keyword}'" for c in skipped[:3]) + (" …" if len(skipped) > 3 else "")
    return EvidenceItem(SOURCE, "none", f"PNG text chunk {names} too large to read (memory guard)",
                        {"unreadable": True, "chunks": [c.keyword for c in skipped[:MAX_LIST_SKIPPED]]})

