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
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "fakescope_cli", *args],
        input=stdin, capture_output=True, timeout=timeout, env=cli_env(env), check=False,
    )


def invoke_cli(*args: str, stdin: bytes | None = None, env: dict | None = None):
    """Run the `fakescope` command in this process (typer's CliRunner): the same CompletedProcess
    shape as run_cli (returncode, stdout, stderr as bytes) without the interpreter start-up. For
    what a subprocess adds nothing to; signals, pipes and start-up imports need run_cli."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from fakescope_cli.cli import app

    argv = sys.argv
    sys.argv = ["fakescope", *args]  # the run header records the command line from here
    try:
        result = CliRunner().invoke(app, list(args), input=stdin, env=cli_env(env), catch_exceptions=False)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["fakescope", *args], result.exit_code, result.stdout_bytes,
                                       result.stderr_bytes)


def cli_env(extra: dict | None = None) -> dict:
    """The environment a CLI subprocess gets in tests: no colour, and a fresh cache unless `extra` names one
    (tests must not see each other's results)."""
    import os
    import tempfile

    return {**os.environ, "NO_COLOR": "1", "XDG_CACHE_HOME": tempfile.mkdtemp(prefix="fakescope-cache-"),
            **(extra or {})}


def jsonl_records(stdout: bytes) -> list[dict]:
    """Parse JSONL output and validate every record against the shipped JSON Schema."""
    import json

    from fakescope_cli.schema import validate_record

    records = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    # A gated scan ends with its run header, {"run": {...}} (render/jsonl.py): not a record.
    records = [rec for rec in records if set(rec) != {"run"}]
    for rec in records:
        validate_record(rec)
    return records
