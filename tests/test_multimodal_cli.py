"""The multimodal backends through the real CLI: scan (hf, gguf), ask, models inspect/list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from tests.conftest import jsonl_records, run_cli  # noqa: E402
from tests.tiny_models import cached_build, cached_gguf, make_images, session_models_dir  # noqa: E402


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Path:
    return cached_build(session_models_dir(tmp_path_factory), "llava")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> list[Path]:
    return make_images(tmp_path_factory.mktemp("mm-cli"), n=3)


def test_scan_hf_with_attributes_keeps_detector_p_fake(llava, pictures):
    proc = run_cli("scan", "--backend", "hf", "--model", str(llava), "--device", "cpu", "--attributes",
                   "-f", "jsonl", *map(str, pictures))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    recs = jsonl_records(proc.stdout)
    assert len(recs) == 3
    for rec in recs:
        det = rec["detector"]
        assert det["id"] == "hf" and 0.0 <= det["p_fake"] <= 1.0
        assert rec["p_fake"] == pytest.approx(det["p_fake"], abs=1e-6)  # no provenance: fusion keeps it
        assert len(det["attributes"]) == 14
        assert rec["custody"]["weights_sha256"] == det["weights_sha256"]


def test_scan_gguf_matches_hf(llava, pictures, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    model, mmproj = cached_gguf(session_models_dir(tmp_path_factory), "llava")
    hf = jsonl_records(run_cli("scan", "--backend", "hf", "--model", str(llava), "--device", "cpu", "-f", "jsonl",
                               *map(str, pictures)).stdout)
    proc = run_cli("scan", "--backend", "gguf", "--model", str(model), "--mmproj", str(mmproj), "-f", "jsonl",
                   *map(str, pictures))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    gg = jsonl_records(proc.stdout)
    assert proc.stderr.decode().count("\n") < 5, "llama.cpp log noise leaked to stderr"
    for a, b in zip(hf, gg, strict=True):
        assert abs(a["detector"]["p_fake"] - b["detector"]["p_fake"]) <= 0.02


def test_ask_streams_text_and_json(llava, pictures):
    proc = run_cli("ask", str(pictures[0]), "What is odd here?", "--backend", "hf", "--model", str(llava),
                   "--device", "cpu", "--max-tokens", "8")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.strip()
    proc = run_cli("ask", str(pictures[0]), "--advise", "--backend", "hf", "--model", str(llava),
                   "--device", "cpu", "--max-tokens", "8", "--json")
    doc = json.loads(proc.stdout)
    assert doc["question"] == "advise" and isinstance(doc["answer"], str) and len(doc["sha256"]) == 64
    assert run_cli("ask", str(pictures[0]), "--backend", "hf", "--model", str(llava)).returncode == 2


def test_ask_refuses_backends_without_language(pictures):
    for backend in ("none", "builtin", "cycle", "tests.plugins.brightness_detector:BrightnessDetector"):
        proc = run_cli("ask", str(pictures[0]), "hi", "--backend", backend)
        assert proc.returncode == 2 and b"cannot answer questions" in proc.stderr, (backend, proc.stderr)


def test_models_inspect_and_list(llava):
    proc = run_cli("models", "inspect", str(llava))
    assert proc.returncode == 0, proc.stderr.decode()
    info = json.loads(proc.stdout)
    assert info["backend"] == "hf" and len(info["weights_sha256"]) == 64
    listing = run_cli("models", "list").stdout.decode()
    assert "builtin" in listing and "hf" in listing
    assert run_cli("models", "inspect", "/nonexistent/model").returncode == 4


def test_manifest_weights_pin_is_verified(llava, pictures, tmp_path):
    import shutil

    from tests.tiny_models import write_manifest

    pinned = tmp_path / "pinned"
    shutil.copytree(llava, pinned)
    sha = json.loads(run_cli("models", "inspect", str(pinned)).stdout)["weights_sha256"]
    write_manifest(pinned, {"weights_sha256": sha})
    ok = run_cli("scan", "--backend", "hf", "--model", str(pinned), "--device", "cpu", "-f", "jsonl", str(pictures[0]))
    assert ok.returncode == 0, ok.stderr.decode()[-1500:]
    write_manifest(pinned, {"weights_sha256": "0" * 64})
    bad = run_cli("scan", "--backend", "hf", "--model", str(pinned), "--device", "cpu", "-f", "jsonl", str(pictures[0]))
    assert bad.returncode == 4 and b"weights_sha256" in bad.stderr
