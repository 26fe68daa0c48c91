"""A scan writes nothing outside fakescope's own cache: no library's telemetry, no side files.

Each test runs the real CLI with HOME, every XDG folder and TMPDIR inside an empty temporary tree,
then lists every file in that tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakescope_cli.telemetry import QUIET_ENVIRONMENT
from tests.conftest import FIXTURES

PHOTO = FIXTURES / "exif-samples" / "jpg" / "Canon_40D.jpg"
GPT = FIXTURES / "provenance" / "openai" / "chatgpt_gpt4o_c2pa.png"


# onnxruntime sends no telemetry on a machine that looks like CI: it reads these variables (the names
# are in its library; `CI` too, seen here when `.ci/run` exports CI=true).
CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
              "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER")


def _scan_in_empty_home(root: Path, *args: str, extra: dict[str, str] | None = None,
                        drop: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """Run `fakescope scan` with an empty HOME and XDG tree under `root`, without the variables in
    `drop`; return (every file created there, relative to root, sorted; stdout)."""
    folders = {"HOME": "home", "XDG_CACHE_HOME": "xdg/cache", "XDG_CONFIG_HOME": "xdg/config",
               "XDG_DATA_HOME": "xdg/data", "XDG_STATE_HOME": "xdg/state", "XDG_RUNTIME_DIR": "xdg/runtime",
               "TMPDIR": "tmp"}
    env = {k: v for k, v in os.environ.items()
           # This test process imported fakescope_cli, which set these: the child must set them itself.
           if k not in QUIET_ENVIRONMENT and not k.startswith("XDG_") and k not in drop}
    for name, sub in folders.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(root / sub)
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    proc = subprocess.run([sys.executable, "-m", "fakescope_cli", "scan", *args], capture_output=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    created = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return created, proc.stdout.decode()


@pytest.mark.slow
def test_a_builtin_scan_writes_only_fakescope_cache(tmp_path: Path) -> None:
    created, out = _scan_in_empty_home(tmp_path, "-f", "jsonl", str(PHOTO), str(GPT))
    records = [json.loads(line) for line in out.splitlines()]
    # The builtin detector really ran (onnxruntime loaded) on the photo.
    assert records[0]["detector"] is not None and records[0]["detector"]["p_fake"] is not None
    cache = "xdg/cache/fakescope/"
    assert created and all(name.startswith(cache) for name in created), created
    assert {Path(name).name for name in created} <= {"results-v1.sqlite", "results-v1.sqlite-journal",
                                                      "results-v1.sqlite-wal", "results-v1.sqlite-shm"}


@pytest.mark.slow
def test_the_side_file_check_sees_onnxruntime_telemetry(tmp_path: Path) -> None:
    """The check above could pass vacuously: with the switch turned back off (as a user may), on a
    machine that does not look like CI, onnxruntime writes its device id and events database, and the
    listing shows them."""
    created, _ = _scan_in_empty_home(tmp_path, "-f", "jsonl", "--no-cache", str(PHOTO),
                                     extra={"ORT_DISABLE_TELEMETRY": "0"}, drop=CI_MARKERS)
    assert any("Microsoft/DeveloperTools" in name for name in created), created
