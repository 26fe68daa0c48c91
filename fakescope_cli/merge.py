"""`fakescope merge`: shard outputs (JSONL, or JSON documents) into one report with one run header."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.errors import UsageError
from fakescope_cli.record import count_records, run_header, utc_now

REQUIRED_KEYS = ("path", "verdict", "p_fake", "errors", "custody")


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


def _records_in(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        head = fh.read(1)
        fh.seek(0)
        if head == "{" and path.endswith(".json"):
            doc = json.load(fh)
            yield from doc.get("results", [])
            return
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # A shard killed mid-write can end with a partial line; everything before it stands.
                if fh.read().strip():
                    raise UsageError(f"{path}:{lineno}: not a JSON record") from None
                return
            yield rec


def _order_key(record: dict[str, Any]) -> tuple[bytes, ...]:
    # Component-wise byte order reproduces the scan's sorted depth-first walk.
    return tuple(os.fsencode(part) for part in record["path"].split("/"))


@dataclass
class Merged:
    records: list[dict[str, Any]]
    header: dict[str, Any]
    duplicates: list[str] = field(default_factory=list)


def merge_files(inputs: list[str], arguments: list[str]) -> Merged:
    seen: dict[str, dict[str, Any]] = {}
    duplicates: list[str] = []
    detectors: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in inputs:
        for rec in _records_in(path):
            missing = [k for k in REQUIRED_KEYS if k not in rec]
            if missing:
                raise UsageError(f"{path}: a record lacks {', '.join(missing)}: is this fakescope output?")
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
    if len(detectors) > 1:
        header["detectors"] = list(detectors.values())
    counts: dict[str, int] = {"files": 0, "errors": 0}
    for rec in records:
        count_records(counts, rec)
        if rec["errors"]:
            counts["errors"] += 1
    header["counts"] = counts
    return Merged(records, header, duplicates)
