"""Fooocus `parameters` JSON (its `fooocus_scheme`), and RuinedFooocus's `parameters` JSON
(`"software": "RuinedFooocus"`, keys `Prompt` / `Negative`)."""

from __future__ import annotations

import re
from typing import Any

from fakescope_cli.evidence.generators.finding import Finding, as_int, as_number, size_text


def from_fooocus_json(data: dict[str, Any], location: str) -> Finding:
    finding = Finding("Fooocus", "fooocus-json", location)
    finding.put_text("prompt", data.get("prompt"))
    finding.put_text("negative_prompt", data.get("negative_prompt"))
    finding.put("model", data.get("base_model"))
    finding.put("refiner_model", data.get("refiner_model") if data.get("refiner_model") != "None" else None)
    finding.put("sampler", data.get("sampler"))
    finding.put("scheduler", data.get("scheduler"))
    finding.put("seed", as_int(data.get("seed")))
    finding.put("steps", as_int(data.get("steps")))
    finding.put("cfg", as_number(data.get("guidance_scale")))
    resolution = data.get("resolution")
    if isinstance(resolution, str):
        match = re.fullmatch(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", resolution.strip())
        if match:
            finding.put("size", size_text(match.group(1), match.group(2)))
    finding.put("version", data.get("version"))
    return finding


def is_ruined_fooocus(data: dict[str, Any]) -> bool:
    return str(data.get("software", "")).lower().startswith("ruinedfooocus")


def from_ruined_fooocus_json(data: dict[str, Any], location: str) -> Finding:
    finding = Finding("RuinedFooocus", "ruinedfooocus-json", location)
    finding.put_text("prompt", data.get("Prompt"))
    finding.put_text("negative_prompt", data.get("Negative"))
    finding.put("model", data.get("base_model_name"))
    finding.put("sampler", data.get("sampler_name"))
    finding.put("scheduler", data.get("scheduler"))
    finding.put("seed", as_int(data.get("seed")))
    finding.put("steps", as_int(data.get("steps")))
    finding.put("cfg", as_number(data.get("cfg")))
    finding.put("size", size_text(data.get("width"), data.get("height")))
    finding.put("version", data.get("software"))
    return finding
