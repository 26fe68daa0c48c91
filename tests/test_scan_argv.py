"""`fakescope scan` without typer (scan_argv.py, __main__): the fast parser gives scan_command what
typer gives it, declines whatever it is not sure of, and its table is typer's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakescope_cli import cli, scan_argv
from fakescope_cli.errors import DetectorUnavailable, UsageError
from tests.conftest import FIXTURES, cli_env, invoke_cli, run_cli

CANON = FIXTURES / "exif-samples" / "jpg" / "Canon_40D.jpg"
GPT = FIXTURES / "provenance" / "openai" / "chatgpt_gpt4o_c2pa.png"  # Content Credentials: ai-generated
EDITED = FIXTURES / "provenance" / "c2pa" / "ocsp.jpg"  # Content Credentials: ai-edited
NO_FAST_PATH = {"FAKESCOPE_NO_FAST_PATH": "1"}


def typer_params(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict:
    """What typer's `scan` passes to scan_command for ARGV (the command runs in process, its body replaced)."""
    seen: dict = {}
    monkeypatch.setattr(cli, "scan_command", lambda **params: seen.update(params) or 0)
    result = invoke_cli("scan", *argv)
    assert result.returncode == 0, result.stderr.decode()
    return seen


def typed(params: dict) -> dict:
    """Values with their types: 1 == 1.0 == True in Python, but not to scan_command."""
    def one(value):
        return [one(v) for v in value] if isinstance(value, list) else (type(value).__name__, value)
    return {name: one(value) for name, value in params.items()}


ACCEPTED = [
    ["a.jpg"],
    ["a.jpg", "b.png", "c"],
    ["-f", "json", "a.jpg"],
    ["--format", "csv", "a.jpg"],
    ["--format=sarif", "a.jpg"],
    ["a.jpg", "-o", "out.json", "b.jpg"],  # options between paths, as click allows
    ["--output=out.json", "a.jpg"],
    ["--output==x", "a.jpg"],  # the value is "=x"
    ["-r", "d"],
    ["-R", "d"],
    ["--no-recursive", "d"],
    ["--recursive", "--no-recursive", "d"],
    ["-R", "d", "-r"],
    ["--follow-symlinks", "d"],
    ["-e", "jpg", "--ext", "png", "--ext=webp,gif", "d"],
    ["-0", "-"],
    ["--null", "-", "a.jpg"],
    ["-b", "none", "a"],
    ["--backend=server", "--url", "http://127.0.0.1:8000/v1", "--api-key-env", "KEY", "--request-timeout", "2.5",
     "--retries", "0", "--top-logprobs", "5", "--manifest", "m.json", "a"],
    ["-m", "model.gguf", "--mmproj=proj.gguf", "--backend", "gguf", "a"],
    ["--model=m", "--quantize", "4bit", "--device", "cpu", "--batch-size", "8", "a"],
    ["--quantize=none", "--device=auto", "a"],
    ["--attributes", "a"],
    ["--no-attributes", "--explain", "--max-tokens", "64", "a"],
    ["--trust-pickle", "--trust-remote-code", "-v", "a"],
    ["--verbose", "--quiet", "a"],
    ["--no-pixels", "--no-cache", "-q", "a"],
    ["--shard", "1/4", "a"],
    ["--fail-above", "0.5", "a"],
    ["--fail-above=1", "a"],
    ["--fail-above", "0", "a"],
    ["--fail-above", ".25", "a"],
    ["--fail-above", "1.", "a"],
    ["--fail-on", "ai-generated", "--fail-on=ai-edited,likely-ai", "a"],
    ["--only", "flagged", "a", "--only", "errors"],
    ["--calibration", "cal.json", "--cache-dir", "cache", "a"],
    ["--trust-anchors", "anchors.pem", "--c2pa-settings=settings.json", "a"],
    ["-j", "2", "a"],
    ["--jobs=0", "--file-timeout", "0.1", "a"],
    ["--jobs", "007", "a"],
    ["--max-pixels", "1000", "--max-bytes=2048", "a"],
    ["--frames", "256", "a"],
    ["--frames=1", "a"],
    ["-f", "table", "-f", "jsonl", "-j", "1", "--jobs", "3", "a"],  # the last one given wins
    ["--", "-weird.jpg", "--no-pixels"],
    ["a", "--", "--", "-b"],
    ["-"],
    ["-", "a", "-q"],
    [""],
    ["a=b.jpg", "--backend", "="],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_the_fast_parser_passes_what_typer_passes(argv, monkeypatch):
    fast = scan_argv.parse(argv, environ={})
    assert fast is not None, "the fast parser declined"
    assert typed(fast) == typed(typer_params(argv, monkeypatch))


def test_path_options_are_paths_and_exist_checks_match(tmp_path, monkeypatch):
    """A path option that names an existing, readable file passes typer's check and the fast one."""
    calibration = tmp_path / "cal.json"
    calibration.write_text("{}")
    argv = ["--calibration", str(calibration), "--cache-dir", str(tmp_path), "a"]
    fast = scan_argv.parse(argv, environ={})
    assert fast is not None and fast["calibration"] == calibration and isinstance(fast["cache_dir"], Path)
    assert typed(fast) == typed(typer_params(argv, monkeypatch))


REFUSED = [
    [],  # no PATH: typer says so
    ["-q"],
    ["--no-pixels", "--"],
    ["--help"],
    ["-h"],
    ["a", "--help"],
    ["a", "-h"],
    ["--bogus", "a"],
    ["-x", "a"],
    ["--form", "json", "a"],  # click matches no prefixes: typer suggests --format
    ["-Q", "a"],
    ["-qr", "a"],  # combined short options
    ["-fjson", "a"],  # attached short values
    ["-f=json", "a"],
    ["-j2", "a"],
    ["---format", "json", "a"],
    ["-o", "-", "a"],  # values that start with '-'
    ["--output", "-x", "a"],
    ["--backend", "--no-pixels", "a"],
    ["--output=-", "a"],
    ["--ext", "--", "a"],
    ["--no-pixels=1", "a"],  # =value to a flag
    ["--quiet=true", "a"],
    ["--no-recursive=", "a"],
    ["--jobs", "1.0", "a"],  # numbers that are not plainly numbers
    ["--jobs", "+1", "a"],
    ["--jobs", " 1", "a"],
    ["--jobs", "1_000", "a"],
    ["--jobs", "\u0661", "a"],  # ARABIC-INDIC DIGIT ONE: int() takes it
    ["--jobs", "0x10", "a"],
    ["--fail-above", "1e-1", "a"],
    ["--fail-above", "nan", "a"],
    ["--fail-above", "inf", "a"],
    ["--fail-above", "0.5\n", "a"],
    ["--fail-above", "1.5", "a"],  # out of range
    ["--frames", "0", "a"],
    ["--frames", "257", "a"],
    ["--file-timeout", "0.05", "a"],
    ["--max-pixels", "0", "a"],
    ["-f", "JSON", "a"],  # choices not in the list
    ["-f", "xml", "a"],
    ["--quantize", "4BIT", "a"],
    ["--device", "gpu", "a"],
    ["a", "--output"],  # a value missing
    ["a", "-f"],
    ["--output=", "a"],  # empty values
    ["--backend", "", "a"],
    ["--version", "a"],  # the root's option, not scan's
]


@pytest.mark.parametrize("argv", REFUSED, ids=lambda argv: " ".join(argv) or "(none)")
def test_the_fast_parser_declines_what_it_is_not_sure_of(argv):
    assert scan_argv.parse(argv, environ={}) is None


@pytest.mark.parametrize("variable", ["_FAKESCOPE_COMPLETE", "_PYTHON _M FAKESCOPE_CLI_COMPLETE"])
def test_a_completion_request_goes_to_typer(variable):
    assert scan_argv.parse(["a.jpg"], environ={variable: "bash_complete"}) is None
    assert scan_argv.parse(["a.jpg"], environ={variable: ""}) is not None  # typer: empty is unset


def test_a_path_option_typer_would_refuse_goes_to_typer(tmp_path, monkeypatch):
    """An existing file that cannot be read: typer refuses it (exit 2), so the fast parser declines.
    (os.access is made to say no: root, who runs the tests in some places, reads any file.)"""
    calibration = tmp_path / "cal.json"
    calibration.write_text("{}")
    argv = ["--calibration", str(calibration), "a"]
    assert scan_argv.parse(argv, environ={}) is not None
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: False)
    assert scan_argv.parse(argv, environ={}) is None
    refused = invoke_cli("scan", *argv)
    assert refused.returncode == 2 and b"is not readable" in refused.stderr


def test_the_spec_is_typers():
    """scan_argv_spec.py is what typer's command for cli.scan says today."""
    assert Path(scan_argv.SPEC_MODULE).read_text(encoding="utf-8") == scan_argv.render_spec(scan_argv.spec_from_typer()), (
        "scan's options changed: regenerate the fast parser's table with `python -m fakescope_cli.scan_argv`")


def test_every_option_of_scan_is_in_the_spec():
    """Each option string typer knows for scan is one the fast parser knows, and no other."""
    import typer

    command = typer.main.get_command(cli.app).commands["scan"]
    typer_opts = {opt for p in command.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}
    from fakescope_cli.scan_argv_spec import FLAGS, VALUE_OPTIONS

    assert typer_opts == set(FLAGS) | set(VALUE_OPTIONS)


def test_the_spec_generator_refuses_an_option_it_cannot_follow(monkeypatch):
    """An option kind parse() does not know (here an environment variable) stops the generator."""
    group = cli._command_group()
    scan = group.commands["scan"]
    quiet = next(p for p in scan.params if p.name == "quiet")
    monkeypatch.setattr(quiet, "envvar", "FAKESCOPE_QUIET")
    monkeypatch.setattr(cli, "_command_group", lambda: group)
    with pytest.raises(ValueError, match="--quiet"):
        scan_argv.spec_from_typer()


@pytest.mark.parametrize("error", [UsageError("bad \x1b[31mname"), DetectorUnavailable("no model"), KeyboardInterrupt()],
                         ids=lambda error: type(error).__name__)
def test_both_paths_end_a_failed_scan_alike(error, monkeypatch, capsys):
    """The fast path ends through command_exit as typer's commands do: same line, same exit code."""
    from fakescope_cli import __main__, scan_command

    def fail(**_params):
        raise error

    monkeypatch.setattr(scan_command, "scan_command", fail)
    code = __main__._run_scan(scan_argv.parse(["a.jpg"], environ={}))
    fast_stderr = capsys.readouterr().err.encode()
    monkeypatch.setattr(cli, "scan_command", fail)
    typer_run = invoke_cli("scan", "a.jpg")
    assert (code, fast_stderr) == (typer_run.returncode, typer_run.stderr)
    expected = {UsageError: (2, b"fakescope: bad \\x1b[31mname\n"), DetectorUnavailable: (4, b"fakescope: no model\n"),
                KeyboardInterrupt: (130, b"fakescope: interrupted\n")}[type(error)]
    assert (code, fast_stderr) == expected


def _records_without_times(stdout: bytes) -> list[dict]:
    """JSONL lines, less the clock readings (two runs never share them)."""
    records = [json.loads(line) for line in stdout.decode().splitlines()]
    for record in records:
        record.get("custody", {}).pop("scanned_at", None)
        for key in ("started_at", "finished_at"):
            record.get("run", {}).pop(key, None)
    return records


@pytest.mark.slow
@pytest.mark.parametrize("image", [CANON, EDITED], ids=["camera-jpeg", "c2pa"])
def test_the_fast_path_writes_what_typer_writes(image):
    args = ["scan", "--no-pixels", "-f", "jsonl", "-q", "--no-cache", str(image)]
    fast, typer_run = run_cli(*args), run_cli(*args, env=NO_FAST_PATH)
    assert (fast.returncode, fast.stderr) == (typer_run.returncode, typer_run.stderr) == (0, b"")
    assert _records_without_times(fast.stdout) == _records_without_times(typer_run.stdout)
    assert len(_records_without_times(fast.stdout)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("args, code, stderr_starts", [
    (["scan", "--no-pixels", "no-such-file.jpg"], 2, b"fakescope: no-such-file.jpg: no such file or folder\n"),
    (["scan", "--no-pixels"], 2, b"Usage: "),  # no PATH: the fast path declines, typer says it
    (["scan", "--no-pixels", "-q", "-f", "jsonl", "--fail-on", "ai-generated", str(GPT), str(CANON)], 1,
     b"fakescope: gate --fail-on ai-generated tripped by 1 file"),
    (["scan", "--no-pixels", "-q", "-f", "jsonl", "--fail-on", "ai-generated", str(CANON)], 0, b""),
])
def test_the_fast_path_ends_as_typer_does(args, code, stderr_starts):
    fast, typer_run = run_cli(*args), run_cli(*args, env=NO_FAST_PATH)
    assert fast.returncode == typer_run.returncode == code
    assert fast.stderr == typer_run.stderr
    assert fast.stderr.startswith(stderr_starts)
    assert _records_without_times(fast.stdout) == _records_without_times(typer_run.stdout)


@pytest.mark.slow
def test_a_plain_one_file_scan_does_not_import_typer():
    def imported(env: dict | None) -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "fakescope_cli", "scan", "--no-pixels", "-q", "-f", "jsonl",
             str(CANON)], capture_output=True, text=True, env=cli_env(env), check=True)
        return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}

    fast = imported(None)
    assert "fakescope_cli.scan" in fast  # the scan ran
    assert not {m for m in fast if m.split(".")[0] in ("typer", "click", "rich")}
    assert "typer" in imported(NO_FAST_PATH)  # the control: the same command through typer
