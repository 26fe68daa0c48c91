"""The wheel carries every sub-package, the schema, the shipped weights and the man page."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_contents(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("fakescope-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in REPO.glob("fakescope_cli/**/__init__.py"):
        assert str(init.relative_to(REPO)) in names, f"{init} is not packaged: list it in pyproject.toml"
    assert "fakescope_train/__init__.py" in names
    assert "fakescope_cli/schema/record.schema.json" in names
    for weight in (REPO / "fakescope_cli" / "weights").glob("*"):
        if weight.is_file():
            assert f"fakescope_cli/weights/{weight.name}" in names
    assert any(n.endswith(".data/data/share/man/man1/fakescope.1") for n in names)
