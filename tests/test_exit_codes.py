"""One exit-code policy: each way a command ends gets its code and, when it failed, one line on stderr.

In process (typer's CliRunner) where a subprocess adds nothing; signals and pipes are checked with
real processes in test_robustness.py and test_render.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fakescope_cli.errors import (
    EXIT_DETECTOR,
    EXIT_GATE,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    DetectorUnavailable,
    InputError,
    Interrupted,
    UsageError,
    outcome_exit_code,
)
from tests.conftest import invoke_cli, jsonl_records


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, shade in (("a.png", 10), ("b.png", 200)):
        Image.new("RGB", (16, 16), (shade, shade, shade)).save(folder / name)
    return folder


def one_line(stderr: bytes) -> str:
    """The whole of stderr, which must be exactly one `fakescope: ...` line (no traceback)."""
    text = stderr.decode()
    assert text.count("\n") == 1 and text.startswith("fakescope: "), text
    return text


def test_error_classes_carry_their_exit_codes():
    assert UsageError("x").exit_code == EXIT_USAGE
    assert DetectorUnavailable("x").exit_code == EXIT_DETECTOR
    assert InputError("x").exit_code == EXIT_INCOMPLETE
    assert Interrupted("x").exit_code == EXIT_INTERRUPTED


@pytest.mark.parametrize(("gate", "unanalysed", "interrupted", "code"), [
    (False, 0, False, EXIT_OK),
    (True, 0, False, EXIT_GATE),
    (False, 2, False, EXIT_INCOMPLETE),
    (True, 2, False, EXIT_GATE),  # a tripped gate wins over an unreadable file
    (True, 2, True, EXIT_INTERRUPTED),  # a partial run says so first
])
def test_outcome_exit_code(gate, unanalysed, interrupted, code):
    assert outcome_exit_code(gate_tripped=gate, unanalysed=unanalysed, interrupted=interrupted) == code


def test_nul_separated_stdin_without_dash_0_is_a_usage_error(images):
    stdin = b"\0".join(str(p).encode() for p in sorted(images.iterdir())) + b"\0"
    proc = invoke_cli("scan", "--backend", "none", "-f", "jsonl", "-", stdin=stdin)
    assert proc.returncode == EXIT_USAGE
    assert "-0" in one_line(proc.stderr) and proc.stdout == b""
    # with -0 the same stdin scans both files
    ok = invoke_cli("scan", "--backend", "none", "-f", "jsonl", "-0", "-", stdin=stdin)
    assert ok.returncode == EXIT_OK and len(jsonl_records(ok.stdout)) == 2


@pytest.mark.parametrize(("backend", "words"), [
    ("bogus", "unknown backend 'bogus'"),
    ("json:JSONDecoder", "is not a detector"),
])
@pytest.mark.parametrize("command", ["scan", "eval"])
def test_a_backend_that_is_no_detector_is_a_usage_error(images, backend, words, command):
    target = images if command == "scan" else images.parent  # eval wants real/ and fake/ below it
    if command == "eval":
        for label, name in (("real", "a.png"), ("fake", "b.png")):
            (images.parent / label).mkdir()
            (images / name).rename(images.parent / label / name)
    proc = invoke_cli(command, "--backend", backend, str(target))
    assert proc.returncode == EXIT_USAGE
    assert words in one_line(proc.stderr)


def test_ask_with_an_unknown_backend_is_a_usage_error(images):
    proc = invoke_cli("ask", str(images / "a.png"), "what is it?", "--backend", "bogus")
    assert proc.returncode == EXIT_USAGE
    assert "unknown backend 'bogus'" in one_line(proc.stderr)


def test_a_known_backend_that_cannot_load_is_exit_4(tmp_path, images):
    proc = invoke_cli("scan", "--backend", "hf", "--model", str(tmp_path), str(images))  # no checkpoint there
    assert proc.returncode == EXIT_DETECTOR
    one_line(proc.stderr)


def test_models_inspect_of_a_missing_path_is_a_usage_error(tmp_path):
    proc = invoke_cli("models", "inspect", str(tmp_path / "missing"))
    assert proc.returncode == EXIT_USAGE
    assert "no such folder" in one_line(proc.stderr)
    # a folder that exists but holds no checkpoint is the detector's problem, as before
    assert invoke_cli("models", "inspect", str(tmp_path)).returncode == EXIT_DETECTOR


def test_merge_of_a_missing_file_is_one_clear_line(tmp_path):
    proc = invoke_cli("merge", str(tmp_path / "missing.jsonl"))
    assert proc.returncode == EXIT_USAGE
    line = one_line(proc.stderr)
    assert "missing.jsonl: no such file" in line and "Errno" not in line


@pytest.mark.parametrize("name", ["missing-folder", "missing.png", "nothing*.png"])
def test_a_missing_path_on_the_command_line_is_a_usage_error_before_any_work(images, tmp_path, name):
    out = tmp_path / "report.json"
    proc = invoke_cli("scan", "--backend", "none", "-f", "json", "-o", str(out), str(images), str(tmp_path / name))
    assert proc.returncode == EXIT_USAGE
    assert name in one_line(proc.stderr)
    assert not out.exists()  # nothing was scanned, nothing written


def test_a_missing_path_read_from_stdin_stays_a_record(images, tmp_path):
    stdin = f"{images / 'a.png'}\n{tmp_path / 'gone.png'}\n".encode()
    proc = invoke_cli("scan", "--backend", "none", "-f", "jsonl", "-", stdin=stdin)
    assert proc.returncode == EXIT_INCOMPLETE
    recs = jsonl_records(proc.stdout)
    assert [r["errors"][0]["code"] if r["errors"] else None for r in recs] == [None, "not-found"]


def test_ctrl_c_mid_scan_finishes_the_document_with_130(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("a.png", "b.png", "stop.png", "z.png"):
        Image.new("RGB", (16, 16)).save(folder / name)
    out = tmp_path / "r.json"
    proc = invoke_cli("scan", "--backend", "tests.plugins.interrupting_detector:InterruptingDetector",
                      "-j", "1", "-f", "json", "-o", str(out), str(folder))
    assert proc.returncode == EXIT_INTERRUPTED
    assert "interrupted" in one_line(proc.stderr)
    doc = json.loads(out.read_text())
    assert doc["run"]["interrupted"] is True
    assert [Path(r["path"]).name for r in doc["results"]] == ["a.png", "b.png"]


def test_merge_and_scan_share_the_gate_rule(images, tmp_path):
    shard = tmp_path / "s.jsonl"
    scan = invoke_cli("scan", "--backend", "tests.plugins.brightness_detector:BrightnessDetector", "-f", "jsonl",
                      "-o", str(shard), "--fail-above", "0.5", str(images))
    assert scan.returncode == EXIT_GATE  # b.png is bright
    assert invoke_cli("merge", str(shard), "--fail-above", "0.5").returncode == EXIT_GATE
    assert invoke_cli("merge", str(shard), "--fail-above", "0.9").returncode == EXIT_OK


def test_a_file_that_vanishes_during_the_scan_stays_a_record(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("a.png", "gone.png"):
        Image.new("RGB", (16, 16)).save(folder / name)
    proc = invoke_cli("scan", "--backend", "tests.plugins.vanishing_detector:VanishingDetector", "-j", "1",
                      "-f", "jsonl", str(folder))
    assert proc.returncode == EXIT_INCOMPLETE, proc.stderr.decode()
    recs = jsonl_records(proc.stdout)
    assert [Path(r["path"]).name for r in recs] == ["a.png", "gone.png"]
    assert recs[1]["errors"][0]["code"] == "not-found"
