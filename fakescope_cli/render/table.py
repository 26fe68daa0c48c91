"""`--format table` (the default on a terminal): a Rich table, readable at 80 columns.

On a terminal the table fits its width; written to a file or a pipe (no terminal, no explicit
width, no COLUMNS in the environment) it is as wide as its longest row needs, so paths and reasons
are never broken, and no line ends in spaces. A reason that several rows share is printed once, as
a numbered note under the table, and the rows say "[1]".

Columns: verdict (a coloured badge), p_fake (percent, "—" without a score; "hint 0.85" in neutral
style when the detector's band is closed and the score ranks but cannot decide), file (wrapped at folder
boundaries; a long path loses its start, but never so much that two distinct files read the same),
why (the first reason, else the evidence, else the error). Verdict and p_fake are the answer: they
are never cut; on a narrow terminal file and why give way, and on an absurdly narrow one the lines
run past the width rather than hide the verdict.
Below it, a detail block for images whose detector gave attributes or an explanation, then one
summary line. Everything is printed in `finish`: a table cannot be streamed, its column widths
depend on all rows. With color=False no ANSI sequence at all is written.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections import Counter
from itertools import pairwise
from typing import Any, TextIO

from fakescope_cli.record import VERDICTS
from fakescope_cli.render._common import display_text, main_reason, percent, score_basis, score_text
from fakescope_cli.render._video import summary_line as video_summary

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
_HINT_WIDTH = 9  # "hint 0.85"
_HINT_STYLE = "dim"  # neutral: a ranking hint must not look like a finding
_FOOTNOTE_MIN_ROWS = 2  # a reason on this many rows or more is printed once, under the table
_FOOTNOTE_MIN_CHARS = 40  # shorter reasons cost no more than their note mark
_FULL_WIDTH_MAX = 1000  # no terminal: as wide as the rows need, up to this
_WHY_MAX_CHARS = 140  # about four lines at 80 columns; the full reasons are in --format json
_WHY_MIN_CHARS = 60  # the reason keeps at least this much beside the marks
_MARK_MAX_CHARS = 70  # one "+warnings: …" mark; the codes are all in the record
_MIN_FILE = 8
_MIN_WHY = 10
# A path longer than this many lines of the file column loses its start (unless that start is what
# tells it apart from another row's path): rows stay short, and the file name always survives.
_FILE_LINES = 3
# One displayed character, or one escape written by display_text ("\\n", "\\x1b"): never split.
_TOKEN = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt])|.", re.S)


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


def _common_suffix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        n += 1
    return n


def distinguishing_suffixes(paths: list[str]) -> list[int]:
    """For each path, how many trailing characters tell it apart from every other distinct path.

    Sorting the reversed paths puts the path sharing the longest ending with any given one right
    beside it, so this is O(n log n) rather than comparing every pair (scans hold thousands).
    """
    ordered = sorted(set(paths), key=lambda p: p[::-1])
    shared: dict[str, int] = dict.fromkeys(ordered, 0)
    for a, b in pairwise(ordered):
        n = _common_suffix(a, b)
        shared[a] = max(shared[a], n)
        shared[b] = max(shared[b], n)
    return [min(len(p), shared[p] + 1) for p in paths]


def shorten_path(path: str, width: int, keep: int = 0) -> str:
    """`path` within `width` cells, cut on the left at a folder boundary where possible ("…/a/b.jpg").

    At least its last `keep` characters are kept, even past `width`: distinct files must never
    read the same, which matters more than a short row.
    """
    from rich.cells import cell_len

    if cell_len(path) <= width:
        return path
    limit = len(path) - keep  # the shown part must start at or before this index
    # Folder boundaries; not inside "//" (a URL in a name), which would read "…//x".
    slashes = [i for i, ch in enumerate(path)
               if ch == "/" and 0 < i < len(path) - 1 and "/" not in (path[i - 1], path[i + 1])]
    fitting = [i for i in slashes if i <= limit and cell_len(path[i:]) + 1 <= width]
    if fitting:
        start = min(fitting)  # the most folders that fit
    else:
        # No whole folder fits: cut inside a name, just after a "_", "-", "." or space if one is near.
        breaks = sorted([*slashes, *(i + 1 for i, ch in enumerate(path) if ch in "_-. ")])
        start = len(path)
        while start > 0 and cell_len(path[start - 1 :]) + 1 <= width:
            start -= 1
        if start > limit:
            # The width cannot tell this file from another: show more, from a break before what does.
            start = max([0, *(b for b in breaks if b <= limit)])
        else:
            start = min([b for b in breaks if start <= b <= min(limit, start + 12)], default=start)
    return path if start <= 0 else "…" + path[start:]


def _pieces(name: str) -> list[str]:
    """`name` split where a line may break: after "_", "-", " " or a "." other than the extension's,
    and before an escape, so "IMG_" / "0001.jpg" and "red" / "\\x1b[0m.png" stay readable."""
    extension_dot = name.rfind(".")
    pieces: list[str] = []
    current = ""
    for match in _TOKEN.finditer(name):
        token = match.group()
        if len(token) > 1 and current:
            pieces.append(current)
            current = ""
        current += token
        if token in ("_", "-", " ") or (token == "." and match.start() != extension_dot):
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def wrap_path(text: str, width: int) -> str:
    """`text` broken into lines of at most `width` cells, after "/" where possible.

    A folder or file name that fits a line is never split; a longer one breaks between its
    pieces (see _pieces), and is folded only when a piece still does not fit. Rich alone would
    wrap at spaces only and fold paths at arbitrary characters ("batch_o" / "ne").
    """
    from rich.cells import cell_len

    lines: list[str] = []
    line = ""

    def put(chunk: str) -> None:
        nonlocal line
        if line and cell_len(line) + cell_len(chunk) > width:
            lines.append(line)
            line = ""
        line += chunk

    for part in re.findall(r"[^/]*/|[^/]+", text):
        if cell_len(part) <= width:
            put(part)  # a whole folder or file name: on this line, else alone on the next
            continue
        for piece in _pieces(part):
            if cell_len(piece) <= width:
                put(piece)
            else:
                for token in _TOKEN.findall(piece):  # fold what still does not fit
                    put(token)
    if line or not lines:
        lines.append(line)
    return "\n".join(lines)


def _layout(total: int, verdict_w: int, longest_path: int, p_w: int = _P_WIDTH) -> tuple[int, int, int]:
    """(padding, file width, why width) for a `total`-cell terminal.

    Verdict and p_fake keep their full width whatever happens. Below them, the gaps between
    columns shrink to one space before file and why go under their minimums; past that the
    table is wider than `total` (the caller then lets lines run long instead of cropping).
    """
    room = 0
    for pad in (1, 0):
        # show_edge=False, pad_edge=False: three gaps, each `pad` cells either side of a
        # one-cell separator.
        room = total - verdict_w - p_w - 3 * (1 + 2 * pad)
        if room >= _MIN_FILE + _MIN_WHY:
            break
    room = max(room, _MIN_FILE + _MIN_WHY)
    # The reason is usually the longer text: the file column takes at most two fifths.
    file_w = max(_MIN_FILE, min(longest_path, room * 2 // 5))
    return pad, file_w, room - file_w


def _console_class() -> type:
    # Defined on first use: Rich is imported lazily, to keep start-up fast.
    from rich.console import Console

    class PipeConsole(Console):
        """A Console that lets a closed stdout surface as BrokenPipeError.

        Rich's default answer is SystemExit(1), which the CLI cannot tell from a tripped
        --fail-above gate; the CLI turns BrokenPipeError into its documented exit code 141.
        """

        def on_broken_pipe(self) -> None:
            self.quiet = True  # write nothing more, as Rich's own handler does
            current = sys.exc_info()[1]  # called inside Rich's `except BrokenPipeError`
            if isinstance(current, BrokenPipeError):
                raise current
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    return PipeConsole


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _folded(text: str) -> Any:
    """Plain text that folds at the console's width (Rich is imported on first use)."""
    from rich.text import Text

    return Text(text, overflow="fold")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class TableRenderer:
    def __init__(self, stream: TextIO, *, color: bool, width: int | None = None):
        self.color = color
        self.stream = stream
        # Not a terminal and no width asked for: the table takes the width its rows need (set in
        # `finish`), rather than Rich's 80 columns for a file.
        # COLUMNS, when exported, still sets the width, as Rich and other tools read it.
        self.full_width = width is None and not _is_terminal(stream) and not os.environ.get("COLUMNS")
        self.footnotes: dict[str, int] = {}  # shared reason -> its note number (set by _table)
        self._natural_width = 0  # the table's width without a terminal (set by _table)
        # color_system=None makes Rich emit plain text only (no colour, bold or hyperlink codes),
        # whatever FORCE_COLOR or the terminal say: the caller has already decided.
        self.console = _console_class()(
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
        if not self.color:
            # Plain text: rendered whole, then written without the spaces Rich pads lines with.
            with self.console.capture() as captured:
                self._print_all(header)
            lines = captured.get().split("\n")
            for i, line in enumerate(lines):
                # Line by line: one large write can vanish whole into a pipe whose reader has
                # gone (`| head -1`), and the closed pipe must surface as exit 141.
                self.stream.write(line.rstrip() + ("\n" if i < len(lines) - 1 else ""))
            self.stream.flush()
            return
        self._print_all(header)

    def _print_all(self, header: dict[str, Any]) -> None:
        if self.records:
            if self.full_width:
                self.console.width = _FULL_WIDTH_MAX
            table = self._table()
            if self.full_width:
                self.console.width = max(80, self._natural_width)
            # crop=False: on an absurdly narrow terminal the table is wider than the console, and
            # a long line beats a verdict cut off at the edge.
            self.console.print(table, crop=False)
            self.console.print()
            for text, number in self.footnotes.items():
                self.console.print(_folded(f"[{number}] {text}"))
            if self.footnotes:
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
        verdict_w = max(len("verdict"), *(cell_len(v) for v in verdicts))
        p_w = _HINT_WIDTH if any(score_basis(r) == "hint" for r in self.records) else _P_WIDTH
        reasons = [display_text(main_reason(r)) for r in self.records]
        shared = Counter(reasons)
        self.footnotes = {}
        for reason in reasons:
            if (shared[reason] >= _FOOTNOTE_MIN_ROWS and len(reason) >= _FOOTNOTE_MIN_CHARS
                    and reason not in self.footnotes):
                self.footnotes[reason] = len(self.footnotes) + 1
        pad, file_w, why_w = _layout(total, verdict_w, max(cell_len(p) for p in paths), p_w)

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False,
                      padding=(0, pad))
        if self.full_width:
            # As wide as the rows need: the longest path whole, the longest reason (as clipped below).
            pad, file_w = 1, max(_MIN_FILE, max(cell_len(p) for p in paths))
            why_w = max(_MIN_WHY, len("why"), *(cell_len(self._why(r, reason)) for r, reason in
                                                 zip(self.records, reasons, strict=True)))
        width = verdict_w + p_w + file_w + why_w + 3 * (1 + 2 * pad)
        self._natural_width = width
        if width > total:
            table.width = width  # wider than the terminal: see _layout
        table.add_column("verdict", width=verdict_w, no_wrap=True)
        table.add_column("p_fake", width=p_w, justify="right", no_wrap=True)
        # Pre-wrapped by wrap_path: every line already fits, "fold" is only a safety net.
        table.add_column("file", width=file_w, overflow="fold")
        table.add_column("why", width=why_w, overflow="fold")
        keeps = distinguishing_suffixes(paths)
        for record, path, keep, verdict, reason in zip(self.records, paths, keeps, verdicts, reasons, strict=True):
            hint = score_basis(record) == "hint"
            table.add_row(
                Text(verdict, style=BADGE_STYLES.get(verdict, "")),
                Text(score_text(record), style=_HINT_STYLE if hint else ""),
                Text(wrap_path(shorten_path(path, file_w * _FILE_LINES, keep), file_w)),
                Text(self._why(record, reason)),
            )
        return table

    def _why(self, record: dict[str, Any], reason: str) -> str:
        """The why cell: the first reason (or its note number), then "+N more" and problem marks.
        Errors and warnings are marked on the row (the reason rarely says them); their room comes
        out of the reason's, so a marked row is no longer than another."""
        marks = [_clip(m, _MARK_MAX_CHARS) for m in _problem_marks(record)]
        room = max(_WHY_MIN_CHARS, _WHY_MAX_CHARS - sum(len(m) + 2 for m in marks))
        number = self.footnotes.get(reason)
        why = f"[{number}]" if number is not None else _clip(reason, room)
        extra = len(record.get("reasons") or []) - 1
        video = video_summary(record)
        tags = ([video] if video else []) + ([f"+{extra} more"] if extra > 0 else []) + marks
        if tags:
            why += f" ({'; '.join(tags)})"
        return why

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
        head.append(f"  {score_text(record)}")
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
        if len(self.records) < files:  # `--only` left some out; the counts below cover them all
            text.append(f" ({len(self.records)} shown)", style="bold")
        # Verdicts first, which add up to the file count; then how many files carry errors or
        # warnings, which overlap the verdicts and so are worded "with …", never as a verdict.
        parts = [
            (f"{counts[v]} {v}", BADGE_STYLES[v])
            for v in VERDICTS
            if v != "error" and counts.get(v)
        ]
        error_verdicts = counts.get("error", 0)
        if error_verdicts:
            parts.append((f"{error_verdicts} error{'s' if error_verdicts != 1 else ''}", "bold red"))
        with_errors = counts.get("errors", sum(1 for r in self.records if r.get("errors")))
        if with_errors > error_verdicts:
            # Some files got a verdict despite an error (provenance decided, pixels unreadable).
            parts.append((f"{with_errors} with errors", "red"))
        with_warnings = sum(1 for r in self.records if r.get("warnings"))
        if with_warnings:
            parts.append((f"{with_warnings} with warnings", "yellow"))
        skipped = counts.get("skipped", 0)
        if skipped:
            parts.append((f"{skipped} non-image file{'s' if skipped != 1 else ''} skipped", "dim"))
        by_ext = counts.get("skipped_by_ext", 0)
        if by_ext:
            parts.append((f"{by_ext} skipped by --ext", "dim"))
        for label, style in parts:
            text.append(" · ")
            text.append(label, style=style)
        if header.get("interrupted"):
            text.append(" · ")
            partial = "stopped early: results are partial" if header.get("error") else "interrupted: results are partial"
            text.append(partial, style="bold yellow")
        return text


def _codes(entries: Any, limit: int = 3) -> list[str]:
    codes = list(dict.fromkeys(display_text(str(e.get("code", "?"))) for e in entries if isinstance(e, dict)))
    return codes[:limit] + (["…"] if len(codes) > limit else [])


def _problem_marks(record: dict[str, Any]) -> list[str]:
    """["+error: truncated", "+warning: first-frame-only"] for a row whose file has errors or
    warnings. An `error` row already says its error in its why."""
    marks = []
    errors = record.get("errors") or []
    if errors and record.get("verdict") != "error":
        marks.append(f"+error{'s' if len(errors) > 1 else ''}: {', '.join(_codes(errors))}")
    warnings = record.get("warnings") or []
    if warnings:
        marks.append(f"+warning{'s' if len(warnings) > 1 else ''}: {', '.join(_codes(warnings))}")
    return marks


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
