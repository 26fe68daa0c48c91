"""`fakescope eval` and `--calibrate` through the CLI, then `scan --calibration` using the result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import jsonl_records, run_cli

BRIGHT = "tests.plugins.brightness_detector:BrightnessDetector"


def _server_answer() -> dict:
    """A chat completion that answers "fake" with the label words' log-probabilities."""
    top = [{"token": "fake", "logprob": -0.2}, {"token": "real", "logprob": -1.8}]
    return {"object": "chat.completion", "model": "tiny", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "fake"},
        "logprobs": {"content": [{"token": "fake", "logprob": -0.2, "top_logprobs": top}]}}]}


def _labelled(root: Path) -> None:
    for label, levels in (("real", [20, 40, 60, 80, 100, 120, 200]), ("fake", [150, 170, 190, 210, 230])):
        folder = root / label / ("gen_a" if label == "fake" else "")
        folder.mkdir(parents=True, exist_ok=True)
        for v in levels:
            Image.new("RGB", (16, 16), (v, v, v)).save(folder / f"{label}_{v}.png")


@pytest.mark.slow
def test_eval_reports_metrics_and_calibration_changes_scan(tmp_path):
    _labelled(tmp_path / "set")
    cal = tmp_path / "cal.json"
    proc = run_cli("eval", str(tmp_path / "set"), "--backend", BRIGHT, "--json", "-", "--calibrate", str(cal),
                   "--target-fpr", "0.0")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    # Hand count: 35 real/fake pairs, the real 200 beats fakes 150,170,190 -> AUC = (35-3)/35.
    assert report["n"] == 12 and abs(report["auc"] - 32 / 35) < 1e-9
    assert report["by_group"]["gen_a"]["n"] == 5
    calibration = json.loads(cal.read_text())
    assert calibration["measured_fpr"] == 0.0 and calibration["threshold"] > 200 / 255

    probe = tmp_path / "probe.png"
    Image.new("RGB", (16, 16), (190, 190, 190)).save(probe)
    plain = jsonl_records(run_cli("scan", "-f", "jsonl", "--backend", BRIGHT, str(probe)).stdout)[0]
    calibrated = jsonl_records(run_cli("scan", "-f", "jsonl", "--backend", BRIGHT, "--calibration", str(cal),
                                       str(probe)).stdout)[0]
    assert plain["verdict"] == "likely-ai" and calibrated["verdict"] != "likely-ai"


@pytest.mark.slow
def test_bad_calibration_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"threshold": "high"}')
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    proc = run_cli("scan", "--backend", "none", "--calibration", str(bad), str(tmp_path / "x.png"))
    assert proc.returncode == 2 and b"calibration" in proc.stderr


@pytest.mark.slow
def test_eval_says_when_the_detectors_band_never_flags(tmp_path):
    """The shipped builtin band is closed: its 'accuracy' at threshold 1 would mislead without a note."""
    _labelled(tmp_path / "set")
    own = json.loads(run_cli("eval", str(tmp_path / "set"), "--json", "-").stdout)
    assert own["threshold"] == 1.0
    assert any("band is closed" in note for note in own["notes"]), own["notes"]
    chosen = json.loads(run_cli("eval", str(tmp_path / "set"), "--json", "-",
                                "--threshold", "0.5").stdout)
    assert not any("band is closed" in note for note in chosen["notes"]), chosen["notes"]


@pytest.mark.slow
def test_a_calibration_for_another_detector_is_refused_one_for_other_weights_warned(tmp_path):
    _labelled(tmp_path / "set")
    cal = tmp_path / "cal.json"
    assert run_cli("eval", str(tmp_path / "set"), "--backend", BRIGHT, "--calibrate", str(cal)).returncode == 0
    probe = str(tmp_path / "set" / "real" / "real_20.png")
    doc = json.loads(cal.read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**doc, "detector_id": "cycle"}))
    proc = run_cli("scan", "-f", "jsonl", "--backend", BRIGHT, "--calibration", str(other), probe)
    assert proc.returncode == 2 and b"'cycle'" in proc.stderr and proc.stdout == b""
    retrained = tmp_path / "retrained.json"
    retrained.write_text(json.dumps({**doc, "weights_sha256": "ab" * 32}))
    builtin_cal = run_cli("scan", "-f", "jsonl", "--calibration", str(retrained), probe)
    assert builtin_cal.returncode == 2  # made with the test plugin, used with builtin
    retrained.write_text(json.dumps({**doc, "detector_id": "builtin", "weights_sha256": "ab" * 32}))
    proc = run_cli("scan", "-f", "jsonl", "--calibration", str(retrained), probe)
    assert proc.returncode == 0 and b"warning" in proc.stderr and b"other weights" in proc.stderr


@pytest.mark.slow
def test_eval_exits_3_when_some_images_could_not_be_scored_and_checks_outputs_first(tmp_path):
    _labelled(tmp_path / "set")
    (tmp_path / "set" / "real" / "empty.png").write_bytes(b"")
    proc = run_cli("eval", str(tmp_path / "set"), "--backend", BRIGHT, "--json", "-")
    assert proc.returncode == 3 and json.loads(proc.stdout)["n_unscored"] == 1
    image = tmp_path / "set" / "real" / "real_20.png"
    kept = image.read_bytes()
    for flag in ("--json", "--records", "--calibrate"):
        proc = run_cli("eval", str(tmp_path / "set"), "--backend", BRIGHT, flag, str(image))
        assert proc.returncode == 2 and b"one of the inputs" in proc.stderr, flag
        proc = run_cli("eval", str(tmp_path / "set"), "--backend", BRIGHT, flag, str(tmp_path / "no" / "r.json"))
        assert proc.returncode == 2 and b"does not exist" in proc.stderr and b"Traceback" not in proc.stderr
    assert image.read_bytes() == kept


@pytest.mark.slow
def test_eval_and_data_build_never_write_over_their_labels_file(tmp_path):
    _labelled(tmp_path / "set")
    rows = ["path,label"] + [f"{p},{'fake' if 'fake' in p.parts else 'real'}" for p in sorted((tmp_path / "set").rglob("*.png"))]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(str(r) for r in rows) + "\n")
    kept = labels.read_bytes()
    for flag in ("--json", "--records", "--calibrate"):
        proc = run_cli("eval", str(labels), "--backend", BRIGHT, flag, str(labels))
        assert proc.returncode == 2 and flag.encode() in proc.stderr and b"one of the inputs" in proc.stderr, flag
    image = sorted((tmp_path / "set").rglob("*.png"))[0]
    image_bytes = image.read_bytes()
    for target in (labels, image):
        proc = run_cli("data", "build", str(labels), "-o", str(target), "--no-evidence")
        assert proc.returncode == 2 and b"one of the inputs" in proc.stderr, (target, proc.stderr.decode()[-400:])
    assert labels.read_bytes() == kept and image.read_bytes() == image_bytes


@pytest.mark.slow
def test_sigterm_stops_eval_waiting_on_a_hung_server(tmp_path):
    from tests.server_harness import FaultServer, sigterm_when

    _labelled(tmp_path / "set")
    answer = _server_answer()
    # The start-up check is answered at once; every image then waits 30 s.
    with FaultServer(answer, script=[(200, {}, None, 0.0)], delay=30.0) as fs:
        code, err, _stopped_in = sigterm_when(
            ["eval", str(tmp_path / "set"), "--backend", "server", "--url", fs.url, "--jobs", "2"],
            lambda: fs.in_flight == 2)
        unanswered = fs.in_flight  # both requests still held by the server: neither was waited for (30 s)
    assert code == 130 and b"interrupted" in err, (code, err)
    assert unanswered == 2


@pytest.mark.slow
def test_data_build_recipe_value_of_the_wrong_type_is_a_usage_error(tmp_path):
    import pytest

    pytest.importorskip("fakescope_train.instruct")
    _labelled(tmp_path / "set")
    for body, message in (('detect = "lots"', b"detect: 'lots' is not a valid int"),
                          ("attributes = 2.5", b"attributes: 2.5 is not a valid int"),
                          ('explain = "yes"', b"explain: 'yes' is not a valid bool")):
        recipe = tmp_path / "r.toml"
        recipe.write_text(f"[data]\n{body}\n")
        proc = run_cli("data", "build", str(tmp_path / "set"), "-o", str(tmp_path / "out.jsonl"),
                       "--recipe", str(recipe))
        assert proc.returncode == 2 and message in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr
    recipe.write_text("[data]\ndetect = 2\nexplain = false\n")
    proc = run_cli("data", "build", str(tmp_path / "set"), "-o", str(tmp_path / "out.jsonl"), "--recipe", str(recipe))
    assert proc.returncode == 0 and json.loads(proc.stdout)["tasks"]["detect"] == 24, proc.stderr


@pytest.mark.slow
def test_eval_outputs_go_through_the_same_writer_as_scan(tmp_path):
    _labelled(tmp_path / "set")
    args = ["eval", str(tmp_path / "set"), "--backend", BRIGHT]
    if os.path.exists("/dev/full"):
        for flag in ("--json", "--records", "--calibrate"):
            proc = run_cli(*args, flag, "/dev/full")
            assert proc.returncode == 2 and b"No space left" in proc.stderr and b"Traceback" not in proc.stderr, flag
    same = tmp_path / "x.json"
    proc = run_cli(*args, "--json", str(same), "--records", str(same))
    assert proc.returncode == 2 and b"name the same file" in proc.stderr and not same.exists()
    cal = tmp_path / "cal.json"
    assert run_cli(*args, "--calibrate", str(cal)).returncode == 0
    kept = cal.read_bytes()
    probe = str(tmp_path / "set" / "real" / "real_20.png")
    proc = run_cli("scan", "--backend", BRIGHT, "--calibration", str(cal), "-f", "json", "-o", str(cal), probe)
    assert proc.returncode == 2 and cal.read_bytes() == kept


@pytest.mark.slow
def test_an_interrupted_eval_keeps_the_records_it_made(tmp_path):
    from tests.server_harness import FaultServer, sigterm_when

    _labelled(tmp_path / "set")
    answer = _server_answer()
    records = tmp_path / "r.jsonl"
    # the start-up check and the first two images are answered at once, the third hangs
    with FaultServer(answer, script=[(200, {}, None, 0.0)] * 3, delay=30.0) as fs:
        code, _err, _s = sigterm_when(["eval", str(tmp_path / "set"), "--backend", "server", "--url", fs.url,
                                       "--jobs", "1", "--records", str(records)],
                                      lambda: fs.in_flight == 1 and len(fs.chat_requests()) >= 4)
    assert code == 130
    kept = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(kept) == 2 and all(r["p_fake"] is not None for r in kept)


@pytest.mark.slow
def test_data_build_writes_through_links_and_into_devices(tmp_path):
    import pytest

    pytest.importorskip("fakescope_train.instruct")
    _labelled(tmp_path / "set")
    target = tmp_path / "target.jsonl"
    target.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert run_cli("data", "build", str(tmp_path / "set"), "-o", str(link), "--no-evidence").returncode == 0
    assert link.is_symlink() and target.read_text().count("\n") > 10
    import stat

    proc = run_cli("data", "build", str(tmp_path / "set"), "-o", "/dev/null", "--no-evidence")
    assert proc.returncode == 0 and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    proc = run_cli("data", "build", str(tmp_path / "set"), "-o", f"{target}/", "--no-evidence")
    assert proc.returncode == 2 and b"names a folder" in proc.stderr
