"""`--format jsonl`: one record per line, written and flushed as each file finishes.

Records only, one shape per line (record.schema.json), so `jq`, `while read` loops and
`pandas.read_json(lines=True)` need no special cases, with one exception a CI job asks for: when a
gate is set (`--fail-on`, `--fail-above`), the last line is the run trailer `{"run": {...}}`, the
json format's run header with counts and the gate's outcome (gates.py), so the output itself says
why the job failed. It has no `path`: `jq 'select(.path)'` keeps the records only. `fakescope
merge` reads it as the shard's run header.

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
        gate = header.get("gate")
        if isinstance(gate, dict) and gate.get("rule"):
            self.stream.write(dumps({"run": header}).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
                              + "\n")
        self.stream.flush()
