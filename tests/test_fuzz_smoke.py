"""Each atheris harness still starts, loads its seeds from the shared fixtures and fuzzes for a few
seconds without a finding. The long runs are tests/fuzz/run_all.py (results in bench/results/fuzz.txt).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

FUZZ = Path(__file__).resolve().parent / "fuzz"
HARNESSES = ("exif", "png_chunks", "xmp", "watermark", "c2pa", "media", "bmff")
SECONDS = 5

if importlib.util.find_spec("atheris") is None:
    if os.environ.get("CI"):
        pytest.fail("atheris is not installed but CI is set: the fuzz harnesses must run in CI",
                    pytrace=False)
    pytest.skip("atheris is not installed (pip install atheris); CI unset", allow_module_level=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """All harnesses at once (each is one process; they wait on I/O and the CPU in turn)."""
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}")
    procs = {}
    for name in HARNESSES:
        work = tmp_path_factory.mktemp(f"fuzz-{name}")
        corpus = work / "corpus"
        corpus.mkdir()
        cmd = [sys.executable, str(FUZZ / f"fuzz_{name}.py"), f"-max_total_time={SECONDS}",
               "-print_final_stats=1", f"-artifact_prefix={work}/", str(corpus)]
        procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        errors="replace"), corpus)
    results = {}
    for name, (proc, corpus) in procs.items():
        out, _ = proc.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
        results[name].corpus = corpus  # type: ignore[attr-defined]
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_clean(runs: dict[str, subprocess.CompletedProcess[str]], name: str) -> None:
    proc = runs[name]
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, f"fuzz_{name} exited {proc.returncode}:\n{tail}"
    assert "INITED" in proc.stdout, tail  # the seed corpus was loaded and run
    done = re.search(r"^Done (\d+) runs", proc.stdout, re.MULTILINE)
    assert done and int(done.group(1)) > 0, tail
    assert any(proc.corpus.iterdir()), "no seeds were written from the fixtures"  # type: ignore[attr-defined]
