"""`fakescope merge`: shard outputs (JSONL, or JSON documents) into one report with one run header."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.errors import UsageError
from fakescope_cli.record import count_records, run_header, utc_now

REQUIRED_KEYS = ("path", "verdict", "p_fake", "errors", "custody")
# Run-header counts of files that are not records, added up over the inputs.
SUMMED_COUNTS = ("skipped", "skipped_by_ext")


def shard_of(path: str, n: int) -> int:
    """The shard (1..n) a path belongs to: a hash of its bytes, the same on every machine."""
    import hashlib

    digest = hashlib.sha256(os.fsencode(path)).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k_text, n_text = text.split("/", 1)
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise UsageError(f"--shard takes K/N (e.g. 2/8), not {text!r}") from None
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {text}: need 1 <= K <= N")
    return k, n


@dataclass
class _Input:
    """One input file and the run state it carries besides its records."""

    path: str
    run: dict[str, Any] | None = None  # a JSON document's run header; JSONL carries none
    truncated: bool = False  # ended in a partial line: its writer was killed mid-record


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _record_problem(rec: Any) -> str | None:
    """What makes `rec` unusable here (None when it is usable): the fields merge, the header and
    the --fail-above gate read, checked once so that no later use meets a wrong type."""
    if not isinstance(rec, dict):
        return f"a record must be a JSON object, not {_json_kind(rec)}"
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        return f"the record lacks {', '.join(missing)}"
    path = rec["path"]
    if not isinstance(path, str) or not path:
        return f"path is {_json_kind(path)}, not a file name"
    try:
        os.fsencode(path)  # the sort key; a lone surrogate from JSON cannot become a file name
    except UnicodeEncodeError:
        return "path is not a file name (unpaired surrogate)"
    if not isinstance(rec["verdict"], str):
        return f"verdict is {_json_kind(rec['verdict'])}, not a string"
    p = rec["p_fake"]
    # bool is an int in Python but not a probability; NaN fails the range test.
    if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1):
        return f"p_fake is {_json_kind(p)} ({json.dumps(p)[:40]}), not null or a number in [0, 1]"
    if not isinstance(rec["errors"], list):
        return f"errors is {_json_kind(rec['errors'])}, not an array"
    custody = rec["custody"]
    if not isinstance(custody, dict):
        return f"custody is {_json_kind(custody)}, not an object"
    for key in ("detector_id", "detector_version", "weights_sha256", "scanned_at"):
        value = custody.get(key)
        if value is not None and not isinstance(value, str):
            return f"custody.{key} is {_json_kind(value)}, not a string or null"
    return None


def _checked(rec: Any, where: str) -> dict[str, Any]:
    problem = _record_problem(rec)
    if problem is not None:
        raise UsageError(f"{where}: {problem}: is this fakescope output?")
    record: dict[str, Any] = rec
    return record


def _run_problem(run: Any) -> str | None:
    if not isinstance(run, dict):
        return f"run is {_json_kind(run)}, not an object"
    if not isinstance(run.get("interrupted", False), bool):
        return "run.interrupted is not true or false"
    counts = run.get("counts", {})
    if not isinstance(counts, dict):
        return f"run.counts is {_json_kind(counts)}, not an object"
    for key in SUMMED_COUNTS:
        n = counts.get(key, 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return f"run.counts.{key} is not a count"
    return None


def _records_in(source: _Input) -> Iterator[dict[str, Any]]:
    """The valid records of one input; fills in `source.run` and `source.truncated` on the way."""
    path = source.path
    with open(path, encoding="utf-8") as fh:
        head = fh.read(1)
        fh.seek(0)
        if head == "{" and path.endswith(".json"):
            try:
                doc = json.load(fh)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}: not a JSON document ({exc})") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
                raise UsageError(f"{path}: not a fakescope JSON document (no results array)")
            if "run" in doc:
                problem = _run_problem(doc["run"])
                if problem is not None:
                    raise UsageError(f"{path}: {problem}: is this fakescope output?")
                source.run = doc["run"]
            for i, rec in enumerate(doc["results"]):
                yield _checked(rec, f"{path}: results[{i}]")
            return
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # A shard killed mid-write can end with a partial line (no newline after it); everything
                # before it stands. A whole line that is not JSON is another matter.
                if line.endswith("\n") or fh.read().strip():
                    raise UsageError(f"{path}:{lineno}: not a JSON record") from None
                source.truncated = True
                return
            if isinstance(rec, dict) and set(rec) == {"run"}:
                # The run trailer a gated jsonl scan ends with (render/jsonl.py): the shard's header.
                problem = _run_problem(rec["run"])
                if problem is not None:
                    raise UsageError(f"{path}:{lineno}: {problem}: is this fakescope output?")
                source.run = rec["run"]
                continue
            yield _checked(rec, f"{path}:{lineno}")


def _checked_utf8(source: _Input) -> Iterator[dict[str, Any]]:
    try:
        yield from _records_in(source)
    except UnicodeDecodeError:
        # fakescope writes UTF-8; anything else is another tool's file (exit 2, not a traceback).
        raise UsageError(f"{source.path}: not UTF-8 text: is this fakescope output?") from None
    except FileNotFoundError:
        raise UsageError(f"{source.path}: no such file") from None
    except OSError as exc:  # a folder, no permission, a read error: one line, not a bare [Errno N]
        raise UsageError(f"{source.path}: cannot read: {exc.strerror or exc}") from None


def _order_key(record: dict[str, Any]) -> tuple[bytes, ...]:
    # Component-wise byte order reproduces the scan's sorted depth-first walk.
    return tuple(os.fsencode(part) for part in record["path"].split("/"))


@dataclass
class Merged:
    records: list[dict[str, Any]]
    header: dict[str, Any]
    duplicates: list[str] = field(default_factory=list)


def _shard_count(run: dict[str, Any]) -> int | None:
    """N of the `--shard K/N` a scan ran with (from its recorded arguments); None when unsharded."""
    args = run.get("arguments")
    if not isinstance(args, list):
        return None
    for i, arg in enumerate(args):
        text = args[i + 1] if arg == "--shard" and i + 1 < len(args) else None
        if isinstance(arg, str) and arg.startswith("--shard="):
            text = arg.split("=", 1)[1]
        if isinstance(text, str):
            try:
                return parse_shard(text)[1]
            except UsageError:
                return None
    return None


def _skipped_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """The inputs' skipped and skipped_by_ext counts, added up.

    Skipped files are not records and are counted before `--shard` picks its part, so every shard
    of one tree reports the whole tree's skipped files: within the shards of one N each is counted
    once (the largest), and unsharded inputs and sets of a different N are added.
    """
    total = dict.fromkeys(SUMMED_COUNTS, 0)
    per_shard_set: dict[int, dict[str, int]] = {}
    for run in runs:
        counts = run.get("counts", {})
        n = _shard_count(run)
        if n is None:
            for key in SUMMED_COUNTS:
                total[key] += counts.get(key, 0)
        else:
            group = per_shard_set.setdefault(n, dict.fromkeys(SUMMED_COUNTS, 0))
            for key in SUMMED_COUNTS:
                group[key] = max(group[key], counts.get(key, 0))
    for group in per_shard_set.values():
        for key in SUMMED_COUNTS:
            total[key] += group[key]
    return total


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"fakescope: {message}\n")


def merge_files(
    inputs: list[str], arguments: list[str], *, warn: Callable[[str], None] = _stderr_warning
) -> Merged:
    seen: dict[str, dict[str, Any]] = {}
    duplicates: list[str] = []
    detectors: dict[tuple[Any, ...], dict[str, Any]] = {}
    sources = [_Input(path) for path in inputs]
    for source in sources:
        for rec in _checked_utf8(source):
            if rec["path"] in seen:
                duplicates.append(rec["path"])
                continue
            seen[rec["path"]] = rec
            c = rec["custody"]
            key = (c.get("detector_id"), c.get("detector_version"), c.get("weights_sha256"))
            if key[0] is not None:
                detectors[key] = {"id": key[0], "version": key[1], "weights_sha256": key[2]}
    records = sorted(seen.values(), key=_order_key)
    times = sorted(r["custody"]["scanned_at"] for r in records if r["custody"].get("scanned_at"))
    detector = next(iter(detectors.values())) if len(detectors) == 1 else None
    header = run_header(arguments, detector, times[0] if times else utc_now())
    header["finished_at"] = times[-1] if times else header["started_at"]
    header["merged_from"] = list(inputs)
    # The shards' C2PA trust lists, as their records name them (not the merging process's).
    lists = {json.dumps(t, sort_keys=True): t for rec in records for e in rec.get("evidence") or []
             if isinstance(e, dict) and e.get("source") == "c2pa"
             for t in (e.get("details") or {}).get("trust_lists") or [] if isinstance(t, dict)}
    header["c2pa_trust"] = list(lists.values()) or None
    if len(detectors) > 1:
        header["detectors"] = list(detectors.values())
    # A partial shard makes a partial report: the renderers print their notice from these fields.
    # merge itself ran to the end, so its exit code does not change (no 130).
    partial = [s.path for s in sources if s.truncated or (s.run is not None and s.run.get("interrupted"))]
    if partial:
        header["interrupted"] = True
        error = next((s.run["error"] for s in sources if s.run is not None and isinstance(s.run.get("error"), dict)),
                     None)
        if error is not None:
            header["error"] = error  # the detector lost mid-scan: the notice says so
        warn(f"results are partial: {len(partial)} input(s) from an interrupted scan ({', '.join(partial)})")
    runs = [s.run for s in sources if s.run is not None]
    counts: dict[str, int] = {"files": 0, "errors": 0, **_skipped_counts(runs)}
    for rec in records:
        count_records(counts, rec)
        if rec["errors"]:
            counts["errors"] += 1
    header["counts"] = counts
    return Merged(records, header, duplicates)
