"""Weak hints: a free-text field that merely names a generator."""

from __future__ import annotations

import re

from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.evidence.generators.finding import SOURCE

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"\bmidjourney\b", "Midjourney"),
        (r"\bdall[-·\s]?e\b", "DALL-E"),
        (r"\bstable[\s_-]?diffusion\b|\bsdxl\b", "Stable Diffusion"),
        (r"\bnovel\s?ai\b", "NovelAI"),
        (r"\bcomfy\s?ui\b", "ComfyUI"),
        (r"\binvoke\s?ai\b", "InvokeAI"),
        (r"\bautomatic1111\b", "AUTOMATIC1111"),
        (r"\bfooocus\b", "Fooocus"),
        (r"\badobe firefly\b", "Adobe Firefly"),
        (r"\bleonardo\.ai\b", "Leonardo.Ai"),
        (r"\bideogram\b", "Ideogram"),
        (r"\bdreamstudio\b", "DreamStudio"),
        (r"\bnightcafe\b", "NightCafe"),
        (r"\bcraiyon\b", "Craiyon"),
        (r"\bbing image creator\b", "Bing Image Creator"),
        (r"\bflux\.1\b", "FLUX.1"),
    )
)
_HINT_KEYS = ("Software", "Comment", "Description", "Title", "Source", "Author", "Generator", "comment")


def text_hint(texts: dict[str, str]) -> EvidenceItem | None:
    """A text field that only names a generator. Weak on purpose: it is one free-text string
    without generation parameters, trivially written by anyone (or quoting a tool in a caption),
    so it may inform fusion but must not decide the verdict alone."""
    for key in _HINT_KEYS:
        value = texts.get(key)
        if not value:
            continue
        for pattern, name in _HINTS:
            if pattern.search(value[:4096]):
                return EvidenceItem(
                    SOURCE,
                    "ai",
                    f"The '{key}' metadata field mentions {name}.",
                    {"tool": name, "format": "text-hint", "field": key, "value": value[:200]},
                    strong=False,
                )
    return None
