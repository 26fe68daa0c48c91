"""The README's two fresh-machine commands stay true: CI runs the test command verbatim."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _shell_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Fresh machine: two commands", 1)[1].split("\n## ", 1)[0]
    blocks = _shell_blocks(section)
    assert len(blocks) == 2, "the README gives exactly two fresh-machine commands"
    scan_cmd, test_cmd = blocks
    assert "fakescope scan" in scan_cmd and "pip install" in scan_cmd
    assert "pytest" in test_cmd and test_cmd.index("torch==2.13.0") < test_cmd.index("-e '.")
    ci = (REPO / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()


def test_scan_sample_folder_exists():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Fresh machine: two commands", 1)[1].split("\n## ", 1)[0]
    scan_cmd = _shell_blocks(section)[0]
    target = scan_cmd.rsplit(" ", 1)[1]
    assert (REPO / target).resolve().is_dir()
