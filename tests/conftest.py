from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ../shared beside the checkout: read-only data and fixtures (never copied into the repo).
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 300, env: dict | None = None):
    """Run the real `fakescope` entry point in a subprocess; returns the CompletedProcess."""
    import os
    import subprocess
    import sys
    import tempfile

    # A fresh cache per call unless the test passes its own: tests must not see each other's results.
    full_env = {**os.environ, "NO_COLOR": "1", "XDG_CACHE_HOME": tempfile.mkdtemp(prefix="fakescope-cache-"),
                **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fakescope_cli", *args],
        input=stdin, capture_output=True, timeout=timeout, env=full_env, check=False,
    )


def jsonl_records(stdout: bytes) -> list[dict]:
    """Parse JSONL output and validate every record against the shipped JSON Schema."""
    import json

    from fakescope_cli.schema import validate_record

    records = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    for rec in records:
        validate_record(rec)
    return records
