"""The multimodal backends through the real CLI: scan (hf, gguf), ask, models inspect/list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from fakescope_cli.fusion import PIXEL_P_FAKE_CAP  # noqa: E402
from tests.conftest import jsonl_records, run_cli  # noqa: E402
from tests.tiny_models import cached_build, cached_gguf, make_images, session_models_dir  # noqa: E402


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Path:
    return cached_build(session_models_dir(tmp_path_factory), "llava")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> list[Path]:
    return make_images(tmp_path_factory.mktemp("mm-cli"), n=3)


@pytest.mark.slow
def test_scan_hf_with_attributes_keeps_detector_p_fake(llava, pictures):
    proc = run_cli("scan", "--backend", "hf", "--model", str(llava), "--device", "cpu", "--attributes",
                   "-f", "jsonl", *map(str, pictures))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    recs = jsonl_records(proc.stdout)
    assert len(recs) == 3
    for rec in recs:
        det = rec["detector"]
        assert det["id"] == "hf" and 0.0 <= det["p_fake"] <= 1.0
        # No provenance: fusion keeps the detector's score, capped below provenance's band.
        assert rec["p_fake"] == pytest.approx(min(det["p_fake"], PIXEL_P_FAKE_CAP), abs=1e-6)
        assert len(det["attributes"]) == 14
        assert rec["custody"]["weights_sha256"] == det["weights_sha256"]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_ask_refuses_backends_without_language(pictures):
    for backend in ("none", "builtin", "cycle", "tests.plugins.brightness_detector:BrightnessDetector"):
        proc = run_cli("ask", str(pictures[0]), "hi", "--backend", backend)
        assert proc.returncode == 2 and b"cannot answer questions" in proc.stderr, (backend, proc.stderr)


@pytest.mark.slow
def test_models_inspect_and_list(llava):
    proc = run_cli("models", "inspect", str(llava))
    assert proc.returncode == 0, proc.stderr.decode()
    info = json.loads(proc.stdout)
    assert info["backend"] == "hf" and len(info["weights_sha256"]) == 64
    listing = run_cli("models", "list").stdout.decode()
    assert "builtin" in listing and "hf" in listing
    assert run_cli("models", "inspect", "/nonexistent/model").returncode == 2  # a typo: usage, not detector


@pytest.mark.slow
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


# --- ask against a local OpenAI-compatible server (tests/server_harness.FaultServer) -------------

# An answer a hostile or broken server might send: it sets the window title, clears the screen and
# overwrites the line with \r. Newlines and tabs are layout and stay as they are.
HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\u2026\rOK\nnext line\ttab"
HOSTILE_SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\u2026\\rOK\nnext line\ttab"


def _server_answer(content: str) -> dict:
    """A chat completion carrying both logprobs (the start-up check needs them) and a message."""
    top = [{"token": "fake", "logprob": -0.2}, {"token": "real", "logprob": -1.8}]
    return {"object": "chat.completion", "model": "tiny", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content},
        "logprobs": {"content": [{"token": "fake", "logprob": -0.2, "top_logprobs": top}]}}]}


@pytest.mark.slow
def test_ask_escapes_control_characters_of_server_text_and_errors(pictures):
    from tests.server_harness import FaultServer

    with FaultServer(_server_answer(HOSTILE)) as fs:
        base = ("ask", str(pictures[0]), "--backend", "server", "--url", fs.url)
        text = run_cli(*base[:2], "What is odd?", *base[2:])
        advise = run_cli(*base, "--advise")
        as_json = run_cli(*base[:2], "What is odd?", *base[2:], "--json")
    for proc in (text, advise):
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode() == HOSTILE_SHOWN + "\n"
        assert b"\x1b" not in proc.stdout and b"\x07" not in proc.stdout and b"\r" not in proc.stdout
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["answer"] == HOSTILE  # JSON stays exact

    refusal = {"error": {"message": "bad \x1b]0;T\x07 "}}
    with FaultServer(_server_answer("ok"), script=[(401, {}, refusal, 0.0)]) as fs:
        proc = run_cli("ask", str(pictures[0]), "q", "--backend", "server", "--url", fs.url)
    assert proc.returncode == 4
    assert b"HTTP 401: bad \\x1b]0;T\\x07" in proc.stderr and b"\x1b" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_ask_empty_question_is_a_usage_error_before_anything_loads(pictures):
    from tests.server_harness import FaultServer

    with FaultServer(_server_answer("ok")) as fs:
        for question in ("", "  \t"):
            proc = run_cli("ask", str(pictures[0]), question, "--backend", "server", "--url", fs.url)
            assert proc.returncode == 2 and b"the question is empty" in proc.stderr, proc.stderr
        assert fs.requests == []  # refused before the server (or a model) was touched
    proc = run_cli("ask", str(pictures[0]), "", "--backend", "hf", "--model", "/nonexistent/model")
    assert proc.returncode == 2 and b"the question is empty" in proc.stderr


@pytest.mark.slow
def test_ask_takes_max_pixels_and_max_bytes(pictures):
    """The pixel-limit message says "raise with --max-pixels": ask must have it (and --max-bytes)."""
    no_model = ("--backend", "hf", "--model", "/nonexistent/model")
    proc = run_cli("ask", str(pictures[0]), "q", *no_model, "--max-pixels", "10")
    assert proc.returncode == 3 and b"--max-pixels" in proc.stderr and b"[pixel-limit]" in proc.stderr, proc.stderr
    proc = run_cli("ask", str(pictures[0]), "q", *no_model, "--max-bytes", "10")
    assert proc.returncode == 3 and b"Traceback" not in proc.stderr, proc.stderr
    # Within the limits the file passes and the (missing) model is what fails.
    proc = run_cli("ask", str(pictures[0]), "q", *no_model, "--max-pixels", "100000000", "--max-bytes", "100000000")
    assert proc.returncode == 4, proc.stderr


@pytest.mark.slow
def test_ask_help_does_not_promise_streaming_for_every_backend():
    text = " ".join(run_cli("ask", "--help").stdout.decode().split())
    assert "(answer streamed)" not in text and "whole" in text and "server" in text


@pytest.mark.slow
def test_sigterm_stops_ask_waiting_on_a_hung_server(pictures):
    from tests.server_harness import FaultServer, sigterm_when

    # The start-up check is answered at once; the question then hangs for 30 s.
    with FaultServer(_server_answer("ok"), script=[(200, {}, None, 0.0)], delay=30.0) as fs:
        code, err, _stopped_in = sigterm_when(
            ["ask", str(pictures[0]), "q", "--backend", "server", "--url", fs.url],
            lambda: fs.in_flight == 1 and len(fs.chat_requests()) == 2)
        unanswered = fs.in_flight  # the question is still held by the server: not waited for (30 s)
    assert code == 130 and b"interrupted" in err, (code, err)
    assert unanswered == 1


def _pickled_llava(llava: Path, dst: Path) -> Path:
    """The tiny LLaVA with its weights as pytorch_model.bin only (pickle)."""
    import shutil

    import torch
    import transformers

    dst.mkdir()
    for f in llava.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, dst / f.name)
    model = transformers.LlavaForConditionalGeneration.from_pretrained(llava)
    torch.save(model.state_dict(), dst / "pytorch_model.bin")
    return dst


@pytest.mark.slow
def test_ask_and_eval_take_the_loader_options_scan_has(llava, pictures, tmp_path):
    """The hf loader's refusal says "pass --trust-pickle": ask and eval must accept it (and eval the
    --device/--quantize/--batch-size of scan)."""
    ckpt = _pickled_llava(llava, tmp_path / "pickled")
    ask = ("ask", str(pictures[0]), "What is odd?", "--backend", "hf", "--model", str(ckpt), "--device", "cpu",
           "--max-tokens", "4")
    refused = run_cli(*ask)
    assert refused.returncode == 4 and b"--trust-pickle" in refused.stderr, refused.stderr.decode()[-1500:]
    trusted = run_cli(*ask, "--trust-pickle", "--trust-remote-code")
    assert trusted.returncode == 0, trusted.stderr.decode()[-1500:]

    labelled = tmp_path / "set"
    for label, picture in (("real", pictures[0]), ("real", pictures[1]), ("fake", pictures[2])):
        (labelled / label).mkdir(parents=True, exist_ok=True)
        (labelled / label / picture.name).write_bytes(picture.read_bytes())
    proc = run_cli("eval", str(labelled), "--backend", "hf", "--model", str(ckpt), "--device", "cpu",
                   "--quantize", "none", "--batch-size", "2", "--trust-pickle", "--trust-remote-code", "--json", "-")
    assert proc.returncode == 0, proc.stderr.decode()[-1500:]
    report = json.loads(proc.stdout)
    assert report["n"] == 3 and report["detector"]["id"] == "hf"
