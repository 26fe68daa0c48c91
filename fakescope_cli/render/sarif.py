"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning (`github/codeql-action/upload-sarif`).

One run; one result per *flagged* image (verdict in FLAGGED_VERDICTS), under a stable rule per
verdict. Images that were not flagged produce no result: code scanning is a list of findings.
Files that could not be analysed are tool execution notifications (level "error") on the single
invocation, which stays `executionSuccessful: true` unless the scan was interrupted: one unreadable
file does not make the scan itself fail.

What GitHub needs, and why each field is here (docs.github.com, "SARIF support for code scanning"
and "SARIF results exceed limits"):
- rules carry id, shortDescription, fullDescription, help and defaultConfiguration.level; results
  carry ruleId (stable across runs, or alerts churn), ruleIndex, level and message.text;
- each result has one location with artifactLocation.uri and region.startLine. An image has no
  lines; line 1 is what GitHub needs to place the alert on the file;
- partialFingerprints: GitHub matches alerts across runs with them. `sha256/v1` is the image's
  content hash, so a moved or renamed image keeps its alert history and an edited one is new;
- relative paths are written relative to the scan's working directory under uriBaseId %SRCROOT%,
  which upload-sarif resolves to the checkout: run `fakescope scan` from the repository root.
  Absolute paths become file:// URIs without a base;
- hard limits: 25,000 results per run (beyond that GitHub rejects the file) and 10 MB gzipped.
  Results past the limit are dropped, most severe kept first, and a warning notification says so.
No `security-severity` is given: these are content-provenance findings, not vulnerabilities, and
a CVSS-like score would be invented. GitHub shows them by level (error/warning).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, TextIO
from urllib.parse import quote

from fakescope_cli import __version__
from fakescope_cli.errors import ERROR_CODES
from fakescope_cli.record import FLAGGED_VERDICTS, VERDICTS
from fakescope_cli.render._common import detector_id, dumps, main_reason, percent, stop_notice
from fakescope_cli.render._video import sarif_properties as sarif_video_properties

SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/fakescope/"
SRCROOT = "%SRCROOT%"
MAX_RESULTS = 25_000  # GitHub's hard limit per run
_MESSAGE_MAX = 1000
# RFC 3986 pchar minus ":" (a colon in the first segment would read as a URI scheme).
_SEGMENT_SAFE = "-._~!$&'()*+,;=@"

# Stable: ruleId and index never change meaning; new verdicts get new ids appended.
RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "FS1001",
        "name": "AiGeneratedImage",
        "shortDescription": {"text": "Image made by a generative AI model"},
        "fullDescription": {
            "text": "Provenance carried by the file - a C2PA / IPTC digital source type declaring "
            "trained algorithmic media, image-generator metadata, or a Stable Diffusion invisible "
            "watermark - says a generative model made this image."
        },
        "help": {
            "text": "fakescope found provenance in the file that declares it AI-generated. Such "
            "provenance is strong evidence: it is written by the generator or by a signed "
            "Content Credentials manifest. If AI-generated images are allowed here, label the "
            "image or exclude its path; otherwise replace it. Run `fakescope scan --format json "
            "PATH` to see the full evidence.",
            "markdown": "fakescope found **provenance in the file** that declares it AI-generated "
            "(C2PA / IPTC digital source type, generator metadata or a Stable Diffusion "
            "watermark).\n\nIf AI-generated images are allowed here, label the image or exclude its "
            "path; otherwise replace it. `fakescope scan --format json PATH` shows the full evidence.",
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": ["ai-provenance", "generative-ai", "image"],
            "precision": "very-high",
            "problem.severity": "error",
            "verdict": "ai-generated",
        },
    },
    {
        "id": "FS1002",
        "name": "AiEditedImage",
        "shortDescription": {"text": "Image changed with generative AI tools"},
        "fullDescription": {
            "text": "Provenance carried by the file (for example a C2PA manifest with the digital "
            "source type compositeWithTrainedAlgorithmicMedia) says generative tools changed part "
            "of an otherwise captured image, such as generative fill or inpainting."
        },
        "help": {
            "text": "fakescope found provenance in the file that declares a generative edit. The "
            "image may still be mostly a photograph, but part of what it shows was synthesised. "
            "Check that this is acceptable where the image is used. Run `fakescope scan --format "
            "json PATH` to see which actions the provenance lists.",
            "markdown": "fakescope found **provenance declaring a generative edit** (for example "
            "C2PA `compositeWithTrainedAlgorithmicMedia`). Part of what the image shows was "
            "synthesised.\n\n`fakescope scan --format json PATH` shows which actions were recorded.",
        },
        "defaultConfiguration": {"level": "warning"},
        "properties": {
            "tags": ["ai-provenance", "generative-ai", "image"],
            "precision": "high",
            "problem.severity": "warning",
            "verdict": "ai-edited",
        },
    },
    {
        "id": "FS1003",
        "name": "LikelyAiImage",
        "shortDescription": {"text": "Image likely made by a generative AI model"},
        "fullDescription": {
            "text": "No provenance decides, but fakescope's pixel detector scores the image above its "
            "upper threshold: its pixels look like those of generated images."
        },
        "help": {
            "text": "This finding comes from a statistical detector, not from provenance, and can be "
            "wrong; the message gives its probability (p_fake). Review the image. If it is a "
            "genuine photograph, dismiss the alert as a false positive. `fakescope ask PATH` and "
            "`fakescope scan --format json PATH` give the detector's attributes and explanation "
            "where the backend provides them.",
            "markdown": "This finding comes from a **statistical pixel detector**, not from "
            "provenance, and can be wrong; the message gives its probability (`p_fake`).\n\nReview "
            "the image; dismiss the alert as a false positive if it is a genuine photograph.",
        },
        "defaultConfiguration": {"level": "warning"},
        "properties": {
            "tags": ["generative-ai", "image", "pixel-detector"],
            "precision": "medium",
            "problem.severity": "warning",
            "verdict": "likely-ai",
        },
    },
)
_RULE_INDEX: dict[str, int] = {rule["properties"]["verdict"]: i for i, rule in enumerate(RULES)}
_ERROR_CODE_INDEX: dict[str, int] = {code: i for i, code in enumerate(ERROR_CODES)}
_SUMMARY: dict[str, str] = {
    "ai-generated": "Image made by a generative AI model",
    "ai-edited": "Image changed with generative AI tools",
    "likely-ai": "Image likely made by a generative AI model",
}


def artifact_location(path: str) -> dict[str, str]:
    """The SARIF artifactLocation of a record path: a percent-encoded URI reference.

    Relative paths stay relative (forward slashes, under %SRCROOT%); absolute ones become file://
    URIs. Every byte outside RFC 3986's unreserved/sub-delims set is percent-encoded as UTF-8, so
    spaces, non-ASCII letters, newlines and `%` itself round-trip through `urllib.parse.unquote`.
    """
    native = pathlib.Path(path)
    if native.is_absolute():
        return {"uri": native.as_uri()}
    posix = path.replace(os.sep, "/") if os.sep != "/" else path
    segments = [s for s in posix.split("/") if s not in ("", ".")]
    return {"uri": "/".join(quote(s, safe=_SEGMENT_SAFE) for s in segments), "uriBaseId": SRCROOT}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _result(record: dict[str, Any]) -> dict[str, Any]:
    verdict = record["verdict"]
    index = _RULE_INDEX[verdict]
    rule = RULES[index]
    p_fake = record.get("p_fake")
    score = f"p_fake {percent(p_fake)}" if p_fake is not None else "no detector score"
    reason = _one_line(main_reason(record))
    text = f"{_SUMMARY[verdict]} ({score})." + (f" {reason}" if reason else "")
    result: dict[str, Any] = {
        "ruleId": rule["id"],
        "ruleIndex": index,
        "level": rule["defaultConfiguration"]["level"],
        "message": {"text": _clip(text, _MESSAGE_MAX)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(str(record["path"])),
                    "region": {"startLine": 1},
                }
            }
        ],
    }
    if record.get("sha256"):
        result["partialFingerprints"] = {"sha256/v1": record["sha256"]}
    properties: dict[str, Any] = {"verdict": verdict, "p_fake": p_fake}
    signals = sorted({f"{e.get('source')}:{e.get('signal')}" for e in record.get("evidence") or []})
    if signals:
        properties["evidence_signals"] = signals
    if record.get("reasons"):
        properties["reasons"] = [_clip(str(r), _MESSAGE_MAX) for r in record["reasons"][:10]]
    det = detector_id(record)
    if det:
        properties["detector_id"] = det
    properties.update(sarif_video_properties(record))
    result["properties"] = properties
    return result


def _notifications(record: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    location = [{"physicalLocation": {"artifactLocation": artifact_location(str(record["path"]))}}]
    for level, entries in (("error", record.get("errors") or []), ("warning", record.get("warnings") or [])):
        for entry in entries:
            code = str(entry.get("code", level))
            note: dict[str, Any] = {
                "level": level,
                "message": {"text": _clip(_one_line(f"{code}: {entry.get('message', '')}"), _MESSAGE_MAX)},
                "locations": location,
                "properties": {"code": code, "path": str(record["path"])},
            }
            if code in _ERROR_CODE_INDEX:
                note["descriptor"] = {"id": code, "index": _ERROR_CODE_INDEX[code]}
            out.append(note)
    return out


class SarifRenderer:
    def __init__(self, stream: TextIO, *, color: bool = False, width: int | None = None):
        self.stream = stream
        self.results: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []

    def start(self, header: dict[str, Any]) -> None:
        pass

    def add(self, record: dict[str, Any]) -> None:
        # Only the SARIF-relevant part is kept: a scan of 100k clean images holds no records.
        if record.get("verdict") in FLAGGED_VERDICTS:
            self.results.append(_result(record))
        if record.get("errors") or record.get("warnings"):
            self.notifications.extend(_notifications(record))

    def document(self, header: dict[str, Any]) -> dict[str, Any]:
        interrupted = bool(header.get("interrupted"))
        results = self.results
        notifications = list(self.notifications)
        dropped = 0
        if len(results) > MAX_RESULTS:
            severity = {v: i for i, v in enumerate(VERDICTS)}  # VERDICTS runs most alarming first
            ranked = sorted(results, key=lambda r: severity[r["properties"]["verdict"]])
            dropped = len(results) - MAX_RESULTS
            results = ranked[:MAX_RESULTS]
            notifications.append({
                "level": "warning",
                "message": {"text": f"{dropped} results were left out: GitHub code scanning accepts "
                            f"at most {MAX_RESULTS} per run. Use --format json for all of them."},
            })
        notice = stop_notice(header)
        if notice:
            notifications.append({"level": "error", "message": {"text": notice}})
        gate = header.get("gate") if isinstance(header.get("gate"), dict) else {}
        if gate.get("message"):
            # The gate's outcome as the CI log shows it (gates.py): why the job exits 1 or 3.
            notifications.append({"level": "error" if gate.get("tripped") else "warning",
                                  "descriptor": {"id": "gate"}, "message": {"text": str(gate["message"])}})
        invocation: dict[str, Any] = {
            "executionSuccessful": not interrupted,
            "arguments": [str(a) for a in header.get("arguments") or []],
            "toolExecutionNotifications": notifications,
        }
        if header.get("started_at"):
            invocation["startTimeUtc"] = header["started_at"]
        if header.get("finished_at"):
            invocation["endTimeUtc"] = header["finished_at"]
        run_properties = {
            key: header.get(key)
            for key in ("tool_version", "record_schema_version", "protocol_version", "started_at",
                        "finished_at", "interrupted", "counts", "detector", "gate")
        }
        run_properties["results_dropped"] = dropped
        return {
            "$schema": SARIF_SCHEMA_URI,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "fakescope",
                            "version": __version__,
                            "semanticVersion": __version__,
                            "informationUri": INFORMATION_URI,
                            "rules": list(RULES),
                            "notifications": [
                                {"id": code, "shortDescription": {"text": text}}
                                for code, text in ERROR_CODES.items()
                            ],
                        }
                    },
                    "invocations": [invocation],
                    "results": results,
                    "properties": run_properties,
                }
            ],
        }

    def finish(self, header: dict[str, Any]) -> None:
        self.stream.write(dumps(self.document(header), indent=2))
        self.stream.write("\n")
        self.stream.flush()
