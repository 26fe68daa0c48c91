"""`--format json`: one document, {"run": header, "results": [records]}, written at the end.

Written in `finish`, which the scan calls after Ctrl-C too: an interrupted run still yields a
complete document, with run.interrupted = true and the records analysed so far.
"""

from __future__ import annotations

from typing import Any, TextIO

from fakescope_cli.render._common import dumps


class JsonRenderer:
    def __init__(self, stream: TextIO, *, color: bool = False, width: int | None = None):
        self.stream = stream
        self.records: list[dict[str, Any]] = []

    def start(self, header: dict[str, Any]) -> None:
        pass

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def finish(self, header: dict[str, Any]) -> None:
        self.stream.write(dumps({"run": header, "results": self.records}, indent=2))
        self.stream.write("\n")
        self.stream.flush()
