"""SwarmUI `parameters` JSON with `sui_image_params`."""

from __future__ import annotations

from typing import Any

from fakescope_cli.evidence.generators.finding import Finding, as_int, as_number, size_text


def from_swarm_json(data: dict[str, Any], location: str) -> Finding:
    finding = Finding("SwarmUI", "swarmui-json", location)
    params = data.get("sui_image_params")
    if isinstance(params, dict):
        finding.put_text("prompt", params.get("prompt"))
        finding.put_text("negative_prompt", params.get("negativeprompt"))
        finding.put("model", params.get("model"))
        finding.put("sampler", params.get("sampler"))
        finding.put("scheduler", params.get("scheduler"))
        finding.put("seed", as_int(params.get("seed")))
        finding.put("steps", as_int(params.get("steps")))
        finding.put("cfg", as_number(params.get("cfgscale")))
        finding.put("size", size_text(params.get("width"), params.get("height")))
        finding.put("version", params.get("swarm_version"))
    return finding
