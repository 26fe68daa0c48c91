"""Which tool wrote a set of text fields (PNG chunks, a stealth JSON payload): the dispatch over the parsers."""

from __future__ import annotations

from fakescope_cli.evidence.generators.a1111 import fill_from_infotext, from_infotext, parse_infotext
from fakescope_cli.evidence.generators.comfyui import from_comfy
from fakescope_cli.evidence.generators.diffusers_json import from_request_json, looks_like_request
from fakescope_cli.evidence.generators.finding import Finding, parse_json
from fakescope_cli.evidence.generators.fooocus import (
    from_fooocus_json,
    from_ruined_fooocus_json,
    is_ruined_fooocus,
)
from fakescope_cli.evidence.generators.invokeai import from_dream, from_invoke_metadata, from_sd_metadata
from fakescope_cli.evidence.generators.novelai import from_novelai
from fakescope_cli.evidence.generators.swarmui import from_swarm_json


def from_texts(texts: dict[str, str], where: str) -> Finding | None:
    """Recognise a tool from a key → text mapping (PNG chunks or a stealth JSON payload)."""

    def loc(key: str) -> str:
        return f"{where} '{key}'"

    if texts.get("Software", "").strip().lower().startswith("novelai"):
        return from_novelai(texts, loc("Comment" if "Comment" in texts else "Software"))
    if "invokeai_metadata" in texts:
        return from_invoke_metadata(parse_json(texts["invokeai_metadata"]), loc("invokeai_metadata"))
    if "sd-metadata" in texts:
        data = parse_json(texts["sd-metadata"])
        if isinstance(data, dict) or "Dream" not in texts:
            return from_sd_metadata(data, loc("sd-metadata"))
    if "Dream" in texts:
        return from_dream(texts["Dream"], loc("Dream"))
    for key in ("invokeai_graph", "invokeai_workflow"):
        if key in texts:
            return Finding("InvokeAI", key.replace("_", "-"), loc(key), parsed=False)

    parameters = texts.get("parameters")
    scheme = texts.get("fooocus_scheme")
    if parameters is not None and parameters.lstrip().startswith("{"):
        data = parse_json(parameters)
        if isinstance(data, dict) and "sui_image_params" in data:
            return from_swarm_json(data, loc("parameters"))
        if isinstance(data, dict) and (
            scheme is not None
            or data.get("metadata_scheme") == "fooocus"
            or str(data.get("version", "")).startswith("Fooocus")
        ):
            return from_fooocus_json(data, loc("parameters"))
        if isinstance(data, dict) and is_ruined_fooocus(data):
            return from_ruined_fooocus_json(data, loc("parameters"))
        if scheme is not None:
            return Finding("Fooocus", "fooocus-json", loc("parameters"), parsed=False)
        if isinstance(data, dict) and looks_like_request(data) and "prompt" not in texts:
            return from_request_json(data, loc("parameters"))
    if scheme is not None and parameters is None:
        return Finding("Fooocus", "fooocus-json", loc("fooocus_scheme"), parsed=False)

    if "prompt" in texts or "workflow" in texts:
        key = "prompt" if "prompt" in texts else "workflow"
        found = from_comfy(texts.get("prompt"), texts.get("workflow"), loc(key))
        if found is not None:
            # Save nodes that also write A1111-style `parameters` fill what the graph lacked.
            if parameters is not None:
                parsed = parse_infotext(parameters)
                if parsed is not None:
                    fill_from_infotext(found, parsed)
            return found

    if parameters is not None and not parameters.lstrip().startswith("{"):
        found = from_infotext(parameters, loc("parameters"), lenient=True)
        if found is not None and scheme is not None:
            found.tool = "Fooocus"
        return found
    return None
