"""Small helpers shared by the renderers: safe display text, percentages, JSON that always parses."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

# Bidirectional controls can make a file name read differently from what it is ("Trojan Source",
# CVE-2021-42574); on a report about evidence files they are shown as escapes, like C0/C1 controls.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_text(text: str) -> str:
    """`text` safe for a terminal: control and bidi characters become visible escapes.

    A file name may hold a newline or an ANSI escape sequence; printed raw it could break the
    table or repaint the user's terminal.
    """
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def stop_notice(header: dict[str, Any]) -> str | None:
    """Why a run's results are partial, in one sentence; None for a complete run."""
    if not header.get("interrupted"):
        return None
    error = header.get("error") or {}
    if error.get("message"):
        return f"The scan stopped early, its detector lost ({error['message']}): results are partial."
    return "The scan was interrupted: results are partial."


def percent(p: float | None, *, missing: str = "—") -> str:
    """p_fake as a percentage with one decimal; `missing` when there is no score."""
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return missing
    return f"{p * 100:.1f}%"


def score_basis(record: dict[str, Any]) -> str | None:
    """What the record's p_fake rests on: "provenance", "pixels", "hint" or None (no score).

    Records from before `p_fake_basis` existed are read the same way fusion decides it.
    """
    if record.get("p_fake") is None:
        return None
    basis = record.get("p_fake_basis")
    if isinstance(basis, str):
        return basis
    if record.get("verdict") in ("ai-generated", "ai-edited"):
        return "provenance"
    detector = record.get("detector") or {}
    low, high = detector.get("threshold_low"), detector.get("threshold_high")
    closed = isinstance(low, (int, float)) and isinstance(high, (int, float)) and low <= 0.0 and high >= 1.0
    return "hint" if closed else "pixels"


def score_text(record: dict[str, Any], *, missing: str = "—") -> str:
    """p_fake as a reader should take it: a percentage when provenance or the detector's band
    decided, "hint 0.85" (a ranking score, no per cent sign) when the detector cannot decide alone."""
    p = record.get("p_fake")
    if score_basis(record) == "hint" and isinstance(p, (int, float)) and math.isfinite(p):
        # The detector's own value ranks better than p_fake, which fusion caps at 0.95.
        raw = (record.get("detector") or {}).get("p_fake")
        shown = raw if isinstance(raw, (int, float)) and math.isfinite(raw) else p
        return f"hint {shown:.2f}"
    return percent(p, missing=missing)


def main_reason(record: dict[str, Any]) -> str:
    """The one line that says why: first reason, else the evidence, else the error."""
    reasons = record.get("reasons") or []
    if reasons:
        return str(reasons[0])
    summaries = [str(e.get("summary", "")) for e in record.get("evidence") or [] if e.get("summary")]
    if summaries:
        return "; ".join(summaries)
    errors = record.get("errors") or []
    if errors:
        return "; ".join(f"{e.get('code', 'error')}: {e.get('message', '')}" for e in errors)
    return ""


def detector_id(record: dict[str, Any]) -> str | None:
    custody = record.get("custody") or {}
    if custody.get("detector_id"):
        return str(custody["detector_id"])
    detector = record.get("detector") or {}
    return str(detector["id"]) if detector.get("id") else None


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Strict JSON: NaN/Infinity (not JSON) become null rather than an unparseable document.

    A backend's raw logits may hold -inf; a whole scan's output must not be lost to it.
    """
    separators = None if indent is not None else (",", ":")
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators, allow_nan=False)
    except ValueError as exc:
        if "float" not in str(exc):  # e.g. a circular reference: a producer bug, not data
            raise
        return json.dumps(_finite(obj), ensure_ascii=False, indent=indent, separators=separators,
                          allow_nan=False)
