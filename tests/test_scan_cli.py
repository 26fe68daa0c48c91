"""End to end through the real CLI: provenance verdicts, formats, stdin lists, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import FIXTURES, invoke_cli, jsonl_records, run_cli

PROV = FIXTURES / "provenance"


def by_name(records):
    return {Path(r["path"]).name: r for r in records}


@pytest.mark.slow
def test_provenance_verdicts_through_the_cli():
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(PROV))
    assert proc.returncode == 0, proc.stderr.decode()
    recs = by_name(jsonl_records(proc.stdout))
    assert recs["chatgpt_gpt4o_c2pa.png"]["verdict"] == "ai-generated"
    assert recs["chatgpt_gpt4o_c2pa.png"]["p_fake"] >= 0.99
    assert recs["ocsp.jpg"]["verdict"] == "ai-generated"  # Firefly text-to-image, then cropped (issue #20)
    assert recs["no_manifest.jpg"]["verdict"] == "no-verdict"
    assert recs["no_manifest.jpg"]["p_fake"] is None
    for name, rec in recs.items():
        if name.endswith(".png") and ("automatic1111" in name or "comfy" in rec["path"] or "invokeai" in name):
            assert rec["verdict"] == "ai-generated", name
    # Chain of custody in every record.
    for rec in recs.values():
        assert len(rec["sha256"]) == 64 and rec["custody"]["tool"] == "fakescope"
        assert rec["custody"]["scanned_at"].endswith("Z")


@pytest.mark.slow
def test_output_is_deterministic_in_order():
    a = run_cli("scan", "--backend", "none", "-f", "jsonl", "-j", "2", str(PROV))
    b = run_cli("scan", "--backend", "none", "-f", "jsonl", "-j", "1", str(PROV))
    assert [r["path"] for r in jsonl_records(a.stdout)] == [r["path"] for r in jsonl_records(b.stdout)]


def test_stdin_path_list_and_nul_separated(tmp_path):
    files = sorted(str(p) for p in (PROV / "c2pa").glob("*.jpg"))[:3]
    proc = invoke_cli("scan", "-", "--backend", "none", "-f", "jsonl", stdin="\n".join(files).encode())
    assert [r["path"] for r in jsonl_records(proc.stdout)] == files
    proc0 = invoke_cli("scan", "-", "-0", "--backend", "none", "-f", "jsonl", stdin="\0".join(files).encode())
    assert [r["path"] for r in jsonl_records(proc0.stdout)] == files


def test_gate_and_error_exit_codes(tmp_path):
    gpt = str(PROV / "openai" / "chatgpt_gpt4o_c2pa.png")
    plain = str(PROV / "c2pa" / "no_manifest.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    assert invoke_cli("scan", "--backend", "none", "-q", "-f", "json", plain).returncode == 0
    assert invoke_cli("scan", "--backend", "none", "-q", "-f", "json", "--fail-above", "0.5", gpt).returncode == 1
    assert invoke_cli("scan", "--backend", "none", "-q", "-f", "json", "--fail-above", "0.5", plain).returncode == 0
    assert invoke_cli("scan", "--backend", "none", "-q", "-f", "json", plain, str(bad)).returncode == 3
    # 1 wins over 3.
    assert invoke_cli("scan", "--backend", "none", "-q", "-f", "json", "--fail-above", "0.5", gpt, str(bad)).returncode == 1


def test_usage_and_detector_exit_codes():
    proc = invoke_cli("scan", "--format", "nope", str(PROV))
    assert proc.returncode == 2
    proc = invoke_cli("scan", "--backend", "no-such-backend", str(PROV))
    assert proc.returncode == 2 and b"unknown backend" in proc.stderr  # a typo, not a detector problem (4)


@pytest.mark.slow
def test_json_document_has_run_header_and_results(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("scan", "--backend", "none", "-f", "json", "-o", str(out), str(PROV / "c2pa"))
    assert proc.returncode == 0 and proc.stdout == b""
    doc = json.loads(out.read_text())
    run = doc["run"]
    assert run["tool"] == "fakescope" and run["finished_at"] and run["started_at"]
    assert run["counts"]["files"] == len(doc["results"]) == len(list((PROV / "c2pa").iterdir()))
    assert "--backend" in run["arguments"]


@pytest.mark.slow
def test_stdout_carries_machine_output_only(tmp_path):
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(PROV / "c2pa"))
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == len(list((PROV / "c2pa").glob("*.jpg"))) > 0  # one record per image, nothing else
    for line in lines:
        json.loads(line)


@pytest.mark.slow
def test_table_fits_80_columns_without_color():
    proc = run_cli("scan", "--backend", "none", str(PROV / "c2pa"), env={"COLUMNS": "80"})
    text = proc.stdout.decode()
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "ai-generated" in text  # ocsp.jpg: generated at its origin (issue #20)


@pytest.mark.slow
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


@pytest.mark.slow
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


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_report_is_never_written_over_an_input(tmp_path):
    """`-o photo.jpg photo.jpg` (arguments swapped) must not destroy the evidence it describes."""
    evidence = tmp_path / "ev"
    evidence.mkdir()
    photo = evidence / "a.jpg"
    photo.write_bytes((PROV / "c2pa" / "C.jpg").read_bytes())
    (tmp_path / "alias.jpg").symlink_to(photo)
    before = _sha(photo)
    for fmt in ("json", "jsonl", "csv", "table"):
        for target, scanned in ((photo, photo), (photo, evidence), (tmp_path / "alias.jpg", evidence)):
            proc = run_cli("scan", "--backend", "none", "-q", "-f", fmt, "-o", str(target), str(scanned))
            assert proc.returncode == 2, (fmt, target, proc.stderr.decode())
            assert b"one of the inputs" in proc.stderr and b"Traceback" not in proc.stderr
            assert _sha(photo) == before
    assert sorted(p.name for p in evidence.iterdir()) == ["a.jpg"]  # no temporary file left beside it
    shard = tmp_path / "s.jsonl"
    assert run_cli("scan", "--backend", "none", "-q", "-f", "jsonl", "-o", str(shard), str(photo)).returncode == 0
    kept = shard.read_bytes()
    proc = run_cli("merge", "-o", str(shard), str(shard))
    assert proc.returncode == 2 and shard.read_bytes() == kept


@pytest.mark.slow
def test_an_unusable_output_path_is_a_usage_error_before_any_work(tmp_path):
    photo = str(PROV / "c2pa" / "C.jpg")
    cases = {
        str(tmp_path / "missing" / "r.json"): b"does not exist",
        str(tmp_path): b"names a folder",
    }
    for target, message in cases.items():
        for fmt in ("json", "jsonl"):
            proc = run_cli("scan", "--backend", "none", "-q", "-f", fmt, "-o", target, photo)
            assert proc.returncode == 2, proc.stderr.decode()  # not 1, which a CI script reads as "fakes found"
            assert message in proc.stderr and b"Traceback" not in proc.stderr
            assert len(proc.stderr.decode().strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_progress_bar_is_gone_before_the_table_prints(tmp_path):
    """On a terminal the bar (stderr) and the table (stdout) share the screen: the bar must be erased
    first, or the table's header is glued to a stale 'scanning … 4/38'."""
    import pty
    import subprocess
    import sys

    from tests.conftest import cli_env

    for i in range(6):
        Image.new("RGB", (64 + i, 64), (i * 40, 90, 160)).save(tmp_path / f"{i}.png")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "fakescope_cli", "scan", "--no-cache", str(tmp_path)],
                            stdin=follower, stdout=follower, stderr=follower, close_fds=True,
                            env=cli_env({"COLUMNS": "100", "TERM": "xterm"}))
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = out.decode(errors="replace")
    header = text.index("verdict")
    assert "scanning" in text[:header]  # the bar was shown ...
    assert "scanning" not in text[header:]  # ... and never drawn again once the table started


@pytest.mark.slow
def test_a_report_goes_through_a_link_or_into_a_pipe_never_replacing_them(tmp_path):
    photo = str(PROV / "c2pa" / "C.jpg")
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    proc = run_cli("scan", "--backend", "none", "-q", "-f", "json", "-o", str(link), photo)
    assert proc.returncode == 0, proc.stderr.decode()
    assert link.is_symlink() and json.loads(target.read_text())["results"][0]["path"] == photo
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    import subprocess
    import sys

    from tests.conftest import cli_env

    writer = subprocess.Popen([sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-q", "-f",
                               "sarif", "-o", str(fifo), photo], env=cli_env())
    with open(fifo, encoding="utf-8") as fh:
        doc = json.loads(fh.read())
    assert writer.wait(timeout=60) == 0 and doc["version"] == "2.1.0"
    import stat

    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a pipe, not a regular file put in its place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe.json", "target.json"]


@pytest.mark.slow
def test_a_full_disk_is_a_one_line_usage_error_not_the_gate_code():
    if not os.path.exists("/dev/full"):
        import pytest

        pytest.skip("no /dev/full here")
    photo = str(PROV / "c2pa" / "C.jpg")
    for fmt in ("json", "jsonl", "table"):
        proc = run_cli("scan", "--backend", "none", "-q", "-f", fmt, "-o", "/dev/full", photo)
        assert proc.returncode == 2 and b"No space left" in proc.stderr and b"Traceback" not in proc.stderr
    import stat

    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.slow
def test_missing_or_foreign_backend_options_are_usage_errors():
    photo = str(PROV / "c2pa" / "C.jpg")
    for args in (["--backend", "hf"], ["--backend", "gguf"], ["--backend", "server"], ["--model", "x"],
                 ["--shard", ""]):
        proc = run_cli("scan", "-q", *args, photo)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr.decode())
        assert b"Traceback" not in proc.stderr
    proc = run_cli("ask", photo, "what is this?")  # the default backend, hf, without --model
    assert proc.returncode == 2 and b"--model" in proc.stderr


@pytest.mark.slow
def test_a_score_that_is_not_a_probability_fails_that_file(tmp_path):
    """NaN or out-of-range p_fake from a backend must not pass as an 'uncertain' no gate trips on."""
    photo = tmp_path / "grey.png"
    Image.new("RGB", (16, 16), (100, 100, 100)).save(photo)
    manifest = tmp_path / "m.json"
    manifest.write_text('{"gain": -1.0}')
    proc = run_cli("scan", "-f", "jsonl", "--backend", "tests.plugins.brightness_detector:BrightnessDetector",
                   "--model", str(manifest), "--fail-above", "0.5", str(photo))
    rec = jsonl_records(proc.stdout)[0]
    assert rec["errors"][0]["code"] == "detector-error" and "not a probability" in rec["errors"][0]["message"]
    assert rec["verdict"] == "error" and rec["p_fake"] is None and proc.returncode == 3


@pytest.mark.slow
def test_output_spellings_that_once_slipped_through(tmp_path):
    """`-o photo.jpg/` read as photo.jpg; `-o /dev/stdout` reopened (truncating a >> log) or renamed over."""
    import subprocess
    import sys

    from tests.conftest import cli_env

    photo = tmp_path / "a.jpg"
    photo.write_bytes((PROV / "c2pa" / "C.jpg").read_bytes())
    kept = photo.read_bytes()
    for fmt in ("json", "jsonl", "html"):
        proc = run_cli("scan", "--backend", "none", "-q", "-f", fmt, "-o", f"{photo}/", str(photo))
        assert proc.returncode == 2 and b"names a folder" in proc.stderr, proc.stderr
    assert photo.read_bytes() == kept
    log = tmp_path / "app.log"
    log.write_text("OLD\n")
    with open(log, "a") as fh:
        proc = subprocess.run([sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-q", "-f", "json",
                               "-o", "/dev/stdout", str(photo)], stdout=fh, env=cli_env(), check=False)
    assert proc.returncode == 0 and log.read_text().startswith("OLD\n{")
    piped = run_cli("scan", "--backend", "none", "-q", "-f", "sarif", "-o", "/dev/stdout", str(photo))
    assert piped.returncode == 0 and json.loads(piped.stdout)["version"] == "2.1.0"
    report = tmp_path / "private.json"
    report.write_text("{}")
    report.chmod(0o600)
    assert run_cli("scan", "--backend", "none", "-q", "-f", "json", "-o", str(report), str(photo)).returncode == 0
    assert (report.stat().st_mode & 0o777) == 0o600 and json.loads(report.read_text())["results"]


@pytest.mark.slow
def test_a_fifo_reader_that_leaves_early_is_one_line_not_a_traceback(tmp_path):
    import subprocess
    import sys

    from tests.conftest import DATA, cli_env

    fifo = tmp_path / "out.html"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["head", "-c", "10", str(fifo)], stdout=subprocess.DEVNULL)
    proc = subprocess.run([sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-q", "-f", "html",
                           "-o", str(fifo), str(DATA / "real" / "bfree_demo")], capture_output=True, env=cli_env(),
                          timeout=120, check=False)
    reader.wait(timeout=30)
    assert proc.returncode == 2 and b"reader went away" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.slow
def test_an_image_left_out_by_shard_or_ext_is_still_never_overwritten(tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(6):
        Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(ev / f"img{i}.png")
    Image.new("RGB", (8, 8)).save(ev / "photo.jpg")
    before = {p.name: p.read_bytes() for p in ev.iterdir()}
    from fakescope_cli.merge import shard_of

    other = next(p for p in sorted(ev.glob("*.png")) if shard_of(str(p), 2) == 2)  # scanned by shard 2/2 only
    for args in (["--shard", "1/2", "-o", str(other)], ["--ext", "png", "-o", str(ev / "photo.jpg")]):
        proc = run_cli("scan", "--backend", "none", "-q", "-f", "jsonl", *args, str(ev))
        assert proc.returncode == 2 and b"never writes over" in proc.stderr, (args, proc.stderr)
    assert {p.name: p.read_bytes() for p in ev.iterdir()} == before
    report = ev / "report.json"  # an earlier report in the folder (not an image) may be replaced
    for _ in range(2):
        assert run_cli("scan", "--backend", "none", "-q", "-f", "json", "-o", str(report), str(ev)).returncode == 0
