"""Renderers: turn the stream of record dicts into one output format.

Every renderer has the same life cycle, driven by the scan loop:

    r = make_renderer("json", sys.stdout, color=False)
    r.start(header)          # header = record.run_header(...)
    for record in records:   # ScanRecord.to_dict() dicts, in scan order
        r.add(record)
    r.finish(header)         # header now has finished_at, interrupted and counts

`finish` is called also after Ctrl-C (header["interrupted"] is True) so that a partial run still
produces a complete, parseable document. Streaming formats (jsonl, csv) write and flush each record
in `add`; document formats (table, json, sarif, html) collect and write everything in `finish`.

Each format lives in its own module, imported only when chosen, so `fakescope --help` never pays
for Rich tables or SARIF rule tables.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TextIO

from fakescope_cli.errors import UsageError

# format name -> (module, class). Order is the order shown in --help.
_RENDERERS: dict[str, tuple[str, str]] = {
    "table": ("fakescope_cli.render.table", "TableRenderer"),
    "json": ("fakescope_cli.render.json", "JsonRenderer"),
    "jsonl": ("fakescope_cli.render.jsonl", "JsonlRenderer"),
    "csv": ("fakescope_cli.render.csv", "CsvRenderer"),
    "sarif": ("fakescope_cli.render.sarif", "SarifRenderer"),
    "html": ("fakescope_cli.render.html", "HtmlRenderer"),
}
FORMATS: tuple[str, ...] = tuple(_RENDERERS)


class Renderer(Protocol):
    def start(self, header: dict[str, Any]) -> None: ...

    def add(self, record: dict[str, Any]) -> None: ...

    def finish(self, header: dict[str, Any]) -> None: ...


def make_renderer(fmt: str, stream: TextIO, *, color: bool, width: int | None = None) -> Renderer:
    """The renderer for `fmt`, writing to `stream`.

    `color` is decided by the caller (TTY, --color/--no-color, NO_COLOR); only `table` uses it.
    `width` overrides the terminal width for `table` (None: the terminal's; not a terminal, as wide
    as the rows need unless COLUMNS is exported).
    """
    try:
        module_name, class_name = _RENDERERS[fmt]
    except KeyError:
        raise UsageError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}") from None
    cls = getattr(importlib.import_module(module_name), class_name)
    renderer: Renderer = cls(stream, color=color, width=width)
    return renderer


# `--only` words besides the verdicts themselves. "attention" is what an investigator must look at:
# what provenance or a decided pixel score flags, and every file with an error or warning. An
# `uncertain` pixel hint is not in it: ranking hints are what it filters out.
_FLAGGED = ("ai-generated", "ai-edited", "likely-ai")
ONLY_WORDS: tuple[str, ...] = ("attention", "flagged", "errors", "warnings")


def parse_only(values: Iterable[str] | None) -> frozenset[str]:
    """`--only` values (repeated or comma-separated); UsageError for an unknown word."""
    from fakescope_cli.record import VERDICTS

    words: set[str] = set()
    for value in values or ():
        for word in value.split(","):
            word = word.strip().lower()
            if not word:
                continue
            if word not in ONLY_WORDS and word not in VERDICTS:
                raise UsageError(f"--only: {word!r} is not one of {', '.join(ONLY_WORDS)} or a verdict "
                                 f"({', '.join(VERDICTS)})")
            words.add(word)
    return frozenset(words)


def record_filter(only: frozenset[str]) -> Callable[[dict[str, Any]], bool]:
    """Whether a record is written under `--only` (every record when `only` is empty)."""
    if not only:
        return lambda record: True
    verdicts = {w for w in only if w not in ONLY_WORDS}
    if only & {"attention", "flagged"}:
        verdicts.update(_FLAGGED)
    want_errors = bool(only & {"attention", "errors"})
    want_warnings = bool(only & {"attention", "warnings"})

    def shown(record: dict[str, Any]) -> bool:
        return (record.get("verdict") in verdicts
                or (want_errors and (bool(record.get("errors")) or record.get("verdict") == "error"))
                or (want_warnings and bool(record.get("warnings"))))

    return shown
