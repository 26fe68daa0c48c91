"""Hostile and broken inputs: every file accounted for, nothing changed on disk, the run finishes."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import FIXTURES, jsonl_records, run_cli
from tests.test_media import bomb_png


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """sha256, mtime_ns and mode of every regular file below root."""
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                st = os.stat(p)
                with open(p, "rb") as fh:
                    out[p] = (hashlib.sha256(fh.read()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return out


@pytest.mark.slow
def test_every_shared_fixture_in_one_run_without_failing():
    before = snapshot(FIXTURES)
    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", "-q", str(FIXTURES), timeout=600)
    assert proc.returncode in (0, 3), proc.stderr.decode()[-2000:]
    records = jsonl_records(proc.stdout)
    image_like = [p for p in before if Path(p).suffix.lower() in
                  {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif", ".webp"}]
    scanned = {r["path"] for r in records}
    assert {os.path.relpath(p) for p in image_like} <= {os.path.relpath(p) for p in scanned}
    for rec in records:
        for err in rec["errors"]:
            assert err["code"] and err["message"]
        assert not any(e["code"] == "internal-error" for e in rec["errors"]), rec["errors"]
    assert snapshot(FIXTURES) == before


@pytest.mark.slow
def test_hostile_folder(tmp_path):
    ev = tmp_path / "evidence"
    ev.mkdir()
    rng = np.random.default_rng(1)
    good = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    good.save(ev / "good.jpg", quality=90)
    buf = io.BytesIO()
    good.save(buf, format="JPEG", quality=90)
    (ev / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (ev / "zero.png").write_bytes(b"")
    (ev / "bomb.png").write_bytes(bomb_png(40_000, 40_000))
    (ev / "garbage.webp").write_bytes(os.urandom(300))
    os.mkfifo(ev / "pipe.jpg")
    os.symlink(ev / "gone.png", ev / "dangling.png")
    deep = ev
    for i in range(40):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    good.save(deep / "deep.png")
    (ev / "na\xefve\nname.png").write_bytes((ev / "good.jpg").read_bytes())
    before = snapshot(ev)
    listing_before = sorted(os.listdir(ev))

    proc = run_cli("scan", "--backend", "none", "-f", "jsonl", str(ev), timeout=120)
    assert proc.returncode == 3
    recs = {Path(r["path"]).name: r for r in jsonl_records(proc.stdout)}
    codes = {name: [e["code"] for e in r["errors"]] for name, r in recs.items()}
    assert codes["good.jpg"] == [] and recs["good.jpg"]["verdict"] == "no-verdict"
    assert codes["truncated.jpg"] == ["truncated"]
    assert codes["zero.png"] == ["empty-file"]
    # an error record still carries the custody that could be known (the hash of zero bytes, the date)
    empty = hashlib.sha256(b"").hexdigest()
    assert (recs["zero.png"]["sha256"], recs["zero.png"]["bytes"]) == (empty, 0)
    assert recs["zero.png"]["custody"]["file_mtime"] and recs["bomb.png"]["sha256"]
    assert codes["bomb.png"] == ["pixel-limit"]
    # the decode failure is said once, as the error and the first reason; no pixel reader repeats it
    assert recs["bomb.png"]["warnings"] == []
    assert recs["bomb.png"]["reasons"][0].startswith("The image could not be analysed (pixel-limit: ")
    assert recs["truncated.jpg"]["reasons"][0].startswith("The image could not be analysed (truncated: ")
    assert codes["garbage.webp"] == ["unsupported-format"]
    assert codes["pipe.jpg"] == ["not-a-regular-file"]
    assert codes["dangling.png"] == ["dangling-symlink"]
    for name, rec in recs.items():  # every error record says why in its reasons, as the table shows them
        if rec["errors"]:
            assert rec["reasons"][0].startswith(f"The image could not be analysed ({rec['errors'][0]['code']}: "), name
    assert codes["deep.png"] == []
    assert codes["na\xefve\nname.png"] == []
    assert snapshot(ev) == before
    assert sorted(os.listdir(ev)) == listing_before  # nothing written next to the evidence


@pytest.mark.slow
def test_ctrl_c_leaves_valid_jsonl(tmp_path):
    ev = tmp_path / "many"
    ev.mkdir()
    rng = np.random.default_rng(2)
    for i in range(400):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(ev / f"{i:04d}.png")
    out = tmp_path / "partial.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-f", "jsonl", "-o", str(out),
         "-j", "1", str(ev)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    lines = out.read_text().splitlines()
    assert 5 <= len(lines) < 400
    recs = jsonl_records(out.read_bytes())
    assert [Path(r["path"]).name for r in recs] == [f"{i:04d}.png" for i in range(len(recs))]


def _catches_sigterm(pid: int) -> bool:
    """Has process `pid` installed its own SIGTERM handler? (Linux: the SigCgt mask in /proc)"""
    with open(f"/proc/{pid}/status") as fh:
        fields = dict(line.split(":", 1) for line in fh if ":" in line)
    return bool(int(fields["SigCgt"].strip(), 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
def test_sigterm_finishes_json_document(tmp_path):
    """A SIGTERM during start-up (imports, the walk) is held and stops the scan at its first record:
    exit 130 and a finished document, never the default kill (143, no output). The signal is sent as
    soon as the handler is in place, i.e. while the slow imports still run, not after a guessed delay."""
    import json

    ev = tmp_path / "many"
    ev.mkdir()
    for i in range(40):
        Image.new("RGB", (64, 64), (i % 255, 0, 0)).save(ev / f"{i:04d}.png")
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-f", "json", "-o", str(out),
         "-j", "2", str(ev)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    while proc.poll() is None and not _catches_sigterm(proc.pid):
        time.sleep(0.001)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert err.decode().count("\n") == 1 and "interrupted" in err.decode()
    doc = json.loads(out.read_text())
    assert doc["run"]["interrupted"] is True
    assert doc["results"] == [] and doc["run"]["counts"]["files"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_file_timeout_kills_only_the_stuck_file(tmp_path, jobs):
    """With one worker, the file queued behind the stuck (or crashing) one goes to its replacement."""
    for name in ("a.png", "b_slow.png", "c.png", "d_crash.png", "e.png"):
        Image.new("RGB", (16, 16)).save(tmp_path / name)
    proc = run_cli("scan", "--backend", "tests.plugins.slow_detector:SlowDetector", "-f", "jsonl",
                   "--file-timeout", "2", "-j", jobs, str(tmp_path), timeout=120)  # the stuck file never ends alone
    recs = {Path(r["path"]).name: r for r in jsonl_records(proc.stdout)}
    assert list(recs) == ["a.png", "b_slow.png", "c.png", "d_crash.png", "e.png"]
    assert recs["b_slow.png"]["errors"][0]["code"] == "timeout"
    slow = (tmp_path / "b_slow.png").read_bytes()
    for name in ("b_slow.png", "d_crash.png"):  # the worker was killed; the parent still hashed the file
        assert recs[name]["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert recs[name]["custody"]["file_mtime"]
    assert recs["b_slow.png"]["bytes"] == len(slow)
    assert recs["b_slow.png"]["reasons"][0].startswith("The image could not be analysed (timeout: ")
    assert recs["d_crash.png"]["errors"][0]["code"] == "internal-error"
    assert recs["a.png"]["verdict"] == recs["c.png"]["verdict"] == recs["e.png"]["verdict"] == "uncertain"
    assert not recs["c.png"]["errors"] and not recs["e.png"]["errors"]
    assert proc.returncode == 3
