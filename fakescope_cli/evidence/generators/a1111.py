"""AUTOMATIC1111 infotext (prompt, 'Negative prompt:', then the 'Steps: …' parameters line) and the forks that write it."""

from __future__ import annotations

import re

from fakescope_cli.evidence.generators.finding import Finding, as_int, as_number, parse_json

# One "Key: value" pair of the parameters line; values may be JSON-quoted strings with commas.
_A1111_PAIR = re.compile(r'\s*([A-Za-z][\w \-/+.()]{0,63}?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_A1111_STEPS = re.compile(r"^\s*Steps: \d+")


def parse_infotext(text: str) -> tuple[str, str, dict[str, str]] | None:
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
            unquoted = parse_json(value)
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


def tool_from_version(version: str | None, default: str = "AUTOMATIC1111") -> str:
    if not version:
        return default
    low = version.strip().lower()
    if low.startswith("fooocus"):
        return "Fooocus"
    if low in ("classic", "neo"):  # Forge Classic / Forge Neo write their branch as the version
        return f"Stable Diffusion WebUI Forge {low.title()}"
    if re.match(r"f\d+\.\d+", low):  # Forge tags its builds "f<forge>v<a1111>"
        return "Stable Diffusion WebUI Forge"
    if low.startswith("comfyui"):
        return "ComfyUI"
    if re.fullmatch(r"[0-9a-f]{7,40}", low):  # SD.Next writes its git commit as the version
        return "SD.Next"
    return default


def tool_from_infotext(pairs: dict[str, str]) -> str:
    """The tool an infotext's parameters line names (or betrays)."""
    app = pairs.get("App", "")
    if "sd.next" in app.lower() or "sdnext" in app.lower():
        return "SD.Next"
    version = pairs.get("Version")
    if not version and "CFG Scale" in pairs and "CFG scale" not in pairs:
        # ComfyUI's SaveImageWithMetaData node writes A1111-style text, but "CFG Scale" and no Version.
        return "ComfyUI (SaveImageWithMetaData)"
    return tool_from_version(version)


def fill_from_infotext(finding: Finding, parsed: tuple[str, str, dict[str, str]]) -> None:
    prompt, negative, pairs = parsed
    finding.put_text("prompt", prompt)
    finding.put_text("negative_prompt", negative)
    finding.put("model", pairs.get("Model"))
    finding.put("model_hash", pairs.get("Model hash"))
    finding.put("sampler", pairs.get("Sampler"))
    finding.put("scheduler", pairs.get("Schedule type"))
    finding.put("seed", as_int(pairs.get("Seed")))
    finding.put("steps", as_int(pairs.get("Steps")))
    finding.put("cfg", as_number(pairs.get("CFG scale", pairs.get("CFG Scale"))))
    finding.put("size", pairs.get("Size"))
    finding.put("version", pairs.get("Version"))


def from_infotext(text: str, location: str, *, lenient: bool) -> Finding | None:
    """A1111 infotext; `lenient` reports the tool even when the text does not parse
    (the PNG key `parameters` is the A1111 convention, an EXIF comment is not)."""
    parsed = parse_infotext(text)
    if parsed is None:
        if not lenient or not text.strip():
            return None
        return Finding("AUTOMATIC1111", "a1111-parameters", location, parsed=False)
    finding = Finding(tool_from_infotext(parsed[2]), "a1111-parameters", location)
    fill_from_infotext(finding, parsed)
    return finding
