"""Result cache: rescans hit, changes miss, option changes miss, interrupted scans resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import jsonl_records, run_cli
from tests.test_robustness import snapshot


def _make(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (32, 32), (i % 256, 10, 20)).save(folder / f"{i:03d}.png")


@pytest.mark.slow
def test_rescan_hits_and_changes_miss(tmp_path):
    ev, cache = tmp_path / "ev", tmp_path / "cache"
    _make(ev, 6)
    args = ["scan", "--backend", "tests.plugins.slow_detector:SlowDetector", "-f", "jsonl", "--cache-dir", str(cache)]
    first = jsonl_records(run_cli(*args, str(ev)).stdout)
    assert not any(r["custody"].get("from_cache") for r in first)
    before = snapshot(ev)
    second = jsonl_records(run_cli(*args, str(ev)).stdout)
    assert all(r["custody"].get("from_cache") for r in second)
    assert [(r["path"], r["sha256"], r["verdict"]) for r in first] == [(r["path"], r["sha256"], r["verdict"]) for r in second]
    assert snapshot(ev) == before
    # A changed file misses; the others still hit.
    Image.new("RGB", (32, 32), (255, 255, 0)).save(ev / "002.png")
    third = {Path(r["path"]).name: r for r in jsonl_records(run_cli(*args, str(ev)).stdout)}
    assert not third["002.png"]["custody"].get("from_cache")
    assert third["001.png"]["custody"].get("from_cache")
    # Options that change a result miss.
    other = jsonl_records(run_cli(*args, "--max-pixels", "100000", str(ev)).stdout)
    assert not any(r["custody"].get("from_cache") for r in other)
    # --no-cache neither reads nor writes.
    fresh = jsonl_records(run_cli(*args[:-2], "--no-cache", str(ev)).stdout)
    assert not any(r["custody"].get("from_cache") for r in fresh)


@pytest.mark.slow
def test_error_records_are_not_cached(tmp_path):
    ev, cache = tmp_path / "ev", tmp_path / "cache"
    ev.mkdir()
    (ev / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    args = ["scan", "--backend", "none", "-f", "jsonl", "--cache-dir", str(cache), str(ev)]
    run_cli(*args)
    again = jsonl_records(run_cli(*args).stdout)
    assert again[0]["errors"] and not again[0]["custody"].get("from_cache")


@pytest.mark.slow
def test_interrupted_scan_resumes_from_cache(tmp_path):
    ev, cache, out = tmp_path / "ev", tmp_path / "cache", tmp_path / "part.jsonl"
    _make(ev, 300)
    cmd = [sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-f", "jsonl", "-j", "1",
           "--cache-dir", str(cache), "-o", str(out), str(ev)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    done = jsonl_records(out.read_bytes())
    assert 20 <= len(done) < 300
    resumed = jsonl_records(run_cli("scan", "--backend", "none", "-f", "jsonl", "--cache-dir", str(cache), str(ev)).stdout)
    assert len(resumed) == 300
    hits = [r for r in resumed if r["custody"].get("from_cache")]
    assert len(hits) >= len(done)
    assert {r["path"] for r in done} <= {r["path"] for r in hits}



def test_a_new_tool_version_or_detector_weights_miss_the_cache(monkeypatch):
    """Fusion and the readers change with the tool: records of another version are not served."""
    import fakescope_cli.cache as cache_mod

    info = {"id": "builtin", "version": "v1", "weights_sha256": "a" * 64}
    key = cache_mod.result_key(info, {})
    assert cache_mod.result_key(dict(info), {}) == key
    assert cache_mod.result_key({**info, "weights_sha256": "b" * 64}, {}) != key
    monkeypatch.setattr(cache_mod, "__version__", cache_mod.__version__ + ".post1")
    assert cache_mod.result_key(info, {}) != key


@pytest.mark.slow
def test_a_cached_result_carries_this_files_own_date_and_obeys_max_bytes(tmp_path):
    """Results are shared by content; the date and the --max-bytes refusal belong to the file scanned now."""
    ev, cache = tmp_path / "ev", tmp_path / "cache"
    _make(ev, 1)
    copy = ev / "copy.png"
    copy.write_bytes((ev / "000.png").read_bytes())
    os.utime(ev / "000.png", ns=(1_577_836_800 * 10**9,) * 2)  # 2020-01-01
    os.utime(copy, ns=(1_717_200_000 * 10**9,) * 2)  # 2024-06-01
    args = ["scan", "--backend", "none", "-f", "jsonl", "--cache-dir", str(cache)]
    run_cli(*args, str(ev))  # one stored result for the shared content, stamped with one file's date
    recs = {Path(r["path"]).name: r for r in jsonl_records(run_cli(*args, str(ev)).stdout)}
    assert all(r["custody"]["from_cache"] for r in recs.values())
    assert recs["000.png"]["custody"]["file_mtime"] == "2020-01-01T00:00:00Z"
    assert recs["copy.png"]["custody"]["file_mtime"] == "2024-06-01T00:00:00Z"
    capped = run_cli(*args, "--max-bytes", "10", str(ev))
    assert capped.returncode == 3
    assert {r["errors"][0]["code"] for r in jsonl_records(capped.stdout)} == {"file-too-large"}
    # refused unread, but its size and date are known: custody keeps them (no hash: it was not read)
    for r in jsonl_records(capped.stdout):
        assert r["bytes"] == (ev / "000.png").stat().st_size and r["sha256"] is None
        assert r["custody"]["file_mtime"] in ("2020-01-01T00:00:00Z", "2024-06-01T00:00:00Z")


@pytest.mark.slow
def test_an_unusable_cache_is_a_usage_error_that_names_the_way_out(tmp_path):
    photo = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(photo)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results-v1.sqlite").write_bytes(b"not a database at all" * 10)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    import sqlite3

    db = sqlite3.connect(foreign / "results-v1.sqlite")
    db.execute("CREATE TABLE results(x)")  # the right file name, another program's table
    db.commit()
    db.close()
    for cache in (broken, not_a_folder / "sub", foreign):
        proc = run_cli("scan", "--backend", "none", "-q", "-f", "jsonl", "--cache-dir", str(cache), str(photo))
        assert proc.returncode == 2, proc.stderr.decode()
        assert b"--no-cache" in proc.stderr and b"Traceback" not in proc.stderr and proc.stdout == b""
    assert (broken / "results-v1.sqlite").read_bytes() == b"not a database at all" * 10


@pytest.mark.slow
def test_an_edited_checkpoint_manifest_misses_the_cache(tmp_path):
    """The manifest (prompts, label words, calibration) changes results without changing the weights."""
    photo = tmp_path / "grey.png"
    Image.new("RGB", (16, 16), (100, 100, 100)).save(photo)
    manifest = tmp_path / "fakescope.json"
    manifest.write_text('{"gain": 1.0}')
    args = ["scan", "-f", "jsonl", "--backend", "tests.plugins.brightness_detector:BrightnessDetector",
            "--model", str(manifest), "--cache-dir", str(tmp_path / "cache"), str(photo)]
    first = jsonl_records(run_cli(*args).stdout)[0]
    assert jsonl_records(run_cli(*args).stdout)[0]["custody"]["from_cache"]
    manifest.write_text('{"gain": 2.0}')
    edited = jsonl_records(run_cli(*args).stdout)[0]
    assert not edited["custody"].get("from_cache")
    assert edited["p_fake"] == pytest.approx(2 * first["p_fake"], abs=1e-5)


def test_the_cache_key_follows_the_detectors_whole_description():
    import fakescope_cli.cache as cache_mod

    info = {"id": "hf", "version": "1", "weights_sha256": "a" * 64, "protocol": "fakescope-protocol/1+manifest.x"}
    key = cache_mod.result_key(info, {})
    assert cache_mod.result_key({**info, "protocol": "fakescope-protocol/1+manifest.y"}, {}) != key
    assert cache_mod.result_key({**info, "threshold_high": 0.8}, {}) != key
    assert cache_mod.result_key({**info, "api_key_env": "OTHER"}, {}) == key  # how it is reached, not what


@pytest.mark.slow
def test_a_name_based_warning_is_not_carried_to_a_copy_under_another_name(tmp_path):
    ev, cache = tmp_path / "ev", tmp_path / "cache"
    ev.mkdir()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(ev / "x.png")
    (ev / "y.jpg").write_bytes((ev / "x.png").read_bytes())  # the same PNG bytes, named as a JPEG
    args = ["scan", "--backend", "none", "-f", "jsonl", "--cache-dir", str(cache), str(ev)]
    run_cli(*args)
    for _ in range(2):
        recs = {Path(r["path"]).name: r for r in jsonl_records(run_cli(*args).stdout)}
        assert all(r["custody"].get("from_cache") for r in recs.values())
        assert [w["code"] for w in recs["x.png"]["warnings"]] == []
        assert [w["code"] for w in recs["y.jpg"]["warnings"]] == ["extension-mismatch"]
