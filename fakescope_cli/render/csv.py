"""`--format csv`: a header row, then one row per record, written and flushed as it comes.

Columns (stable; new ones are only ever appended):
path, verdict, p_fake, sha256, bytes, format, width, height, evidence_signals, reasons,
error_codes, detector_id, scanned_at, warning_codes, p_fake_basis, score, duration_s, codecs, fps,
frames_scored, frame_scores.
- the last five are a video's (empty for a still image): frame_scores is `t:p_fake` pairs joined by `;`.
- p_fake: a plain decimal in [0, 1]; empty when there is no score (as are other null fields).
- p_fake_basis: provenance, pixels or hint (record.schema.json). score: p_fake as a person should
  read it: a percentage ("99.0%") where provenance or the detector's band decided, "hint 0.85"
  where the detector's band is closed and its score only ranks images (sort by it, never read it
  as a probability).
- evidence_signals: `source:signal` pairs joined by `;` (e.g. `c2pa:ai;exif:camera`).
- reasons: joined by `; `. error_codes, warning_codes: joined by `;`.
Rows end in `\\n`; fields holding commas, quotes or line breaks are quoted (RFC 4180 quoting), so
a file name with a newline stays one field.

Formula-injection guard: a spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and,
in some, a tab or carriage return) as a formula, and file names and metadata-derived reasons are
attacker-controlled. Such text cells get a leading `'`, which spreadsheets hide and treat as
"this is text" (OWASP, "CSV Injection"). Numeric cells written by fakescope never start with
those characters. Scripts reading the CSV should strip one leading `'` from cells where the next
character is one of these; `--format jsonl` carries the exact values.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

from fakescope_cli.render._common import detector_id, score_basis, score_text
from fakescope_cli.render._video import CSV_COLUMNS as VIDEO_COLUMNS
from fakescope_cli.render._video import csv_cells as video_cells

COLUMNS: tuple[str, ...] = (
    "path", "verdict", "p_fake", "sha256", "bytes", "format", "width", "height",
    "evidence_signals", "reasons", "error_codes", "detector_id", "scanned_at",
    "warning_codes", "p_fake_basis", "score", *VIDEO_COLUMNS,
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guard(cell: str) -> str:
    """Neutralise a text cell a spreadsheet would evaluate as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return text or "0"
    return str(value)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def row(record: dict[str, Any]) -> list[str]:
    custody = record.get("custody") or {}
    signals = _unique([f"{e.get('source')}:{e.get('signal')}" for e in record.get("evidence") or []])
    cells = {
        "path": record.get("path") or "",
        "verdict": record.get("verdict") or "",
        "p_fake": _number(record.get("p_fake")),
        "sha256": record.get("sha256") or "",
        "bytes": _number(record.get("bytes")),
        "format": record.get("format") or "",
        "width": _number(record.get("width")),
        "height": _number(record.get("height")),
        "evidence_signals": ";".join(signals),
        "reasons": "; ".join(str(r) for r in record.get("reasons") or []),
        "error_codes": ";".join(_unique([str(e.get("code")) for e in record.get("errors") or []])),
        "detector_id": detector_id(record) or "",
        "scanned_at": custody.get("scanned_at") or "",
        "warning_codes": ";".join(_unique([str(e.get("code")) for e in record.get("warnings") or []])),
        "p_fake_basis": score_basis(record) or "",
        "score": score_text(record, missing=""),
        **video_cells(record),
    }
    return [guard(str(cells[name])) for name in COLUMNS]


class CsvRenderer:
    def __init__(self, stream: TextIO, *, color: bool = False, width: int | None = None):
        self.stream = stream
        self.writer = csv.writer(stream, lineterminator="\n")

    def start(self, header: dict[str, Any]) -> None:
        self.writer.writerow(COLUMNS)
        self.stream.flush()

    def add(self, record: dict[str, Any]) -> None:
        self.writer.writerow(row(record))
        self.stream.flush()

    def finish(self, header: dict[str, Any]) -> None:
        self.stream.flush()
