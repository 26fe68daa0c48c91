"""`--backend server` against llama-cpp-python's real OpenAI-compatible server (the `server` extra)
running the tiny GGUF LLaVA and Qwen2-VL checkpoints that tests/tiny_models.py builds, checked
against `--backend gguf` on the same files; plus fault injection (429/5xx, a server that vanishes,
no logprobs) through a local HTTP server that replays a recorded answer of the real one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
pytest.importorskip("transformers")
for _mod in ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"):
    pytest.importorskip(_mod, reason="llama-cpp-python[server] extra not installed")

from fakescope_cli.detectors.server import (  # noqa: E402
    ServerDetector,
    png_data_url,
    score_top_logprobs,
    split_url,
)
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError  # noqa: E402
from fakescope_cli.media import Media  # noqa: E402
from fakescope_cli.protocol import ASPECTS, DETECT_PROMPT, LABEL_WORDS, score_label_logits  # noqa: E402
from tests.conftest import jsonl_records, run_cli  # noqa: E402
from tests.server_harness import FaultServer, LlamaServer, chat, free_port, wait_for  # noqa: E402
from tests.tiny_models import cached_gguf, make_images, session_models_dir  # noqa: E402

API_KEY = "sk-fakescope-test-3f9c1e7a5b"  # the qwen2vl test server requires it
FULL = "1000"  # > the tiny vocabulary (~400): every label token is in the top-k


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    base = session_models_dir(tmp_path_factory)
    return {k: cached_gguf(base, k) for k in ("llava", "qwen2vl")}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_images(tmp_path_factory.mktemp("server-images"), n=4)


@pytest.fixture(scope="module")
def servers(ggufs: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory):
    logs = tmp_path_factory.mktemp("server-logs")
    started: dict[str, LlamaServer] = {}
    try:
        started["llava"] = LlamaServer(*ggufs["llava"], logs / "llava.log").start()
        started["qwen2vl"] = LlamaServer(*ggufs["qwen2vl"], logs / "qwen2vl.log", api_key=API_KEY).start()
        yield started
    finally:
        for s in started.values():
            s.stop()


def key_env(kind: str) -> dict[str, str]:
    return {"FAKESCOPE_API_KEY": API_KEY} if kind == "qwen2vl" else {}


@pytest.fixture(scope="module")
def recorded(servers: dict[str, LlamaServer], images: list[Path]) -> dict[str, Any]:
    """A real answer of llama.cpp's server to a detection probe (replayed by FaultServer)."""
    url = png_data_url(Media.open(images[0]))
    body = {"model": "tiny", "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": int(FULL),
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                      {"type": "text", "text": DETECT_PROMPT}]}]}
    return chat(servers["llava"].url, body)


def scan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_cli("scan", "-f", "jsonl", "--no-cache", *args, env=env, timeout=180)


def by_path(records: list[dict[str, Any]]) -> dict[str, float]:
    return {r["path"]: r["detector"]["p_fake"] for r in records}


# ---------------------------------------------------------------------------------------------
# Against the real server


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["llava", "qwen2vl"])
def test_same_p_fake_as_gguf_also_with_concurrency(kind: str, servers: dict[str, LlamaServer],
                                                   ggufs: dict[str, tuple[Path, Path]], images: list[Path]) -> None:
    paths = [str(p) for p in images]
    model, mmproj = ggufs[kind]
    local = scan("--backend", "gguf", "--model", str(model), "--mmproj", str(mmproj), *paths)
    assert local.returncode == 0, local.stderr.decode()
    ref = jsonl_records(local.stdout)
    for jobs in ("1", "4"):
        res = scan("--backend", "server", "--url", servers[kind].url, "--model", "tiny", "--top-logprobs", FULL,
                   "--jobs", jobs, *paths, env=key_env(kind))
        assert res.returncode == 0, res.stderr.decode()
        got = jsonl_records(res.stdout)
        assert [r["path"] for r in got] == [r["path"] for r in ref]  # scan order kept under concurrency
        for a, b in zip(got, ref, strict=True):
            assert a["detector"]["p_fake"] == pytest.approx(b["detector"]["p_fake"], abs=0.02)
            assert a["p_fake"] == pytest.approx(b["p_fake"], abs=0.02)
            assert a["detector"]["id"] == "server" and a["custody"]["detector_id"] == "server"
            assert a["detector"]["raw"]["label_tokens"]["fake"]  # pooled from the top-k
        if kind == "qwen2vl":
            # Both render the same chat template text here: the same prompt tokens, the same numbers.
            for a, b in zip(got, ref, strict=True):
                assert a["detector"]["p_fake"] == pytest.approx(b["detector"]["p_fake"], abs=1e-4)
    # Different images give different answers (so the comparison above is not vacuous).
    assert len({round(v, 6) for v in by_path(ref).values()}) == len(paths)


@pytest.mark.slow
def test_attributes_match_gguf(servers: dict[str, LlamaServer], ggufs: dict[str, tuple[Path, Path]],
                               images: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from fakescope_cli.detectors.gguf import GGUFDetector

    monkeypatch.setenv("FAKESCOPE_API_KEY", API_KEY)
    srv = ServerDetector("tiny", servers["qwen2vl"].url, attributes=True, top_logprobs=int(FULL))
    loc = GGUFDetector(*ggufs["qwen2vl"], attributes=True, n_threads=1)
    m = Media.open(images[1])
    a, b = srv.analyze(m), loc.analyze(m)
    assert list(a.attributes) == list(ASPECTS)
    for k in ASPECTS:
        assert a.attributes[k] == pytest.approx(b.attributes[k], abs=0.02)
    assert a.p_fake == pytest.approx(b.p_fake, abs=0.02)
    assert srv.http.requests >= 15  # one request per probe
    assert API_KEY not in json.dumps({**srv.describe().to_dict(), **a.to_dict()})


@pytest.mark.slow
def test_label_words_outside_top_k_are_a_per_file_error(servers: dict[str, LlamaServer], images: list[Path]) -> None:
    res = scan("--backend", "server", "--url", servers["llava"].url, "--top-logprobs", "2", str(images[0]))
    assert res.returncode == 3, res.stderr.decode()
    (rec,) = jsonl_records(res.stdout)
    assert rec["verdict"] == "error" and rec["p_fake"] is None
    assert rec["errors"][0]["code"] == "detector-error"
    assert "label words not in top_logprobs" in rec["errors"][0]["message"]


@pytest.mark.slow
def test_explain_and_ask_by_completion(servers: dict[str, LlamaServer], images: list[Path]) -> None:
    url = servers["llava"].url
    res = scan("--backend", "server", "--url", url, "--top-logprobs", FULL, "--explain", "--max-tokens", "5",
               str(images[0]))
    assert res.returncode == 0, res.stderr.decode()
    (rec,) = jsonl_records(res.stdout)
    text = rec["detector"]["explanation"]
    assert isinstance(text, str) and text
    assert "explanation_verdict" in rec["detector"]["raw"]
    asked = run_cli("ask", "--backend", "server", "--url", url, "--max-tokens", "5", "--json", str(images[0]),
                    "Is it fake?")
    assert asked.returncode == 0, asked.stderr.decode()
    assert isinstance(json.loads(asked.stdout)["answer"], str)


@pytest.mark.slow
def test_api_key_refused_without_it(servers: dict[str, LlamaServer], images: list[Path]) -> None:
    res = scan("--backend", "server", "--url", servers["qwen2vl"].url, str(images[0]), env={"FAKESCOPE_API_KEY": ""})
    assert res.returncode == 4
    err = res.stderr.decode()
    assert "HTTP 401" in err and "--api-key-env" in err and "Traceback" not in err


@pytest.mark.slow
def test_server_killed_mid_scan_keeps_finished_records(ggufs: dict[str, tuple[Path, Path]], images: list[Path],
                                                       tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        shutil.copy(images[i % len(images)], folder / f"f{i:02d}{images[i % len(images)].suffix}")
    out = tmp_path / "out.jsonl"
    with LlamaServer(*ggufs["llava"], tmp_path / "kill.log") as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fakescope_cli", "scan", "--backend", "server", "--url", server.url,
             "--top-logprobs", FULL, "--jobs", "2", "--retries", "1", "--no-cache", "-f", "jsonl", "-o", str(out),
             str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 3, timeout=120)
            server.kill()
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 4, err.decode()
    records = jsonl_records(out.read_bytes())  # every line complete and schema-valid
    assert 3 <= len(records) < 60
    assert [r["path"] for r in records] == sorted(r["path"] for r in records)  # a prefix, in scan order
    assert all(r["detector"]["p_fake"] is not None for r in records)
    text = err.decode()
    assert "stopped after" in text and server.url.split("//")[1] in text and "Traceback" not in text


@pytest.mark.slow
def test_unreachable_url_exit_4(images: list[Path]) -> None:
    port = free_port()  # nothing listens there
    res = scan("--backend", "server", "--url", f"http://127.0.0.1:{port}", str(images[0]))
    assert res.returncode == 4
    err = res.stderr.decode()
    assert f"cannot reach the server at http://127.0.0.1:{port}/v1" in err and "Traceback" not in err
    assert res.stdout == b""
    assert "attempts" not in err  # refused at start-up after one try: no retry loop


# ---------------------------------------------------------------------------------------------
# Fault injection: a local HTTP server replaying the recorded real answer


@pytest.mark.slow
def test_retries_429_then_succeeds(recorded: dict[str, Any], images: list[Path]) -> None:
    script = [(429, {"Retry-After": "1"}, None, 0.0), (503, {}, None, 0.0)]
    with FaultServer(recorded, script=script) as fs:
        t = time.monotonic()
        det = ServerDetector("tiny", fs.url, retries=3, backoff=0.01, top_logprobs=int(FULL))
        assert time.monotonic() - t >= 0.9  # Retry-After honoured
        assert len(fs.chat_requests()) == 3  # 429, 503, then 200 for the start-up check
        res = det.analyze(Media.open(images[0]))
    top = [(e["token"], e["logprob"]) for e in recorded["choices"][0]["logprobs"]["content"][0]["top_logprobs"]]
    s = score_top_logprobs(top, LABEL_WORDS)
    assert res.p_fake == pytest.approx(1 / (1 + np.exp(s.z_real - s.z_fake)))


@pytest.mark.slow
def test_persistent_503_is_unavailable_and_500_or_400_cost_one_file(recorded: dict[str, Any],
                                                                      images: list[Path]) -> None:
    with FaultServer(recorded, script=[(503, {}, None, 0.0)] * 3) as fs:
        with pytest.raises(DetectorUnavailable, match=r"HTTP 503 \(after 3 attempts\)"):
            ServerDetector("tiny", fs.url, retries=2, backoff=0.01)
        assert len(fs.chat_requests()) == 3
    with FaultServer(recorded) as fs:
        det = ServerDetector("tiny", fs.url, retries=2, backoff=0.01, top_logprobs=int(FULL))
        fs.script = [(500, {}, None, 0.0)] * 3
        with pytest.raises(InputError, match="HTTP 500") as info:
            det.analyze(Media.open(images[0]))
        assert info.value.code == "detector-error"
        fs.script = [(400, {}, {"error": {"message": "image too large"}}, 0.0)]
        n = len(fs.chat_requests())
        with pytest.raises(InputError, match="image too large"):
            det.analyze(Media.open(images[0]))
        assert len(fs.chat_requests()) == n + 1  # a 400 is not retried
        assert det.analyze(Media.open(images[0])).p_fake is not None  # and the next file goes on


@pytest.mark.slow
def test_no_logprobs_exit_4(recorded: dict[str, Any], images: list[Path]) -> None:
    bare = json.loads(json.dumps(recorded))
    bare["choices"][0]["logprobs"] = None
    with FaultServer(bare) as fs:
        res = scan("--backend", "server", "--url", fs.url, str(images[0]))
    assert res.returncode == 4
    assert "returned no logprobs" in res.stderr.decode()


@pytest.mark.slow
def test_jobs_bound_requests_in_flight_and_keep_order(recorded: dict[str, Any], images: list[Path],
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "eight"
    folder.mkdir()
    for i in range(8):
        shutil.copy(images[i % 4], folder / f"{7 - i}.png")  # names sort differently from copy order
    with FaultServer(recorded, delay=0.15) as fs:
        res = scan("--backend", "server", "--url", fs.url, "--top-logprobs", FULL, "--jobs", "3", str(folder))
    assert res.returncode == 0, res.stderr.decode()
    recs = jsonl_records(res.stdout)
    assert [Path(r["path"]).name for r in recs] == [f"{i}.png" for i in range(8)]
    assert fs.max_in_flight == 3  # bounded by --jobs, and reached: the requests overlapped


@pytest.mark.slow
def test_server_gone_mid_scan_json_document_is_complete_and_marked(recorded: dict[str, Any], images: list[Path],
                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "six"
    folder.mkdir()
    for i in range(6):
        shutil.copy(images[0], folder / f"{i}.png")
    out = tmp_path / "out.json"
    with FaultServer(recorded, vanish_after=1 + 3) as fs:  # the start-up check, then 3 files
        res = run_cli("scan", "--backend", "server", "--url", fs.url, "--top-logprobs", FULL, "--jobs", "1",
                      "--retries", "0", "--no-cache", "-f", "json", "-o", str(out), str(folder))
    assert res.returncode == 4, res.stderr.decode()
    doc = json.loads(out.read_text())
    assert doc["run"]["interrupted"] is True
    assert doc["run"]["error"]["code"] == "detector-unavailable"
    assert [Path(r["path"]).name for r in doc["results"]] == ["0.png", "1.png", "2.png"]
    from fakescope_cli.schema import validate_record

    for r in doc["results"]:
        validate_record(r)
    assert doc["run"]["counts"]["files"] == 3


@pytest.mark.slow
def test_api_key_sent_as_bearer_and_in_no_output(recorded: dict[str, Any], images: list[Path], tmp_path: Path) -> None:
    secret = "sk-live-DO-NOT-LEAK-8c1d2e"
    out = tmp_path / "r.json"
    with FaultServer(recorded) as fs:
        res = run_cli("scan", "--backend", "server", "--url", fs.url, "--top-logprobs", FULL, "--api-key-env",
                      "MY_SERVER_KEY", "--no-cache", "-f", "json", "-o", str(out), str(images[0]),
                      env={"MY_SERVER_KEY": secret})
        sent = [r["authorization"] for r in fs.requests]
    assert res.returncode == 0, res.stderr.decode()
    assert sent and all(a == f"Bearer {secret}" for a in sent)  # /v1/models and every completion
    for blob in (out.read_bytes(), res.stdout, res.stderr):
        assert secret.encode() not in blob
    doc = json.loads(out.read_text())
    assert doc["run"]["detector"]["api_key_env"] == "MY_SERVER_KEY"
    # A named variable that is not set is an error, not a silent anonymous request.
    res2 = run_cli("scan", "--backend", "server", "--url", "http://127.0.0.1:9", "--api-key-env", "UNSET_KEY_VAR_X",
                   str(images[0]))
    assert res2.returncode == 4 and b"UNSET_KEY_VAR_X" in res2.stderr


@pytest.mark.slow
def test_model_picked_or_checked_against_v1_models(recorded: dict[str, Any]) -> None:
    with FaultServer(recorded, models=["only-one"]) as fs:
        assert ServerDetector(None, fs.url).model == "only-one"
        with pytest.raises(DetectorUnavailable, match="does not serve 'other'.*only-one"):
            ServerDetector("other", fs.url)
    with FaultServer(recorded, models=["a", "b"]) as fs:
        with pytest.raises(DetectorUnavailable, match="needs --model NAME.*a, b"):
            ServerDetector(None, fs.url)


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_top_logprob_pooling_equals_the_logit_arithmetic() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(60)] + ["fake", " fake", "Fake", " Fake", "real", " real", "Real", " Real"]
    logits = rng.normal(0, 2, len(vocab))
    logprobs = logits - np.log(np.exp(logits).sum())
    top = list(zip(vocab, logprobs.tolist(), strict=True))
    s = score_top_logprobs(top, LABEL_WORDS)
    ref = score_label_logits(logits[None, 60:64], logits[None, 64:68])
    assert 1 / (1 + np.exp(s.z_real - s.z_fake)) == pytest.approx(float(ref.p_fake[0]), abs=1e-12)
    assert s.bounded is None and sorted(s.matched["fake"]) == sorted(vocab[60:64])


def test_top_logprob_matching_rules() -> None:
    # Raw SentencePiece / byte-level pieces count; a newline-prefixed or other-word token does not.
    s = score_top_logprobs([("\u2581fake", -0.5), ("\u0120Real", -1.0), ("\nfake", -0.1), ("faker", -0.2)],
                           LABEL_WORDS)
    assert s.matched == {"fake": ["\u2581fake"], "real": ["\u0120Real"]}
    assert s.z_fake == pytest.approx(-0.5) and s.z_real == pytest.approx(-1.0)
    # One label missing: bounded by the smallest listed logprob, p_fake conservative.
    b = score_top_logprobs([("fake", -0.1), ("the", -3.0)], LABEL_WORDS)
    assert b.bounded == "real" and b.z_real == pytest.approx(-3.0 + np.log(4))
    with pytest.raises(InputError, match="label words not in top_logprobs"):
        score_top_logprobs([("the", -0.1), ("a", -2.0)], LABEL_WORDS)


def test_url_forms() -> None:
    for u in ("http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/chat/completions"):
        assert split_url(u) == ("http", "h", 8000, "/v1")
    assert split_url("https://api.example.org/openai/v1") == ("https", "api.example.org", 443, "/openai/v1")
    # A malformed --url is the command line's fault (exit 2), not an unreachable server.
    with pytest.raises(UsageError, match="credentials"):
        split_url("http://user:secret@h:8000")
    with pytest.raises(UsageError, match="http"):
        split_url("h:8000")
    for bad_port in ("http://h:99999", "http://h:0", "http://h:port"):
        with pytest.raises(UsageError, match="bad port"):
            split_url(bad_port)


@pytest.mark.slow
def test_concurrent_scan_uses_the_cache_in_order(recorded: dict[str, Any], images: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "cached"
    folder.mkdir()
    for i in range(6):
        shutil.copy(images[i % 4], folder / f"{i}.png")
    cache = str(tmp_path / "cache")
    common = ("scan", "-f", "jsonl", "--backend", "server", "--top-logprobs", FULL, "--jobs", "3", "--cache-dir", cache)
    with FaultServer(recorded) as fs:
        first = run_cli(*common, "--url", fs.url, str(folder / "1.png"), str(folder / "4.png"))
        assert first.returncode == 0, first.stderr.decode()
        before = len(fs.chat_requests())
        res = run_cli(*common, "--url", fs.url, str(folder))
        fresh = len(fs.chat_requests()) - before
    assert res.returncode == 0, res.stderr.decode()
    recs = jsonl_records(res.stdout)
    assert [Path(r["path"]).name for r in recs] == [f"{i}.png" for i in range(6)]
    assert [bool(r["custody"].get("from_cache")) for r in recs] == [False, True, False, False, True, False]
    assert fresh == 1 + 4  # the start-up check, then only the files not cached


@pytest.mark.slow
def test_sigterm_stops_a_scan_waiting_on_slow_answers(recorded: dict[str, Any], images: list[Path],
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    for i in range(6):
        shutil.copy(images[0], folder / f"{i}.png")
    with FaultServer(recorded, script=[(200, {}, None, 0.0)], delay=30.0) as fs:  # start-up check answered at once
        proc = subprocess.Popen(
            [sys.executable, "-m", "fakescope_cli", "scan", "--backend", "server", "--url", fs.url, "--top-logprobs",
             FULL, "--jobs", "3", "--no-cache", "-f", "jsonl", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert wait_for(lambda: fs.in_flight == 3, timeout=60)
            proc.terminate()
            proc.communicate(timeout=20)
            unanswered = fs.in_flight  # the server still holds all three: none was waited for (30 s each)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130
    assert unanswered == 3


# ---------------------------------------------------------------------------------------------
# User-study regressions


@pytest.mark.slow
def test_command_line_mistakes_exit_2_not_4(images: list[Path]) -> None:
    """What is wrong on the command line is a usage error (2), whatever the backend; nothing is sent."""
    port = free_port()  # nothing listens: a check that reached the network would say 4
    ok_url = f"http://127.0.0.1:{port}"
    cases = [
        (("--url", "ftp://x"), "http:// or https://"),
        (("--url", "http://127.0.0.1:99999"), "bad port"),
        (("--url", f"http://u:p4ss-w0rd@127.0.0.1:{port}"), "must not carry credentials"),
        (("--url", ok_url, "--api-key-env", "BAD-NAME"), "environment variable name"),
        (("--url", ok_url, "--top-logprobs", "200000"), "between 1 and 100000"),
        (("--url", ok_url, "--quantize", "4bit"), "--quantize is for --backend hf"),
        (("--url", ok_url, "--mmproj", "m.gguf"), "--mmproj is for local backends"),
    ]
    for args, needle in cases:
        res = scan("--backend", "server", *args, str(images[0]))
        err = res.stderr.decode()
        assert res.returncode == 2, (args, err)
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert "at least 1" not in err and "p4ss-w0rd" not in err  # the real bound; no secret echoed
    with pytest.raises(UsageError, match="between 1 and 100000"):
        ServerDetector("tiny", ok_url, top_logprobs=200_000)
    # Still 4: the server, not the command line, is at fault.
    res = scan("--backend", "server", "--url", ok_url, str(images[0]))
    assert res.returncode == 4 and "cannot reach the server" in res.stderr.decode()


def _with_label_logprobs(recorded: dict[str, Any], fake: float, real: float) -> dict[str, Any]:
    """The recorded answer with every label-word token's logprob set (a server may send -Infinity)."""
    answer = json.loads(json.dumps(recorded))
    for entry in answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
        word = entry["token"].lstrip(" \u2581\u0120").lower()
        if word in ("fake", "real"):
            entry["logprob"] = fake if word == "fake" else real
    return answer


def _strict_json(line: bytes) -> dict[str, Any]:
    def refuse(const: str) -> Any:
        raise AssertionError(f"{const} in a record: not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.slow
def test_minus_infinity_for_both_labels_is_a_file_error_not_nan(recorded: dict[str, Any], images: list[Path]) -> None:
    inf = float("inf")
    with FaultServer(_with_label_logprobs(recorded, -inf, -inf)) as fs:
        det = ServerDetector("tiny", fs.url, top_logprobs=int(FULL), attributes=True)
        with pytest.raises(InputError, match="-inf") as info:
            det.analyze(Media.open(images[0]))
        assert info.value.code == "detector-error"
        res = scan("--backend", "server", "--url", fs.url, "--top-logprobs", FULL, str(images[0]))
    err = res.stderr.decode()
    assert res.returncode == 3, err
    rec = _strict_json(res.stdout.strip())
    assert (rec["detector"] or {}).get("p_fake") is None
    assert [e["code"] for e in rec["errors"]] == ["detector-error"] and "-inf" in rec["errors"][0]["message"]
    assert "RuntimeWarning" not in err and "Traceback" not in err
    # One label at -inf is a probability of exactly 0 for it: a finite score, no warning, valid JSON.
    with FaultServer(_with_label_logprobs(recorded, -inf, -0.5)) as fs:
        res = scan("--backend", "server", "--url", fs.url, "--top-logprobs", FULL, str(images[0]))
    err = res.stderr.decode()
    assert res.returncode == 0, err
    rec = _strict_json(res.stdout.strip())
    assert rec["detector"]["p_fake"] == 0.0 and rec["detector"]["raw"]["z_fake"] is None
    assert "RuntimeWarning" not in err


def test_one_behaviour_with_hf_and_gguf(recorded: dict[str, Any], images: list[Path]) -> None:
    """tests/test_multimodal_base.py's two rules, for the server: a rejected request fails its file
    only, and a file without a usable score is never explained (no generation request is sent)."""
    with FaultServer(recorded) as fs:
        det = ServerDetector("tiny", fs.url, retries=0, top_logprobs=int(FULL))
        fs.script = [(400, {}, {"error": {"message": "image too large"}}, 0.0)]
        out = det.analyze_batch([Media.open(images[0]), Media.open(images[1])])
        assert isinstance(out[0], InputError) and "image too large" in out[0].message
        assert out[1].p_fake == pytest.approx(det.analyze(Media.open(images[1])).p_fake)  # type: ignore[union-attr]
    inf = float("inf")
    with FaultServer(_with_label_logprobs(recorded, -inf, -inf)) as fs:
        det = ServerDetector("tiny", fs.url, top_logprobs=int(FULL), explain=True)
        before = len(fs.chat_requests())
        with pytest.raises(InputError, match="-inf"):
            det.analyze(Media.open(images[0]))
        sent = [json.loads(r["body"]) for r in fs.chat_requests()[before:]]
        assert len(sent) == 1 and sent[0]["max_tokens"] == 1  # the detection probe only
    with FaultServer(recorded) as fs:
        det = ServerDetector("tiny", fs.url, top_logprobs=int(FULL), explain=True, max_tokens=5)
        before = len(fs.chat_requests())
        res = det.analyze(Media.open(images[0]))
        sent = [json.loads(r["body"]) for r in fs.chat_requests()[before:]]
        assert [b["max_tokens"] for b in sent] == [1, 5] and "explanation_verdict" in res.raw
