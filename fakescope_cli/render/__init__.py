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
    `width` overrides the terminal width for `table` (None: detect, 80 when not a terminal).
    """
    try:
        module_name, class_name = _RENDERERS[fmt]
    except KeyError:
        raise UsageError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}") from None
    cls = getattr(importlib.import_module(module_name), class_name)
    renderer: Renderer = cls(stream, color=color, width=width)
    return renderer
