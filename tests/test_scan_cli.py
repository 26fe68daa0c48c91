"""End to end through the real CLI: provenance verdicts, formats, stdin lists, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from tests.conftest import FIXTURES, jsonl_records, run_cli

PROV = FIXTURES / "provenance"


def by_name(records):
    return {Path(r["path"]).name: r for r in records}


def test_provenance_verdicts_through_the_cli():
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(PROV))
    assert proc.returncode == 0, proc.stderr.decode()
    recs = by_name(jsonl_records(proc.stdout))
    assert recs["chatgpt_gpt4o_c2pa.png"]["verdict"] == "ai-generated"
    assert recs["chatgpt_gpt4o_c2pa.png"]["p_fake"] >= 0.99
    assert recs["ocsp.jpg"]["verdict"] == "ai-edited"
    assert recs["no_manifest.jpg"]["verdict"] == "no-verdict"
    assert recs["no_manifest.jpg"]["p_fake"] is None
    for name, rec in recs.items():
        if name.endswith(".png") and ("automatic1111" in name or "comfy" in rec["path"] or "invokeai" in name):
            assert rec["verdict"] == "ai-generated", name
    # Chain of custody in every record.
    for rec in recs.values():
        assert len(rec["sha256"]) == 64 and rec["custody"]["tool"] == "fakescope"
        assert rec["custody"]["scanned_at"].endswith("Z")


def test_output_is_deterministic_in_order():
    a = run_cli("scan", "--backend", "none", "-f", "jsonl", "-j", "2", str(PROV))
    b = run_cli("scan", "--backend", "none", "-f", "jsonl", "-j", "1", str(PROV))
    assert [r["path"] for r in jsonl_records(a.stdout)] == [r["path"] for r in jsonl_records(b.stdout)]


def test_stdin_path_list_and_nul_separated(tmp_path):
    files = sorted(str(p) for p in (PROV / "c2pa").glob("*.jpg"))[:3]
    proc = run_cli("scan", "-", "--backend", "none", "-f", "jsonl", stdin="\n".join(files).encode())
    assert [r["path"] for r in jsonl_records(proc.stdout)] == files
    proc0 = run_cli("scan", "-", "-0", "--backend", "none", "-f", "jsonl", stdin="\0".join(files).encode())
    assert [r["path"] for r in jsonl_records(proc0.stdout)] == files


def test_gate_and_error_exit_codes(tmp_path):
    gpt = str(PROV / "openai" / "chatgpt_gpt4o_c2pa.png")
    plain = str(PROV / "c2pa" / "no_manifest.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    assert run_cli("scan", "--backend", "none", "-q", "-f", "json", plain).returncode == 0
    assert run_cli("scan", "--backend", "none", "-q", "-f", "json", "--fail-above", "0.5", gpt).returncode == 1
    assert run_cli("scan", "--backend", "none", "-q", "-f", "json", "--fail-above", "0.5", plain).returncode == 0
    assert run_cli("scan", "--backend", "none", "-q", "-f", "json", plain, str(bad)).returncode == 3
    # 1 wins over 3.
    assert run_cli("scan", "--backend", "none", "-q", "-f", "json", "--fail-above", "0.5", gpt, str(bad)).returncode == 1


def test_usage_and_detector_exit_codes():
    proc = run_cli("scan", "--format", "nope", str(PROV))
    assert proc.returncode == 2
    proc = run_cli("scan", "--backend", "no-such-backend", str(PROV))
    assert proc.returncode == 4 and b"unknown backend" in proc.stderr


def test_json_document_has_run_header_and_results(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("scan", "--backend", "none", "-f", "json", "-o", str(out), str(PROV / "c2pa"))
    assert proc.returncode == 0 and proc.stdout == b""
    doc = json.loads(out.read_text())
    run = doc["run"]
    assert run["tool"] == "fakescope" and run["finished_at"] and run["started_at"]
    assert run["counts"]["files"] == len(doc["results"]) == len(list((PROV / "c2pa").iterdir()))
    assert "--backend" in run["arguments"]


def test_stdout_carries_machine_output_only(tmp_path):
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(PROV / "c2pa"))
    for line in proc.stdout.decode().splitlines():
        json.loads(line)


def test_table_fits_80_columns_without_color():
    proc = run_cli("scan", "--backend", "none", str(PROV / "c2pa"), env={"COLUMNS": "80"})
    text = proc.stdout.decode()
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "ai-edited" in text


def test_non_image_named_explicitly_is_an_error_record(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(txt), str(tmp_path))
    recs = jsonl_records(proc.stdout)
    assert recs[0]["errors"][0]["code"] == "unsupported-format"
    assert [Path(r["path"]).name for r in recs] == ["notes.txt", "ok.png"]  # folder scan skips notes.txt
    assert proc.returncode == 3
    assert os.path.exists(txt)


def test_a_reader_that_goes_away_stops_the_scan_with_141_not_the_gate_code():
    """`fakescope scan … | head -1` under `set -o pipefail`: not 1 (a tripped gate), no traceback."""
    import subprocess
    import sys

    from tests.conftest import DATA, cli_env

    # thousands of records: far more than a pipe buffer holds, so the scan must write after the close
    proc = subprocess.Popen([sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-f", "jsonl",
                             str(DATA)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert first["path"]
    assert proc.returncode == 141, err.decode()[-2000:]
    assert b"Traceback" not in err and b"BrokenPipe" not in err
