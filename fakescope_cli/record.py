"""The versioned result record: one per input, the single model every renderer reads.

A record is a plain dict at the boundary (JSON-ready, validated by schema/record.schema.json);
`ScanRecord` builds it so every producer fills the same fields.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli import __version__

RECORD_SCHEMA_VERSION = "1.1"  # 1.1: p_fake_basis; p_fake of pixels alone capped at 0.95
PROTOCOL_VERSION = "fakescope-protocol/1"  # DESIGN.md prompt protocol; bumped when prompts change

# Verdicts, from most to least alarming. Stable strings: scripts and SARIF rules key on them.
VERDICTS: tuple[str, ...] = (
    "ai-generated",  # strong provenance says a model made it
    "ai-edited",  # strong provenance says generative tools changed a real image
    "likely-ai",  # the pixel detector is above its upper threshold
    "uncertain",  # the pixel detector is inside its uncertain band
    "likely-real",  # the pixel detector is below its lower threshold
    "no-verdict",  # nothing decided: no strong provenance and no detector score
    "error",  # the file could not be analysed
)
FLAGGED_VERDICTS = frozenset({"ai-generated", "ai-edited", "likely-ai"})


# Timestamps through `time`, not `datetime` (whose import is ~1.5 ms of a one-file scan); the text is
# what datetime.isoformat gives (tests/test_record.py compares the two).
def utc_now() -> str:
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{ns // 1_000_000:03d}Z"


def file_time(mtime_ns: int) -> str:
    """A file's modification time as the record's custody shows it (UTC, whole seconds)."""
    # As datetime.fromtimestamp(mtime_ns / 1e9) reads it: the float's microseconds rounded half-even,
    # which can carry into the next second (or, before 1970, borrow from it).
    fraction, whole = math.modf(mtime_ns / 1e9)
    micro = round(fraction * 1e6)
    seconds = int(whole) + (1 if micro >= 1_000_000 else -1 if micro < 0 else 0)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class ScanRecord:
    path: str
    sha256: str | None = None
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    verdict: str = "no-verdict"
    p_fake: float | None = None
    p_fake_basis: str | None = None  # fusion.BASIS_*: provenance, pixels, hint; None without a score
    reasons: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    detector: dict[str, Any] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    detector_id: str | None = None
    detector_version: str | None = None
    weights_sha256: str | None = None
    scanned_at: str = field(default_factory=utc_now)
    mtime: str | None = None
    video: dict[str, Any] | None = None  # videos and animations: container facts, frame timeline

    def add_error(self, code: str, message: str) -> None:
        self.errors.append({"code": code, "message": message})
        self.verdict = "error"

    def to_dict(self) -> dict[str, Any]:
        record = {
            "schema_version": RECORD_SCHEMA_VERSION,
            "path": self.path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "verdict": self.verdict,
            "p_fake": self.p_fake,
            "p_fake_basis": self.p_fake_basis,
            "reasons": self.reasons,
            "evidence": self.evidence,
            "detector": self.detector,
            "errors": self.errors,
            "warnings": self.warnings,
            "custody": {
                "tool": "fakescope",
                "tool_version": __version__,
                "protocol_version": PROTOCOL_VERSION,
                "detector_id": self.detector_id,
                "detector_version": self.detector_version,
                "weights_sha256": self.weights_sha256,
                "file_mtime": self.mtime,
                "scanned_at": self.scanned_at,
            },
        }
        if self.video is not None:
            record["video"] = self.video
        return record


def _c2pa_trust() -> list[dict[str, Any]] | None:
    """The C2PA trust lists this run checks signers against (file, sha256), or None."""
    from fakescope_cli.evidence.c2pa_trust import in_use

    return in_use()


def platform_name() -> str:
    """platform.platform(terse=True), without importing `platform` on Linux (~1.5 ms of a one-file
    scan) nor the `uname -p` child process it starts there for a processor name that comes out blank:
    the same parts (system, release, machine, "with", the C library) in the same cleaned-up form."""
    import os
    import sys

    uname = os.uname()
    try:
        libc = (os.confstr("CS_GNU_LIBC_VERSION") or "").replace(" ", "")  # "glibc 2.36" -> "glibc2.36"
    except (ValueError, OSError):
        libc = ""
    if sys.platform != "linux" or not libc:
        import platform

        return platform.platform(terse=True)
    text = "-".join(part.strip() for part in (uname.sysname, uname.release, uname.machine, "with", libc) if part)
    text = text.replace(" ", "_").replace("unknown", "")
    for char in '/\\:;"()':
        text = text.replace(char, "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text.rstrip("-")


def run_header(arguments: list[str], detector: dict[str, Any] | None, started_at: str) -> dict[str, Any]:
    """The run block of json/sarif output; `finish_header` adds end time and counts."""
    import sys

    return {
        "tool": "fakescope",
        "tool_version": __version__,
        "record_schema_version": RECORD_SCHEMA_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "python": sys.version.split()[0],
        "platform": platform_name(),
        "arguments": arguments,
        "detector": detector,
        "c2pa_trust": _c2pa_trust(),
        "started_at": started_at,
        "finished_at": None,
        "interrupted": False,
        "counts": {},
    }


def count_records(records_summary: dict[str, int], record: dict[str, Any]) -> None:
    """Tally one record into a {"files", "errors", <verdict>…} summary in place."""
    records_summary["files"] = records_summary.get("files", 0) + 1
    verdict = record["verdict"]
    records_summary[verdict] = records_summary.get(verdict, 0) + 1
