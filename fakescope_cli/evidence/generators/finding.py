"""One generator finding (tool, format, where, bounded fields) and the defensive value helpers every parser uses."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.evidence.base import EvidenceItem

SOURCE = "generator"
MAX_PROMPT = 2000  # characters kept of a prompt / negative prompt
MAX_FIELD = 256  # characters kept of a model name, sampler …
MAX_JSON = 2_000_000  # characters: larger JSON is not parsed (the tool is still reported)
MAX_GRAPH_NODES = 5000


@dataclass
class Finding:
    tool: str
    fmt: str  # metadata format, e.g. "a1111-parameters"
    location: str  # where it was found, e.g. "PNG text 'parameters'"
    fields: dict[str, Any] = field(default_factory=dict)
    parsed: bool = True
    truncated: bool = False

    def put_text(self, key: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip() or key in self.fields:
            return
        value = value.strip()
        if len(value) > MAX_PROMPT:
            value = value[:MAX_PROMPT]
            self.truncated = True
        self.fields[key] = value

    def put(self, key: str, value: Any) -> None:
        """Store a short scalar: bounded string, finite number; anything else is dropped."""
        if value is None or isinstance(value, bool) or key in self.fields:
            return
        if isinstance(value, int):
            if abs(value) < 10**20:  # seeds are at most 64-bit; longer "numbers" are junk
                self.fields[key] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                self.fields[key] = int(value) if key in ("seed", "steps") and value.is_integer() else value
        elif isinstance(value, str) and value.strip():
            self.fields[key] = value.strip()[:MAX_FIELD]

    def item(self) -> EvidenceItem:
        details: dict[str, Any] = {"tool": self.tool, "format": self.fmt, "location": self.location}
        details.update(self.fields)
        if not self.parsed:
            details["parsed"] = False
        if self.truncated:
            details["truncated"] = True
        model = f", model {self.fields['model']}" if "model" in self.fields else ""
        summary = f"{self.tool} generation metadata in {self.location}{model}."
        return EvidenceItem(SOURCE, "ai", summary, details, strong=True)


# ---------------------------------------------------------------- small helpers


def parse_json(text: Any) -> Any:
    """Parse JSON defensively: size cap, NaN/Infinity become None, errors give None."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or len(text) > MAX_JSON:
        return None
    try:
        return json.loads(text, parse_constant=lambda _c: None)
    except (ValueError, RecursionError):
        return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,30}\s*", value):
        return int(value)
    return None


def as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        if math.isfinite(number):
            return int(number) if number.is_integer() and "." not in value else number
    return None


def size_text(width: Any, height: Any) -> str | None:
    w, h = as_int(width), as_int(height)
    return f"{w}x{h}" if w and h and w > 0 and h > 0 else None


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None
