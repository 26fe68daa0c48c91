"""Presets for the public detector checkpoints: how each one must be asked and read.

The catalogue (catalogue.json, shipped as package data) records per checkpoint its hub repo, the
backend that runs it, the prompt, the answer form its training taught (answer prefix, marker,
classifier labels), the label words, its licence, what it was trained on and whether its weights
are public. `models list` prints it, `models pull NAME` writes a checkpoint's `fakescope.json`
from it, and `models inspect` says which preset a folder matches and warns when the folder would
be read in a way its training never taught.

Reads JSON only: importable by the core install and by `fakescope --help`'s neighbours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

CATALOGUE_SCHEMA = "fakescope-presets/1"
# Manifest keys that say how the answer is asked for and where the label is read (issue #19
# point 1): a prefix forced into the answer, a marker generated up to, a raw prompt without a chat
# template. A preset's `reading` holds them; `models pull` writes those this fakescope reads.
READING_KEYS = ("answer_prefix", "answer_marker", "prompt_format")


@dataclass(frozen=True)
class Preset:
    name: str
    data: dict[str, Any]

    @property
    def repo_id(self) -> str | None:
        return self.data.get("repo_id")

    @property
    def backend(self) -> str | None:
        return self.data.get("backend")

    @property
    def reading(self) -> dict[str, Any]:
        return dict(self.data.get("reading") or {})

    @property
    def id2label(self) -> dict[str, str] | None:
        labels = self.data.get("id2label")
        return dict(labels) if isinstance(labels, dict) else None

    @property
    def model_type(self) -> str | None:
        return (self.data.get("architecture") or {}).get("model_type")

    def manifest(self, *, with_reading: bool = True) -> dict[str, Any]:
        """The `fakescope.json` this preset writes (before pins): its manifest, plus the reading
        keys (answer prefix or marker) when `with_reading`."""
        out = json.loads(json.dumps(self.data.get("manifest") or {}))
        if with_reading:
            for key in READING_KEYS:
                if self.reading.get(key):
                    out[key] = self.reading[key]
        return out

    def summary(self) -> dict[str, Any]:
        keys = ("name", "title", "repo_id", "backend", "weights_public", "licence", "trained_on", "answers",
                "reading", "needs", "verified_here", "sources")
        return {k: self.data.get(k) for k in keys}


@lru_cache(maxsize=1)
def catalogue() -> tuple[Preset, ...]:
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("schema") != CATALOGUE_SCHEMA:
        raise ValueError(f"presets catalogue: schema {data.get('schema')!r} is not {CATALOGUE_SCHEMA!r}")
    return tuple(Preset(p["name"], p) for p in data["presets"])


def find(name_or_repo: str) -> Preset | None:
    """A preset by its name or by its hub repo id (case-insensitive)."""
    key = name_or_repo.strip().lower()
    for preset in catalogue():
        if preset.name == key or (preset.repo_id or "").lower() == key:
            return preset
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def match(model_dir: str | Path) -> tuple[Preset | None, str]:
    """The preset a checkpoint folder matches, and why: the repo its manifest records (a pulled
    checkpoint), else the repo id in config.json's `_name_or_path`, else (classifiers) the same
    model type with the same id2label. (None, why not) when nothing matches."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return None, "not a checkpoint folder"
    manifest = _read_json(folder / "fakescope.json")
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    if source.get("preset") and find(str(source["preset"])):
        return find(str(source["preset"])), "fakescope.json source.preset"
    if source.get("repo_id") and find(str(source["repo_id"])):
        return find(str(source["repo_id"])), "fakescope.json source.repo_id"
    config = _read_json(folder / "config.json")
    name_or_path = str(config.get("_name_or_path") or "")
    if name_or_path and find(name_or_path):
        return find(name_or_path), "config.json _name_or_path"
    labels = config.get("id2label")
    if isinstance(labels, dict):
        found = {str(k): str(v) for k, v in labels.items()}
        for preset in catalogue():
            if preset.id2label == found and preset.model_type == config.get("model_type"):
                return preset, "same model type and id2label"
    return None, "no preset matches (no pulled source, repo id or label layout)"


def reading_warnings(preset: Preset | None, model_dir: str | Path) -> list[str]:
    """Warnings for a folder that would be read in a way its training never taught: a checkpoint
    that answers after a prefix ("This is a ...") or after a marker, read at the first answer
    token because its fakescope.json does not say so."""
    if preset is None:
        return []
    reading = preset.reading
    manifest = _read_json(Path(model_dir) / "fakescope.json")
    out: list[str] = []
    title = preset.data.get("title", preset.name)
    for key in READING_KEYS:
        want = reading.get(key)
        if not want or manifest.get(key) == want:
            continue
        fix = f"its fakescope.json needs \"{key}\": {json.dumps(want)} (fakescope models pull {preset.name} writes it)"
        if key == "prompt_format":
            out.append(f"{title} was trained on the {want} prompt (no chat template); {fix}")
        else:
            out.append(f"{title} answers \"{preset.data.get('answers')}\": read at the first answer token its "
                       f"scores are untrained; {fix}")
    prompt = (preset.data.get("manifest") or {}).get("prompts", {}).get("detect")
    have = (manifest.get("prompts") or {}).get("detect") if isinstance(manifest.get("prompts"), dict) else None
    if prompt and have != prompt:
        out.append(f"{title} was trained on the prompt {json.dumps(prompt)}; its fakescope.json asks "
                   f"{json.dumps(have) if have else 'the default prompt'}")
    if preset.backend is None:
        out.append(f"{title}: {preset.data.get('architecture', {}).get('note') or 'no built-in backend runs it'}")
    return out
