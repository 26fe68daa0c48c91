"""A walker over ComfyUI's API-format prompt graph: samplers, their model, prompts and parameters, bounded."""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli.evidence.generators.finding import MAX_FIELD, MAX_GRAPH_NODES, size_text

_LOADER_KEYS = ("ckpt_name", "unet_name", "model_path")
_TEXT_KEYS = ("text", "text_g", "text_l", "t5xxl", "clip_l", "prompt")
_SCALAR_ALIASES = ("value", "int", "seed", "number", "float", "string", "text")
# Inputs that lead away from the conditioning (prompt) chain or into other samplers.
_NOT_CONDITIONING = frozenset(
    "clip model vae clip_vision image pixels samples latent latent_image control_net mask "
    "style_model upscale_model".split()
)
_NOT_PARAMS = frozenset({"positive", "negative", "latent_image", "conditioning", "model", "image"})
MODEL_FILE = re.compile(r"\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$", re.IGNORECASE)


def node_order(node_id: str) -> tuple[int, int, str]:
    # isdecimal, not isdigit: int() rejects digits such as "³" that isdigit accepts (found by fuzzing).
    return (0, int(node_id), "") if node_id.isdecimal() and len(node_id) < 12 else (1, 0, node_id)


class ApiGraph:
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
        return (not from_empty, no_noise, node_order(node_id))

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
        for node_id in sorted(self.nodes, key=node_order):
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
            for n in sorted(self.nodes, key=node_order)
            if "EmptyLatent" in self.cls(n) or ("Empty" in self.cls(n) and "Latent" in self.cls(n))
        ]
        for node_id in candidates:
            inputs = self.inputs(node_id)
            size = size_text(inputs.get("width"), inputs.get("height"))
            if size:
                return size
        return None
