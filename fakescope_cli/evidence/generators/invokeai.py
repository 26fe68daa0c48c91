"""InvokeAI: `invokeai_metadata` (3.x+), `sd-metadata` (2.x) and `Dream` (1.x)."""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli.evidence.generators.finding import MAX_JSON, Finding, as_int, as_number, size_text


def _split_invoke_negative(text: str) -> tuple[str, str]:
    """InvokeAI 1.x/2.x put the negative prompt in square brackets inside the prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", text)
    positive = re.sub(r"\[[^\[\]]*\]", "", text)
    return re.sub(r"\s+", " ", positive).strip(), ", ".join(n.strip() for n in negatives if n.strip())


def from_invoke_metadata(data: Any, location: str) -> Finding:
    finding = Finding("InvokeAI", "invokeai-metadata", location, parsed=isinstance(data, dict))
    if not isinstance(data, dict):
        return finding
    finding.put_text("prompt", data.get("positive_prompt"))
    finding.put_text("negative_prompt", data.get("negative_prompt"))
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("model_name") or model.get("name")
    finding.put("model", model if isinstance(model, str) else None)
    finding.put("sampler", data.get("scheduler"))
    finding.put("seed", as_int(data.get("seed")))
    finding.put("steps", as_int(data.get("steps")))
    finding.put("cfg", as_number(data.get("cfg_scale")))
    finding.put("size", size_text(data.get("width"), data.get("height")))
    finding.put("generation_mode", data.get("generation_mode"))
    finding.put("version", data.get("app_version"))
    return finding


def from_sd_metadata(data: Any, location: str) -> Finding:
    finding = Finding("InvokeAI", "invokeai-sd-metadata", location, parsed=isinstance(data, dict))
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
        finding.put("seed", as_int(image.get("seed")))
        finding.put("steps", as_int(image.get("steps")))
        finding.put("cfg", as_number(image.get("cfg_scale")))
        finding.put("size", size_text(image.get("width"), image.get("height")))
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


def from_dream(text: str, location: str) -> Finding:
    """InvokeAI 1.x `Dream`: '"prompt [negative]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms'."""
    finding = Finding("InvokeAI", "invokeai-dream", location)
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
    finding.put("seed", as_int(values.get("seed")))
    finding.put("steps", as_int(values.get("steps")))
    finding.put("cfg", as_number(values.get("cfg")))
    finding.put("size", size_text(values.get("width"), values.get("height")))
    return finding
