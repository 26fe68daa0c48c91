"""Shell completion (Typer's): the scripts docs/report-and-shell.md tells users to install really work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Completion scripts call the program by name, so these tests use the installed console script.
FAKESCOPE = shutil.which("fakescope", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
MARKERS = {
    "bash": "complete -o default -F _fakescope_completion fakescope",
    "zsh": "#compdef fakescope",
    "fish": "complete --command fakescope",
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_FAKESCOPE", "_TYPER"))}
    env["PATH"] = f"{Path(str(FAKESCOPE)).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


@pytest.fixture(autouse=True)
def _needs_console_script() -> None:
    if FAKESCOPE is None:
        pytest.fail("the `fakescope` console script is not installed (pip install -e .)")


@pytest.mark.slow
@pytest.mark.parametrize("shell", sorted(MARKERS))
def test_completion_script_for_each_shell(shell: str) -> None:
    # What `fakescope --show-completion` prints when run from that shell (Typer detects the parent).
    proc = subprocess.run([str(FAKESCOPE)], env={**_env(), "_FAKESCOPE_COMPLETE": f"source_{shell}"},
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert MARKERS[shell] in proc.stdout.decode()


@pytest.mark.slow
@pytest.mark.parametrize("shell", sorted(MARKERS))
def test_show_completion_detects_the_calling_shell(shell: str) -> None:
    binary = _shell(shell)
    # "; true": otherwise the shell execs the last command and is no longer its parent.
    proc = subprocess.run([binary, "-c", "fakescope --show-completion; true"], env=_env(), capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert MARKERS[shell] in proc.stdout.decode()


@pytest.mark.slow
def test_bash_completes_commands_options_and_choices() -> None:
    bash = _shell("bash")
    script = (
        'source <(_FAKESCOPE_COMPLETE=source_bash fakescope)\n'
        'complete() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _fakescope_completion fakescope; '
        'echo "${COMPREPLY[*]}"; }\n'
        'complete fakescope sc\n'
        'complete fakescope scan --for\n'
        'complete fakescope scan --format ""\n'
    )
    proc = subprocess.run([bash, "-c", script], env=_env(), capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0].split() == ["scan"]
    assert lines[1].split() == ["--format"]
    assert set(lines[2].split()) == {"table", "json", "jsonl", "csv", "sarif", "html"}


@pytest.mark.slow
def test_fish_completes_commands_and_choices() -> None:
    fish = _shell("fish")
    script = ('_FAKESCOPE_COMPLETE=source_fish fakescope | source; complete -C "fakescope sc"; '
              'complete -C "fakescope scan --format "')
    proc = subprocess.run([fish, "--no-config", "-c", script], env=_env(), capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    words = [line.split("\t")[0] for line in proc.stdout.decode().splitlines()]
    assert words[0] == "scan"
    assert set(words[1:]) == {"table", "json", "jsonl", "csv", "sarif", "html"}
