"""NovelAI: `Software`=NovelAI with `Comment` JSON and `Description`."""

from __future__ import annotations

from fakescope_cli.evidence.generators.finding import Finding, as_int, as_number, parse_json, size_text


def from_novelai(texts: dict[str, str], location: str) -> Finding:
    finding = Finding("NovelAI", "novelai", location)
    comment = parse_json(texts.get("Comment")) if texts.get("Comment") else None
    if isinstance(comment, dict):
        prompt = comment.get("prompt")
        v4 = comment.get("v4_prompt")
        if not isinstance(prompt, str) and isinstance(v4, dict) and isinstance(v4.get("caption"), dict):
            prompt = v4["caption"].get("base_caption")
        finding.put_text("prompt", prompt if isinstance(prompt, str) else texts.get("Description"))
        finding.put_text("negative_prompt", comment.get("uc"))
        finding.put("sampler", comment.get("sampler"))
        finding.put("seed", as_int(comment.get("seed")))
        finding.put("steps", as_int(comment.get("steps")))
        finding.put("cfg", as_number(comment.get("scale")))
        finding.put("size", size_text(comment.get("width"), comment.get("height")))
    else:
        finding.parsed = "Comment" not in texts
        finding.put_text("prompt", texts.get("Description"))
    finding.put("model", texts.get("Source"))  # e.g. "Stable Diffusion XL C1E1DE52"
    return finding
