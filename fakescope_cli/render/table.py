"""`--format table` (the default on a terminal): a Rich table, readable at 80 columns.

Columns: verdict (a coloured badge), p_fake (percent, "—" without a score), file (shortened from
the left, so the file name survives), why (the first reason, else the evidence, else the error).
Below it, a detail block for images whose detector gave attributes or an explanation, then one
summary line. Everything is printed in `finish`: a table cannot be streamed, its column widths
depend on all rows. With color=False no ANSI sequence at all is written.
"""

from __future__ import annotations

from typing import Any, TextIO

from fakescope_cli.record import VERDICTS
from fakescope_cli.render._common import display_text, main_reason, percent

BADGE_STYLES: dict[str, str] = {
    "ai-generated": "bold white on red",
    "ai-edited": "bold white on magenta",
    "likely-ai": "bold black on yellow",
    "uncertain": "black on white",
    "likely-real": "bold white on green",
    "no-verdict": "dim",
    "error": "bold red",
}
_P_WIDTH = 6  # "100.0%"
_WHY_MAX_CHARS = 140  # about four lines at 80 columns; the full reasons are in --format json
_MIN_FILE = 12
_MIN_WHY = 16


def shorten_left(text: str, width: int) -> str:
    """Keep the end of `text` (the file name) within `width` terminal cells, "…" marking the cut."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    kept: list[str] = []
    used = 1  # the ellipsis
    for ch in reversed(text):
        w = cell_len(ch)
        if used + w > width:
            break
        kept.append(ch)
        used += w
    return "…" + "".join(reversed(kept))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class TableRenderer:
    def __init__(self, stream: TextIO, *, color: bool, width: int | None = None):
        from rich.console import Console

        self.color = color
        # color_system=None makes Rich emit plain text only (no colour, bold or hyperlink codes),
        # whatever FORCE_COLOR or the terminal say: the caller has already decided.
        self.console = Console(
            file=stream,
            width=width,
            color_system="standard" if color else None,
            force_terminal=color,
            force_interactive=False,
            highlight=False,
            markup=False,
            emoji=False,
            legacy_windows=False,
            soft_wrap=False,
        )
        self.records: list[dict[str, Any]] = []

    def start(self, header: dict[str, Any]) -> None:
        pass

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def finish(self, header: dict[str, Any]) -> None:
        if self.records:
            self.console.print(self._table())
            self.console.print()
            for record in self.records:
                if _has_detail(record):
                    self._detail(record)  # each block ends with a blank line
        else:
            self.console.print("No images were analysed.")
        self.console.print(self._summary(header))

    # --- the table -----------------------------------------------------------------------------
    def _table(self) -> Any:
        from rich import box
        from rich.cells import cell_len
        from rich.table import Table
        from rich.text import Text

        total = self.console.width
        paths = [display_text(str(r.get("path", ""))) for r in self.records]
        verdicts = [str(r.get("verdict", "")) for r in self.records]
        verdict_w = max(len("verdict"), *(len(v) for v in verdicts))
        # show_edge=False, pad_edge=False: one padding cell each side between columns plus the
        # box's vertical separator (three cells per gap, three gaps).
        room = max(total - verdict_w - _P_WIDTH - 9, _MIN_FILE + _MIN_WHY)
        longest_path = max(cell_len(p) for p in paths)
        file_w = max(_MIN_FILE, min(longest_path, room * 2 // 5))  # the reason needs more room
        why_w = max(_MIN_WHY, room - file_w)

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
        table.add_column("verdict", width=verdict_w, no_wrap=True)
        table.add_column("p_fake", width=_P_WIDTH, justify="right", no_wrap=True)
        table.add_column("file", width=file_w, no_wrap=True, overflow="ellipsis")
        table.add_column("why", width=why_w, overflow="fold")
        for record, path, verdict in zip(self.records, paths, verdicts, strict=True):
            why = _clip(display_text(main_reason(record)), _WHY_MAX_CHARS)
            extra = len(record.get("reasons") or []) - 1
            if extra > 0:
                why += f" (+{extra} more)"
            table.add_row(
                Text(verdict, style=BADGE_STYLES.get(verdict, "")),
                percent(record.get("p_fake")),
                Text(shorten_left(path, file_w)),
                Text(why),
            )
        return table

    # --- detail block ------------------------------------------------------------------------
    def _detail(self, record: dict[str, Any]) -> None:
        from rich.padding import Padding
        from rich.table import Table
        from rich.text import Text

        detector = record.get("detector") or {}
        head = Text(overflow="fold")
        head.append(display_text(str(record.get("path", ""))), style="bold")
        head.append("  ")
        verdict = str(record.get("verdict", ""))
        head.append(verdict, style=BADGE_STYLES.get(verdict, ""))
        head.append(f"  {percent(record.get('p_fake'))}")
        ident = " ".join(str(detector[k]) for k in ("id", "version") if detector.get(k))
        if ident:
            head.append(f"  ({display_text(ident)})", style="dim")
        self.console.print(head)

        # A borderless two-column grid: wrapped values keep a hanging indent under their label.
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        attributes = detector.get("attributes")
        if isinstance(attributes, dict) and attributes:
            ranked = sorted(
                ((str(k), v) for k, v in attributes.items() if isinstance(v, (int, float))),
                key=lambda kv: -kv[1],
            )
            grid.add_row("attributes", Text(", ".join(f"{display_text(k)} {v * 100:.0f}%" for k, v in ranked)))
        regions = _regions_line(detector.get("regions"))
        if regions:
            grid.add_row("regions", Text(regions))
        explanation = detector.get("explanation")
        if isinstance(explanation, str) and explanation.strip():
            # Line breaks in an explanation are paragraphs: keep them, escape other controls.
            lines = [display_text(line) for line in explanation.strip().splitlines()]
            grid.add_row("explanation", Text("\n".join(lines)))
        self.console.print(Padding(grid, (0, 0, 0, 2)))
        self.console.print()

    # --- summary ----------------------------------------------------------------------------
    def _summary(self, header: dict[str, Any]) -> Any:
        from rich.text import Text

        counts = header.get("counts") or {}
        files = counts.get("files", len(self.records))
        text = Text(overflow="fold")
        text.append(f"{files} file{'s' if files != 1 else ''}", style="bold")
        parts = [
            (f"{counts[v]} {v}", BADGE_STYLES[v])
            for v in VERDICTS
            if v != "error" and counts.get(v)
        ]
        errors = counts.get("errors", counts.get("error", 0))
        if errors:
            parts.append((f"{errors} error{'s' if errors != 1 else ''}", "bold red"))
        skipped = counts.get("skipped", 0)
        if skipped:
            parts.append((f"{skipped} non-image file{'s' if skipped != 1 else ''} skipped", "dim"))
        for label, style in parts:
            text.append(" · ")
            text.append(label, style=style)
        if header.get("interrupted"):
            text.append(" · ")
            partial = "stopped early: results are partial" if header.get("error") else "interrupted: results are partial"
            text.append(partial, style="bold yellow")
        return text


def _has_detail(record: dict[str, Any]) -> bool:
    detector = record.get("detector") or {}
    return bool(detector.get("attributes")) or bool(str(detector.get("explanation") or "").strip())


def _regions_line(regions: Any) -> str:
    """One line about a region grid {"rows", "cols", "p_fake": [[...]]}, or "" when there is none."""
    if not isinstance(regions, dict):
        return ""
    grid = regions.get("p_fake")
    if not isinstance(grid, list) or not grid:
        return ""
    best: tuple[float, int, int] | None = None
    for r, row in enumerate(grid):
        if not isinstance(row, list):
            return ""
        for c, value in enumerate(row):
            if isinstance(value, (int, float)) and (best is None or value > best[0]):
                best = (float(value), r, c)
    if best is None:
        return ""
    rows = regions.get("rows", len(grid))
    cols = regions.get("cols", max(len(row) for row in grid))
    return f"{rows}×{cols} grid, highest {percent(best[0])} at row {best[1] + 1}, column {best[2] + 1}"
