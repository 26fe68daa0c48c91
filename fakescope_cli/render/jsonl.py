"""`--format jsonl`: one record per line, written and flushed as each file finishes.

Only records, no header or summary line: every line has the same shape (record.schema.json), so
`jq`, `while read` loops and `pandas.read_json(lines=True)` need no special cases. The run header
and counts are in the json and sarif formats; the exit code says whether anything failed.

Each line is compact JSON with non-ASCII kept as UTF-8. U+2028/U+2029 are escaped: they are legal
inside JSON strings, but `str.splitlines()` and JavaScript line readers treat them as line breaks.
"""

from __future__ import annotations

from typing import Any, TextIO

from fakescope_cli.render._common import dumps


class JsonlRenderer:
    def __init__(self, stream: TextIO, *, color: bool = False, width: int | None = None):
        self.stream = stream

    def start(self, header: dict[str, Any]) -> None:
        pass

    def add(self, record: dict[str, Any]) -> None:
        line = dumps(record).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        self.stream.write(line + "\n")
        self.stream.flush()  # a consumer (tail -f, a pipe) sees each record as soon as it exists

    def finish(self, header: dict[str, Any]) -> None:
        self.stream.flush()
