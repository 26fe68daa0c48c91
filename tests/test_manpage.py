"""man/fakescope.1: current with the CLI, complete, and clean under `groff -man -ww`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import typer.main

from fakescope_cli.cli import EXIT_CODES_HELP, app
from fakescope_cli.errors import (
    ERROR_CODES,
    EXIT_DETECTOR,
    EXIT_GATE,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT_CLOSED,
    EXIT_USAGE,
)
from fakescope_cli.manpage import exit_codes, render, roff_text
from tests.conftest import REPO

PAGE = REPO / "man" / "fakescope.1"
REGENERATE = "python man/generate.py"


@pytest.fixture(scope="module")
def page() -> str:
    return render()


def _groff() -> str:
    groff = shutil.which("groff")
    if groff is None:
        if os.environ.get("CI"):
            pytest.fail("groff is missing in CI (apt-get install -y groff)")
        pytest.skip("groff not installed; required when CI is set")
    return groff


def _section(page: str, start: str) -> str:
    """The roff source from the line `start` to the next .SS or .SH."""
    lines = page.splitlines()
    i = lines.index(start)
    j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith((".SS", ".SH"))), len(lines))
    return "\n".join(lines[i:j])


def _commands() -> list[tuple[str, object, object]]:
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="fakescope", **(root.context_settings or {}))
    out = [("", root, ctx)]

    def walk(cmd: object, cmd_ctx: object, prefix: str) -> None:
        for name in cmd.list_commands(cmd_ctx):  # type: ignore[attr-defined]
            sub = cmd.get_command(cmd_ctx, name)  # type: ignore[attr-defined]
            if sub is None or sub.hidden:
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=cmd_ctx, **(sub.context_settings or {}))
            out.append((f"{prefix} {name}".strip(), sub, sub_ctx))
            if hasattr(sub, "commands"):
                walk(sub, sub_ctx, f"{prefix} {name}")

    walk(root, ctx, "")
    return out


def test_committed_page_is_current(page: str) -> None:
    assert PAGE.is_file(), f"man/fakescope.1 is missing: run `{REGENERATE}`"
    committed = PAGE.read_text(encoding="ascii")
    assert committed == page, f"man/fakescope.1 is stale (the CLI changed): run `{REGENERATE}` and commit it"


def test_page_is_ascii_and_deterministic(page: str) -> None:
    page.encode("ascii")  # non-ASCII is written as \[uXXXX]
    assert render() == page


@pytest.mark.slow
def test_groff_renders_without_warnings() -> None:
    proc = subprocess.run([_groff(), "-man", "-ww", "-Tutf8", "-z", str(PAGE)], capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode(errors="replace")


@pytest.mark.slow
def test_rendered_page_reads_as_typed() -> None:
    proc = subprocess.run([_groff(), "-man", "-Tutf8", "-P-cbou", str(PAGE)], capture_output=True,
                          timeout=60, check=True)
    text = proc.stdout.decode("utf-8")
    # Options come out as ASCII hyphen-minus (copy-pasteable), not U+2010/U+2212.
    assert "-f, --format <table|json|jsonl|csv|sarif|html>" in text
    assert "fakescope scan --fail-on ai-generated,ai-edited -q assets/" in text
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "DIAGNOSTICS",
                    "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{heading}$", text, re.M), heading


def test_every_command_and_option_is_documented(page: str) -> None:
    commands = _commands()
    assert {name for name, _, _ in commands} >= {"", "scan", "eval", "merge"}
    for name, command, ctx in commands:
        section = _section(page, ".SH OPTIONS" if not name else f'.SS "fakescope {name}"')
        for param in command.get_params(ctx):  # type: ignore[attr-defined]
            if param.hidden:
                continue
            if param.param_type_name == "argument":
                assert roff_text(str(param.metavar or param.name.upper())) in section, (name, param.name)
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                assert f"\\fB{roff_text(opt)}\\fR" in section, (name, opt)
            if getattr(param, "help", None):
                first_words = " ".join(param.help.split()[:4])
                assert roff_text(first_words) in section, (name, param.name)
    # The help option and Typer's completion options on the root command.
    root = _section(page, ".SH OPTIONS")
    for opt in ("--version", "--install-completion", "--show-completion", "-h", "--help"):
        assert f"\\fB{roff_text(opt)}\\fR" in root


def test_exit_status_matches_the_cli(page: str) -> None:
    codes = dict(exit_codes(EXIT_CODES_HELP))
    expected = {EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_DETECTOR, EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED}
    assert {int(c) for c in codes} == expected
    section = _section(page, ".SH EXIT STATUS")
    for code, meaning in codes.items():
        assert f".TP\n.B {code}\n{roff_text(meaning)}" in section
    diagnostics = _section(page, ".SH DIAGNOSTICS")
    for code in ERROR_CODES:
        assert f".B {roff_text(code)}" in diagnostics


def test_package_installs_the_page() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    data_files = config.get("tool", {}).get("setuptools", {}).get("data-files", {})
    assert "man/fakescope.1" in data_files.get("share/man/man1", []), (
        'pyproject.toml needs [tool.setuptools.data-files] "share/man/man1" = ["man/fakescope.1"]')


def test_roff_escaping() -> None:
    assert roff_text("a-b") == "a\\-b"
    assert roff_text("C:\\path") == "C:\\epath"
    assert roff_text("100×68 — ok") == "100\\[u00D7]68 \\[u2014] ok"
    from fakescope_cli.manpage import _paragraphs

    # A help line that starts with a dot or quote must not become a roff request.
    assert _paragraphs(".hidden file\n\n'quoted'") == ["\\&.hidden file", ".PP", "\\&'quoted'"]
