"""`fakescope --help` must stay light: no torch, transformers, llama_cpp (nor onnxruntime, c2pa)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "llama_cpp", "onnxruntime", "c2pa", "cv2", "bitsandbytes", "fakescope_train")

PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["fakescope", *json.loads(sys.argv[1])]
from fakescope_cli.cli import main
try:
    main()
except SystemExit:
    pass
print("\\nLOADED=" + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True, text=True, check=True,
    ).stdout
    loaded = json.loads(out.rsplit("LOADED=", 1)[1])
    assert loaded == [], f"{argv} imported {loaded}"


def test_the_clis_copies_of_the_limits_are_medias():
    """cli.py repeats two defaults instead of importing media.py (6 ms more for every --help): the
    copies must not drift from the values the scan really applies."""
    from fakescope_cli import cli, media

    assert (cli.DEFAULT_MAX_PIXELS, cli.DEFAULT_MAX_BYTES) == (media.DEFAULT_MAX_PIXELS, media.DEFAULT_MAX_BYTES)
