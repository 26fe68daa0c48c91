"""A plain JSON `parameters` text chunk with `prompt` and `negative_prompt`, as Hugging Face Spaces
built on diffusers save it (and other small front-ends do): no tool name, but a generation request."""

from __future__ import annotations

from typing import Any

from fakescope_cli.evidence.generators.finding import Finding, as_int, as_number, size_text

TOOL = "a diffusers app (Hugging Face Spaces style JSON)"


def looks_like_request(data: dict[str, Any]) -> bool:
    """A prompt string and at least one other generation key: a caption alone is not enough."""
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return False
    return any(k in data for k in ("negative_prompt", "num_inference_steps", "guidance_scale", "seed", "steps"))


def from_request_json(data: dict[str, Any], location: str) -> Finding:
    finding = Finding(TOOL, "diffusers-json", location)
    finding.put_text("prompt", data.get("prompt"))
    finding.put_text("negative_prompt", data.get("negative_prompt"))
    model = data.get("model") or data.get("model_id") or data.get("base_model")
    finding.put("model", model if isinstance(model, str) else None)
    finding.put("sampler", data.get("scheduler") or data.get("sampler"))
    finding.put("seed", as_int(data.get("seed")))
    finding.put("steps", as_int(data.get("num_inference_steps", data.get("steps"))))
    finding.put("cfg", as_number(data.get("guidance_scale", data.get("cfg"))))
    finding.put("size", size_text(data.get("width"), data.get("height")))
    return finding
