"""Issue 21: a pixel score alone never reads as proof, gates say why, `eval` counts verdicts right.

The detector is a stub plugin (tests/plugins/fixed_detector.py) that gives every image the score
its --model file names: a confidently wrong backend, whatever it is (builtin, cycle, hf, gguf,
server, plugins all go through the same fusion).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fakescope_cli.fusion import PIXEL_P_FAKE_CAP, STRONG_P_FAKE
from tests.conftest import FIXTURES, jsonl_records, run_cli
from tests.test_render import _assert_valid_sarif, sarif_validator  # noqa: F401, F811  (a fixture)

FIXED = "tests.plugins.fixed_detector:FixedDetector"
GPT = FIXTURES / "provenance" / "openai" / "chatgpt_gpt4o_c2pa.png"  # Content Credentials: ai-generated
EDITED = FIXTURES / "provenance" / "c2pa" / "ocsp.jpg"  # Content Credentials: ai-edited


def _photo(path: Path, level: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (level, 90, 60)).save(path)
    return path


def _model(tmp_path: Path, name: str, **spec: float) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.slow
def test_a_pixel_score_of_0999_stays_below_provenance_and_trips_no_gate(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    for band in ({}, {"threshold_low": 0.0, "threshold_high": 1.0}):  # open band, closed band
        model = _model(tmp_path, "model.json", p_fake=0.999, **band)
        proc = run_cli("scan", "-b", FIXED, "-m", model, "-f", "jsonl", "--fail-above", "0.99",
                       "--fail-on", "ai-generated", str(photo))
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stderr == b""  # no gate line: nothing tripped, nothing unanalysed
        lines = proc.stdout.decode().splitlines()
        trailer = json.loads(lines[-1])  # a gated jsonl run ends with its run header
        record = jsonl_records("\n".join(lines[:-1]).encode())[0]
        assert record["p_fake"] == PIXEL_P_FAKE_CAP < STRONG_P_FAKE
        assert record["detector"]["p_fake"] == 0.999  # the detector's own value is kept
        assert record["p_fake_basis"] == ("hint" if band else "pixels")
        assert record["verdict"] == ("uncertain" if band else "likely-ai")
        assert trailer["run"]["gate"]["tripped"] is False
        assert trailer["run"]["gate"]["rule"] == "--fail-on ai-generated --fail-above 0.99"


@pytest.mark.slow
def test_the_table_and_html_show_a_closed_band_score_as_a_hint(tmp_path: Path) -> None:
    photos = [_photo(tmp_path / f"photo{i}.png", 40 * i) for i in range(3)]
    model = _model(tmp_path, "model.json", p_fake=0.999, threshold_low=0.0, threshold_high=1.0)
    table = run_cli("scan", "-b", FIXED, "-m", model, "-f", "table", *map(str, photos), str(GPT),
                    env={"COLUMNS": ""})  # an exported COLUMNS would still set the width
    text = table.stdout.decode()
    lines = text.splitlines()
    hint_rows = [line for line in lines if "photo" in line]
    assert len(hint_rows) == 3 and all("hint 1.00" in row and "%" not in row for row in hint_rows), text
    assert "99.9%" in next(line for line in lines if "chatgpt" in line)  # provenance keeps its percentage
    # The hint's reason, the same on three rows, is printed once as a note.
    assert all("[1]" in row for row in hint_rows)
    assert sum("hint for ranking only" in line for line in lines) == 1
    # Not a terminal: full width (paths whole on one line) and no trailing spaces.
    assert all(line == line.rstrip() for line in lines)
    assert any(str(GPT) in line for line in lines)
    assert max(len(line) for line in lines) > 80

    report = tmp_path / "r.html"
    proc = run_cli("scan", "-b", FIXED, "-m", model, "-f", "html", "-o", str(report), str(photos[0]), str(GPT))
    assert proc.returncode == 0, proc.stderr.decode()
    html = report.read_text()
    card = html[html.index('data-path="' + str(photos[0])):]
    card = card[: card.index("</article>")]
    assert 'class="pct hint"' in card and "hint 1.00" in card
    assert "%" not in card.split("<h4>")[0]  # no percentage and no bar above the reasons
    assert 'class="bar' not in card
    gpt_card = html[html.index('data-path="' + str(GPT)):]
    gpt_card = gpt_card[: gpt_card.index("</article>")]
    assert '<span class="pct">99.9%</span>' in gpt_card
    # The Content Credentials sentence is the first reason; the evidence list does not repeat it.
    credentials = gpt_card.split("<h4>Why</h4><ul><li>", 1)[1].split("</li>", 1)[0]
    assert "Content Credentials" in credentials and gpt_card.count(credentials) == 1
    assert "(said above)" in gpt_card


@pytest.mark.slow
def test_a_tripped_gate_says_why_on_stderr_and_in_every_run_header(
    tmp_path: Path, sarif_validator: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    photo = _photo(tmp_path / "photo.png")
    model = _model(tmp_path, "model.json", p_fake=0.2)
    args = ["scan", "-b", FIXED, "-m", model, "--fail-on", "ai-generated,ai-edited", str(photo), str(GPT),
            str(EDITED)]
    headers = {}
    for fmt in ("json", "jsonl", "sarif"):
        proc = run_cli(*args, "-f", fmt, "-q")  # --quiet hides notes, not the reason for exit 1
        assert proc.returncode == 1
        err = proc.stderr.decode().splitlines()
        assert err == [f"fakescope: gate --fail-on ai-generated,ai-edited tripped by 2 files: {GPT}, {EDITED}"]
        out = proc.stdout.decode()
        if fmt == "json":
            headers[fmt] = json.loads(out)["run"]["gate"]
        elif fmt == "jsonl":
            headers[fmt] = json.loads(out.splitlines()[-1])["run"]["gate"]
        else:
            _assert_valid_sarif(sarif_validator, json.loads(out))
            run = json.loads(out)["runs"][0]
            headers[fmt] = run["properties"]["gate"]
            notes = run["invocations"][0]["toolExecutionNotifications"]
            assert any(n["message"]["text"] == err[0].removeprefix("fakescope: ") for n in notes)
    for gate in headers.values():
        assert gate["tripped"] is True and gate["tripped_files"] == 2
        assert gate["tripped_examples"] == [str(GPT), str(EDITED)]
        assert gate["fail_on"] == ["ai-generated", "ai-edited"]
        assert gate["message"].startswith("gate --fail-on ai-generated,ai-edited tripped by 2 files")


@pytest.mark.slow
def test_unanalysed_files_are_named_on_stderr_with_exit_3(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    proc = run_cli("scan", "--backend", "none", "-q", "-f", "json", str(bad), str(_photo(tmp_path / "ok.png")))
    assert proc.returncode == 3
    assert proc.stderr.decode() == f"fakescope: 1 file could not be fully analysed: {bad}\n"
    assert json.loads(proc.stdout)["run"]["gate"]["unanalysed_examples"] == [str(bad)]


@pytest.mark.slow
def test_fail_on_refuses_a_word_that_is_not_a_verdict(tmp_path: Path) -> None:
    proc = run_cli("scan", "--backend", "none", "--fail-on", "ai-genrated", str(_photo(tmp_path / "a.png")))
    assert proc.returncode == 2 and b"'ai-genrated' is not a verdict" in proc.stderr


@pytest.mark.slow
def test_only_attention_keeps_flagged_errors_and_warnings_in_every_format(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    misnamed = tmp_path / "png-really.jpg"  # extension-mismatch warning
    shutil.copy(photo, misnamed)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    model = _model(tmp_path, "model.json", p_fake=0.5, threshold_low=0.0, threshold_high=1.0)
    files = [str(photo), str(misnamed), str(bad), str(GPT)]
    args = ["scan", "-b", FIXED, "-m", model, "--only", "attention", *files]
    proc = run_cli(*args, "-f", "json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert [r["path"] for r in doc["results"]] == [str(misnamed), str(bad), str(GPT)]
    assert doc["run"]["counts"]["files"] == 4  # the counts still cover every file
    rows = list(csv.DictReader(io.StringIO(run_cli(*args, "-f", "csv").stdout.decode())))
    assert [r["path"] for r in rows] == [str(misnamed), str(bad), str(GPT)]
    row = rows[0]
    assert row["warning_codes"] == "extension-mismatch" and row["p_fake_basis"] == "hint"
    assert row["score"] == "hint 0.50"
    table = run_cli(*args, "-f", "table").stdout.decode()
    assert str(photo) not in table and str(misnamed) in table and str(GPT) in table
    assert table.splitlines()[-1].startswith("4 files (3 shown) · 1 ai-generated · 2 uncertain")
    flagged = json.loads(run_cli("scan", "-b", FIXED, "-m", model, "--only", "flagged", *files, "-f", "json").stdout)
    assert [r["path"] for r in flagged["results"]] == [str(GPT)]


@pytest.mark.slow
def test_merge_reads_the_jsonl_trailer_and_gates_on_verdicts(tmp_path: Path) -> None:
    shard = tmp_path / "shard.jsonl"
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", "-o", str(shard), "--fail-above", "0.999",
                   str(GPT), str(_photo(tmp_path / "photo.png")))
    assert proc.returncode == 0
    assert '"run"' in shard.read_text().splitlines()[-1]
    merged = run_cli("merge", str(shard), "--fail-on", "ai-generated", "-f", "json")
    assert merged.returncode == 1
    assert merged.stderr.decode() == f"fakescope: gate --fail-on ai-generated tripped by 1 file: {GPT}\n"
    doc = json.loads(merged.stdout)
    assert len(doc["results"]) == 2 and doc["run"]["gate"]["tripped"] is True


def _labelled(root: Path) -> None:
    for i in range(6):
        _photo(root / "real" / f"real{i}.png", 30 * i)
    _photo(root / "fake" / "stripped.png", 200)
    for source in (GPT, EDITED):
        shutil.copy(source, root / "fake" / source.name)


@pytest.mark.slow
def test_eval_counts_provenance_verdicts_as_flagged(tmp_path: Path) -> None:
    _labelled(tmp_path / "set")
    model = _model(tmp_path, "model.json", p_fake=0.5, threshold_low=0.0, threshold_high=1.0)
    proc = run_cli("eval", str(tmp_path / "set"), "-b", FIXED, "-m", model, "--json", "-")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    # Threshold 1 (the closed band): the pixels flag nothing, provenance flags its two fakes.
    assert report["threshold"] == 1.0 and report["n_flagged_by_provenance"] == 2
    assert report["confusion"] == {"tp": 2, "fn": 1, "fp": 0, "tn": 6}
    text = run_cli("eval", str(tmp_path / "set"), "-b", FIXED, "-m", model).stdout.decode()
    assert "provenance says AI (2 files)" in text


@pytest.mark.slow
def test_calibrate_refuses_scores_that_separate_nothing(tmp_path: Path) -> None:
    _labelled(tmp_path / "set")
    model = _model(tmp_path, "model.json", p_fake=0.5)  # the same score for every image
    out = tmp_path / "threshold.json"
    proc = run_cli("eval", str(tmp_path / "set"), "-b", FIXED, "-m", model, "--calibrate", str(out))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "do not separate" in err and "--force" in err
    assert "flags 0 of 1 fakes: TPR 0.000, below the floor 0.10" in err
    assert "AUC here is 0.500" in err and "includes 0.5" in err
    assert not out.exists()
    forced = run_cli("eval", str(tmp_path / "set"), "-b", FIXED, "-m", model, "--calibrate", str(out), "--force")
    assert forced.returncode == 0, forced.stderr.decode()
    written = json.loads(out.read_text())
    assert written["separates"] is False and written["forced"] is True
    assert written["measured_tpr"] == 0.0 and written["auc"] == 0.5 and written["auc_interval"][0] <= 0.5
    assert any("below the floor" in w for w in written["warnings"])
    assert written["n_flagged_by_provenance"] == 2 and written["n_fake"] == 1
    used = run_cli("scan", "-b", FIXED, "-m", model, "--calibration", str(out), "-f", "json",
                   str(tmp_path / "set" / "real" / "real0.png"))
    assert used.returncode == 0 and "did not separate real from fake" in used.stderr.decode()
