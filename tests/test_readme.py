"""The README's two fresh-machine commands stay true: CI runs the test command verbatim, and the first
command runs verbatim on a core-only install in a copy of this tree."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO


def _shell_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def _fresh_machine_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    return _shell_blocks(readme.split("## Fresh machine: two commands", 1)[1].split("\n## ", 1)[0])


def test_ci_runs_the_readme_test_command_verbatim():
    blocks = _fresh_machine_commands()
    assert len(blocks) == 2, "the README gives exactly two fresh-machine commands"
    scan_cmd, test_cmd = blocks
    assert "fakescope scan" in scan_cmd and "pip install" in scan_cmd
    assert "pytest" in test_cmd and test_cmd.index("torch==2.13.0") < test_cmd.index("-e '.")
    ci = (REPO / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()


def test_scan_sample_folder_exists():
    scan_cmd = _fresh_machine_commands()[0]
    target = scan_cmd.rsplit(" ", 1)[1]
    assert (REPO / target).resolve().is_dir()


@pytest.mark.slow
def test_the_first_command_runs_on_a_core_only_install(tmp_path):
    """The first command verbatim, in a copy of this tree beside `shared`, with its own fresh venv:
    the core install alone must scan. (Every other test runs with all extras installed, which once
    hid a core command importing a module that only an extra brought.)"""
    import os
    import shutil
    import subprocess
    import sys

    scan_cmd = _fresh_machine_commands()[0]
    tree = tmp_path / "main"
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    (tmp_path / "shared").symlink_to((REPO / ".." / "shared").resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = os.path.dirname(os.path.abspath(sys.executable))
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if os.path.abspath(p) != venv_bin)
    proc = subprocess.run(["bash", "-c", scan_cmd], cwd=tree, env=env, capture_output=True, timeout=900)
    out = proc.stdout.decode()
    assert proc.returncode == 0, (out[-2000:], proc.stderr.decode()[-3000:])
    assert "ai-generated" in out and " files · " in out
    check = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert check.returncode != 0, "the core install pulled torch"
    # What needs an extra says so in one line on the core install (never a traceback, never exit 1)
    fakescope = str(tree / ".venv" / "bin" / "fakescope")
    taesd = (REPO / ".." / "shared" / "models" / "taesd").resolve()
    for args in (["train", "cycle", "--taesd", str(taesd), "--out", str(tmp_path / "c.onnx")],
                 ["train", "builtin", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "b")]):
        proc = subprocess.run([fakescope, *args], cwd=tree, env=env, capture_output=True, timeout=120)
        assert proc.returncode == 2 and b"fakescope[train]" in proc.stderr, (args, proc.stderr.decode()[-1500:])
        assert b"Traceback" not in proc.stderr
