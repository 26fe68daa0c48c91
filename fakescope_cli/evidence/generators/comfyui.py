"""ComfyUI: the API `prompt` graph and the UI `workflow` graph, wherever a save node put them."""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli.evidence.generators.comfy_graph import MODEL_FILE, ApiGraph
from fakescope_cli.evidence.generators.finding import (
    MAX_FIELD,
    MAX_GRAPH_NODES,
    Finding,
    as_int,
    as_number,
    parse_json,
)


def _fill_comfy_api(finding: Finding, graph: dict[str, Any]) -> bool:
    api = ApiGraph(graph)
    if not api.nodes:
        return False
    samplers = api.samplers()
    sampler = samplers[0] if samplers else None
    if sampler is not None:
        finding.put("model", api.model_for(sampler))
        finding.put("sampler", api.scalar(sampler, ("sampler_name",)))
        finding.put("scheduler", api.scalar(sampler, ("scheduler",)))
        finding.put("seed", as_int(api.scalar(sampler, ("seed", "noise_seed"))))
        finding.put("steps", as_int(api.scalar(sampler, ("steps",))))
        finding.put("cfg", as_number(api.scalar(sampler, ("cfg",))))
        finding.put("denoise", as_number(api.scalar(sampler, ("denoise",))))
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


def _fill_comfy_workflow(finding: Finding, workflow: dict[str, Any]) -> bool:
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
                if isinstance(value, str) and MODEL_FILE.search(value) and value not in models:
                    models.append(value[:MAX_FIELD])
        if kind == "KSampler" and len(widgets) >= 7:
            finding.put("seed", as_int(widgets[0]))
            finding.put("steps", as_int(widgets[2]))
            finding.put("cfg", as_number(widgets[3]))
            finding.put("sampler", widgets[4] if isinstance(widgets[4], str) else None)
            finding.put("scheduler", widgets[5] if isinstance(widgets[5], str) else None)
        elif kind == "KSamplerAdvanced" and len(widgets) >= 7:
            finding.put("seed", as_int(widgets[1]))
            finding.put("steps", as_int(widgets[3]))
            finding.put("cfg", as_number(widgets[4]))
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
        if MODEL_FILE.search(match.group(1)):
            return match.group(1)[:MAX_FIELD]
    return None


def from_comfy(prompt: str | None, workflow: str | None, location: str) -> Finding | None:
    graph = parse_json(prompt) if prompt else None
    if isinstance(graph, dict):
        finding = Finding("ComfyUI", "comfyui-prompt", location)
        if _fill_comfy_api(finding, graph):
            return finding
    flow = parse_json(workflow) if workflow else None
    if isinstance(flow, dict):
        finding = Finding("ComfyUI", "comfyui-workflow", location)
        if _fill_comfy_workflow(finding, flow):
            return finding
    if _looks_like_comfy(prompt, workflow):
        finding = Finding("ComfyUI", "comfyui-prompt" if prompt else "comfyui-workflow", location, parsed=False)
        if not isinstance(flow, dict):
            finding.put("model", _comfy_model_hint(workflow))
        return finding
    return None
