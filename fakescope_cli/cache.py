"""Result cache: a local SQLite database, so a rescan or a resumed scan skips finished files.

Two tables:
- `files`: what a path looked like (device, inode, size, mtime, ctime) when its sha256 was computed,
  so an unchanged file is not even read again. ctime cannot be set from user space, so a file
  rewritten with its old mtime still misses.
- `results`: the record for (sha256, result key). The result key covers everything that changes a
  result: tool version, record schema, protocol, detector id + weights sha256, and the options
  that shape analysis (ScanConfig.result_options()).
Error records are not cached (a timeout or a missing codec may pass next time). Writes commit per
record, so a scan stopped by Ctrl-C or SIGTERM keeps everything it finished and resumes from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from fakescope_cli import __version__
from fakescope_cli.record import PROTOCOL_VERSION, RECORD_SCHEMA_VERSION, file_time, utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  path BLOB PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
  sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
  sha256 TEXT NOT NULL, result_key TEXT NOT NULL, record TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (sha256, result_key));
"""


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("fakescope", appauthor=False))


# Fields of a detector's description that never change a result.
_IDENTITY_NOT_RESULT = frozenset({"api_key_env"})


def _c2pa_trust() -> list[dict[str, Any]] | None:
    from fakescope_cli.evidence.c2pa_trust import in_use

    return in_use()


def result_key(detector_info: dict[str, Any] | None, options: dict[str, Any]) -> str:
    payload = {
        "tool": __version__,
        "record": RECORD_SCHEMA_VERSION,
        "protocol": PROTOCOL_VERSION,
        # The detector's whole identity, not only id and weights: a checkpoint's manifest (prompts,
        # label words, calibration: the "protocol" field), its band, quantisation or a server's model
        # change results too, and an edited fakescope.json must not be answered from the cache.
        "detector": None if detector_info is None else
        {k: v for k, v in detector_info.items() if k not in _IDENTITY_NOT_RESULT},
        "options": options,
        "c2pa_trust": _c2pa_trust(),  # a signer trusted under one list is untrusted under another
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ResultCache:
    def __init__(self, folder: Path, key: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "results-v1.sqlite"
        self.key = key
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        # A table of the same name but another shape (an older or foreign file) fails here, where the
        # caller turns it into a usage error, not at the first insert in the middle of a scan.
        self.db.execute("SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256 FROM files LIMIT 0")
        self.db.execute("SELECT sha256, result_key, record, created_at FROM results LIMIT 0")

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _stat_key(path: str) -> tuple[int, int, int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def lookup(self, path: str, shown_as: str) -> dict[str, Any] | None:
        """The cached record for an unchanged file, re-stamped for this scan; else None."""
        stat_key = self._stat_key(path)
        if stat_key is None:
            return None
        row = self.db.execute(
            "SELECT sha256 FROM files WHERE path=? AND dev=? AND ino=? AND size=? AND mtime_ns=? AND ctime_ns=?",
            (os.fsencode(os.path.abspath(path)), *stat_key),
        ).fetchone()
        if row is None:
            return None
        hit = self.db.execute(
            "SELECT record FROM results WHERE sha256=? AND result_key=?", (row[0], self.key)
        ).fetchone()
        if hit is None:
            return None
        record = json.loads(hit[0])
        # The result belongs to the content (sha256); what belongs to this file is stamped afresh: a
        # copy with the same bytes but another date must not show the first file's date.
        record["path"] = shown_as
        record["custody"]["file_mtime"] = file_time(stat_key[3])
        record["custody"]["scanned_at"] = utc_now()
        record["custody"]["from_cache"] = True
        return record

    def store(self, path: str, record: dict[str, Any]) -> None:
        if record.get("errors") or not record.get("sha256"):
            return
        stat_key = self._stat_key(path)
        if stat_key is None or stat_key[2] != record.get("bytes"):
            return  # changed while we read it: do not vouch for it
        self.db.execute(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)",
            (os.fsencode(os.path.abspath(path)), *stat_key, record["sha256"])
        )
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES (?,?,?,?)",
            (record["sha256"], self.key, json.dumps(record, ensure_ascii=False), utc_now()),
        )
