"""The hf backend on real, tiny, randomly initialised LLaVA / Qwen2-VL / Qwen2.5-VL checkpoints
built by the tests (tests/tiny_models.py).

Outputs are random, so the tests check the arithmetic against an independent computation of the
logits (the model's own forward pass on inputs built the way its processor builds them), the KV
prefix reuse against full passes, determinism, batching equivalence, quantisation and errors.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from fakescope_cli.detectors.hf import HFDetector  # noqa: E402
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError  # noqa: E402
from fakescope_cli.media import Media  # noqa: E402
from fakescope_cli.models_inspect import inspect_model  # noqa: E402
from fakescope_cli.protocol import ASPECTS, ATTRIBUTE_TEMPLATE, DETECT_PROMPT  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.tiny_models import cached_build, make_images, session_models_dir, write_manifest  # noqa: E402

FAKE_TOKENS = ["fake", "Ġfake", "Fake", "ĠFake"]  # byte-level BPE spelling of the label variants
REAL_TOKENS = ["real", "Ġreal", "Real", "ĠReal"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = session_models_dir(tmp_path_factory)
    return {k: cached_build(base, k) for k in ("llava", "qwen2vl", "qwen25vl")}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_images(tmp_path_factory.mktemp("hf-images"), n=4)


@pytest.fixture(scope="module")
def medias(images: list[Path]) -> list[Media]:
    return [Media.open(p) for p in images]


@pytest.fixture(scope="module")
def detectors(models: dict[str, Path]) -> dict[str, HFDetector]:
    return {k: HFDetector(v, device="cpu", batch_size=4) for k, v in models.items()}


# ------------------------------------------------------------------------- independent reference


def _reference_p(model_dir: Path, image_path: Path, prompt: str) -> tuple[float, float, float]:
    """p_fake computed without fakescope: the model's own forward pass (full logits), inputs built
    by string expansion of the image placeholder as the processors do, torch's logsumexp."""
    from PIL import Image
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    cfg = json.loads((model_dir / "config.json").read_text())
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    improc = AutoImageProcessor.from_pretrained(model_dir)
    template = (model_dir / "chat_template.jinja").read_text()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True)
    img = Image.open(image_path).convert("RGB")
    pix = improc(images=[img], return_tensors="pt")
    if cfg["model_type"] == "llava":
        model = transformers.LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
        patch = cfg["vision_config"]["patch_size"]
        n = (pix["pixel_values"].shape[-1] // patch) ** 2
        ids = tok(text.replace("<image>", "<image>" * n), return_tensors="pt")["input_ids"]
        kw: dict[str, Any] = {"pixel_values": pix["pixel_values"]}
    else:
        cls = (transformers.Qwen2VLForConditionalGeneration if cfg["model_type"] == "qwen2_vl"
               else transformers.Qwen2_5_VLForConditionalGeneration)
        model = cls.from_pretrained(model_dir, dtype=torch.float32)
        n = int(pix["image_grid_thw"][0].prod()) // 4
        ids = tok(text.replace("<|image_pad|>", "<|image_pad|>" * n), return_tensors="pt")["input_ids"]
        kw = {"pixel_values": pix["pixel_values"], "image_grid_thw": pix["image_grid_thw"],
              "mm_token_type_ids": (ids == cfg["image_token_id"]).int()}
    with torch.no_grad():
        logits = model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids), **kw).logits[0, -1].double()
    logits = torch.log_softmax(logits, 0)  # z is a log-probability: normalised over the vocabulary
    f = logits[[tok.convert_tokens_to_ids(t) for t in FAKE_TOKENS]]
    r = logits[[tok.convert_tokens_to_ids(t) for t in REAL_TOKENS]]
    zf, zr = torch.logsumexp(f, 0), torch.logsumexp(r, 0)
    p = torch.softmax(torch.stack([zf, zr]), 0)[0]
    return float(p), float(zf), float(zr)


# ------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("kind", ["llava", "qwen2vl", "qwen25vl"])
def test_p_fake_matches_independent_logits(kind: str, detectors: dict[str, HFDetector], models: dict[str, Path],
                                           images: list[Path], medias: list[Media]) -> None:
    det = detectors[kind]
    det.attributes = False
    res = det.analyze(medias[1])
    p, zf, zr = _reference_p(models[kind], images[1], DETECT_PROMPT)
    assert res.p_fake == pytest.approx(p, abs=1e-5)
    assert res.raw["z_fake"] == pytest.approx(zf, abs=1e-4)
    assert res.raw["z_real"] == pytest.approx(zr, abs=1e-4)
    assert res.raw["p_fake"] == res.p_fake == res.raw["p_fake_uncalibrated"]
    assert res.raw["label_ids"]["fake"] == [det.tokenizer.convert_tokens_to_ids(t) for t in FAKE_TOKENS]
    assert res.attributes is None and res.explanation is None


@pytest.mark.parametrize("kind", ["llava", "qwen2vl"])
def test_attributes_share_the_prefix_and_match_full_passes(kind: str, detectors: dict[str, HFDetector],
                                                           models: dict[str, Path], images: list[Path],
                                                           medias: list[Media]) -> None:
    det = detectors[kind]
    det.attributes = False
    plain = [r.p_fake for r in det.analyze_batch(medias)]
    det.attributes = True
    before = dict(det.stats)
    res = det.analyze_batch(medias)
    det.attributes = False
    # One vision pass per image, one prefix prefill and one packed probe pass for the whole batch:
    # not 15 full passes.
    assert det.stats["vision_images"] - before["vision_images"] == len(medias)
    assert det.stats["vision_calls"] - before["vision_calls"] == 1
    assert det.stats["forward_passes"] - before["forward_passes"] == 2
    for r, p in zip(res, plain, strict=True):
        assert list(r.attributes) == list(ASPECTS)
        assert r.p_fake == pytest.approx(p, abs=1e-5)
    # Two aspects checked against an independent full pass each.
    for aspect in ("texture", "overall tone"):
        want, _, _ = _reference_p(models[kind], images[2], ATTRIBUTE_TEMPLATE.format(aspect=aspect))
        assert res[2].attributes[aspect] == pytest.approx(want, abs=1e-5)
    # The aspects are different prompts, so their scores differ.
    assert len({round(v, 9) for v in res[0].attributes.values()}) > 1


# ------------------------------------------------------------------------- batching, determinism


@pytest.mark.parametrize("kind", ["llava", "qwen2vl"])
@pytest.mark.parametrize("attributes", [False, True])
def test_batch_of_four_equals_four_single_runs(kind: str, attributes: bool, detectors: dict[str, HFDetector],
                                              medias: list[Media]) -> None:
    det = detectors[kind]
    det.attributes = attributes
    batch = det.analyze_batch(medias)
    single = [det.analyze(m) for m in medias]
    again = det.analyze_batch(medias)
    det.attributes = False
    for b, s, a in zip(batch, single, again, strict=True):
        assert b.p_fake == pytest.approx(s.p_fake, abs=1e-5)
        assert b.p_fake == a.p_fake  # deterministic: no sampling
        if attributes:
            for k in ASPECTS:
                assert b.attributes[k] == pytest.approx(s.attributes[k], abs=1e-5)
    # Different images give different scores (the images do reach the model).
    assert len({round(b.p_fake, 7) for b in batch}) == len(batch)


def test_bad_image_in_a_batch_is_its_own_error(detectors: dict[str, HFDetector], medias: list[Media],
                                               tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    det = detectors["llava"]
    det.attributes = False
    out = det.analyze_batch([medias[0], Media.open(bad), medias[1]])
    assert isinstance(out[1], InputError)
    assert out[0].p_fake == pytest.approx(det.analyze(medias[0]).p_fake, abs=1e-6)
    with pytest.raises(InputError):
        det.analyze(Media.open(bad))


def test_auto_class_path_agrees(models: dict[str, Path], detectors: dict[str, HFDetector], medias: list[Media]) -> None:
    """Other architectures go through AutoProcessor with full passes; on LLaVA both paths agree."""
    auto = HFDetector(models["llava"], device="cpu", family="auto", attributes=True, batch_size=8)
    det = detectors["llava"]
    det.attributes = True
    a, b = auto.analyze(medias[0]), det.analyze(medias[0])
    det.attributes = False
    assert a.p_fake == pytest.approx(b.p_fake, abs=1e-5)
    assert a.attributes["symmetry"] == pytest.approx(b.attributes["symmetry"], abs=1e-5)


# ------------------------------------------------------------------------- quantisation


@pytest.mark.parametrize("quantize", ["4bit", "8bit"])
def test_quantized_on_cpu_within_tolerance(quantize: str, models: dict[str, Path], detectors: dict[str, HFDetector],
                                           medias: list[Media]) -> None:
    pytest.importorskip("bitsandbytes")
    q = HFDetector(models["llava"], device="cpu", quantize=quantize, batch_size=4)
    linear = q.model.model.language_model.layers[0].self_attn.q_proj
    assert type(linear).__name__ == ("Linear4bit" if quantize == "4bit" else "Linear8bitLt")
    if quantize == "4bit":
        assert linear.weight.quant_type == "nf4" and linear.weight.quant_state.nested  # double quantisation
    det = detectors["llava"]
    det.attributes = False
    ref = [r.p_fake for r in det.analyze_batch(medias)]
    got = [r.p_fake for r in q.analyze_batch(medias)]
    assert got != ref  # really quantised
    for g, r in zip(got, ref, strict=True):
        assert g == pytest.approx(r, abs=0.02)
    assert q.version.endswith(f":{quantize}")


# ------------------------------------------------------------------------- manifest


def test_manifest_changes_prompts_labels_and_calibration(models: dict[str, Path], tmp_path: Path,
                                                        images: list[Path], medias: list[Media]) -> None:
    ckpt = tmp_path / "with-manifest"
    shutil.copytree(models["llava"], ckpt)
    write_manifest(ckpt, {
        "prompts": {"detect": "Is this image fake or real?"},
        "label_words": {"fake": ["Fake", " Fake", "Fakest"], "real": ["Real", " Real"]},
        "attributes": ["texture", "hands"],
        "calibration": {"method": "platt", "a": 2.0, "b": 0.5},
    })
    det = HFDetector(ckpt, device="cpu", attributes=True)
    res = det.analyze(medias[0])
    tok = det.tokenizer
    assert res.raw["label_ids"]["fake"] == [tok.convert_tokens_to_ids("Fake"), tok.convert_tokens_to_ids("ĠFake")]
    assert res.raw["label_ids"]["fake_sequences"] == [tok.encode("Fakest", add_special_tokens=False)]  # scored whole
    assert list(res.attributes) == ["texture", "hands"]
    margin = res.raw["z_fake"] - res.raw["z_real"]
    import math

    assert res.p_fake == pytest.approx(1 / (1 + math.exp(-(2.0 * margin + 0.5))), abs=1e-9)
    assert res.raw["p_fake_uncalibrated"] == pytest.approx(1 / (1 + math.exp(-margin)), abs=1e-9)
    assert res.raw["protocol"].startswith("fakescope-protocol/1+manifest.")
    info = inspect_model(ckpt)
    assert info["protocol"]["detect_prompt"] == "Is this image fake or real?"
    assert info["manifest"].endswith("fakescope.json")


def test_manifest_label_word_of_several_tokens_is_scored_not_refused(models: dict[str, Path], tmp_path: Path) -> None:
    ckpt = tmp_path / "long-labels"
    shutil.copytree(models["llava"], ckpt)
    write_manifest(ckpt, {"label_words": {"fake": ["Counterfeitish"], "real": ["Real"]}})
    det = HFDetector(ckpt, device="cpu")
    assert det.labels.fake == (tuple(det.tokenizer.encode("Counterfeitish", add_special_tokens=False)),)
    assert len(det.labels.fake[0]) > 1 and det.labels.continuations == det.labels.fake


# ------------------------------------------------------------------------- generation


def test_ask_streams_and_explain_is_greedy(models: dict[str, Path], medias: list[Media]) -> None:
    det = HFDetector(models["llava"], device="cpu", explain=True, max_tokens=6)
    chunks: list[str] = []
    answer = det.ask(medias[0], "What is in this image?", stream_callback=chunks.append, max_tokens=6)
    assert answer == "".join(chunks)
    assert det.ask(medias[0], "What is in this image?", max_tokens=6) == answer  # greedy, deterministic
    res = det.analyze(medias[0])
    assert res.explanation == det.ask(medias[0], det.protocol.explain_prompt, max_tokens=6)
    assert "explanation_verdict" in res.raw
    assert det.advise(medias[0], max_tokens=6) == det.ask(medias[0], det.protocol.advise_prompt, max_tokens=6)
    with pytest.raises(InputError):
        det.ask(medias[0], "   ")


def test_ask_qwen2vl(detectors: dict[str, HFDetector], medias: list[Media]) -> None:
    det = detectors["qwen2vl"]
    chunks: list[str] = []
    ans = det.ask(medias[1], "Describe the lighting.", stream_callback=chunks.append, max_tokens=5)
    assert ans == "".join(chunks)
    ids = det.tokenizer.encode(ans, add_special_tokens=False)
    assert len(ids) <= 5 + 2  # max_tokens respected (byte-level re-encoding may merge or split a little)


# ------------------------------------------------------------------------- files and errors


def test_weights_sha256_and_inspect(models: dict[str, Path], detectors: dict[str, HFDetector],
                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    weights = models["qwen2vl"] / "model.safetensors"
    want = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert detectors["qwen2vl"].weights_sha256 == want
    info = inspect_model(models["qwen2vl"])
    assert info["weights_sha256"] == want and info["weights_format"] == "safetensors"
    assert info["architecture"]["class"] == "Qwen2VLForConditionalGeneration"
    assert info["architecture"]["family"] == "qwen2_vl"
    assert info["chat_template"] == "checkpoint"
    assert info["quantization"].startswith("none")
    assert info["protocol"]["attribute_prompts"]["texture"] == ATTRIBUTE_TEMPLATE.format(aspect="texture")
    assert (tmp_path / "cache" / "weights-sha256.json").is_file()  # remembered for next time
    json.dumps(info)


def _copy_without_weights(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, dst / f.name)
    return dst


def test_pickle_weights_refused_unless_trusted(models: dict[str, Path], tmp_path: Path,
                                               medias: list[Media]) -> None:
    ckpt = _copy_without_weights(models["llava"], tmp_path / "pickled")
    model = transformers.LlavaForConditionalGeneration.from_pretrained(models["llava"])
    torch.save(model.state_dict(), ckpt / "pytorch_model.bin")
    with pytest.raises(DetectorUnavailable, match="--trust-pickle"):
        HFDetector(ckpt, device="cpu")
    det = HFDetector(ckpt, device="cpu", trust_pickle=True)
    assert det.weights_format == "pickle"
    ref = HFDetector(models["llava"], device="cpu").analyze(medias[0]).p_fake
    assert det.analyze(medias[0]).p_fake == pytest.approx(ref, abs=1e-6)


def test_clear_errors_for_wrong_inputs(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DetectorUnavailable, match="no such model folder"):
        HFDetector(tmp_path / "missing")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16)
    with pytest.raises(DetectorUnavailable, match="--backend gguf"):
        HFDetector(gguf)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DetectorUnavailable, match="config.json"):
        HFDetector(empty)
    noweights = _copy_without_weights(models["llava"], tmp_path / "noweights")
    with pytest.raises(DetectorUnavailable, match="no weights"):
        HFDetector(noweights)
    with pytest.raises(UsageError, match="--quantize"):  # a bad option value: the command line's fault
        HFDetector(models["llava"], quantize="3bit")
    if not torch.cuda.is_available():
        with pytest.raises(DetectorUnavailable, match="CUDA"):
            HFDetector(models["llava"], device="cuda")
    custom = tmp_path / "custom"
    shutil.copytree(models["llava"], custom)
    cfg = json.loads((custom / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForImageTextToText": "modeling_evil.EvilModel"}
    (custom / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DetectorUnavailable, match="--trust-remote-code"):
        HFDetector(custom)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(models["llava"], corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(DetectorUnavailable, match="cannot load"):
        HFDetector(corrupt)


# ------------------------------------------------------------------------- user-study regressions


def _one_line_error(res: Any, code: int, needle: str) -> None:
    err = res.stderr.decode()
    assert res.returncode == code, err
    assert "Traceback" not in err and needle in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line, naming the problem


@pytest.mark.slow
def test_malformed_config_json_is_one_line_exit_4(models: dict[str, Path], images: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "badcfg"
    shutil.copytree(models["llava"], bad)
    (bad / "config.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(DetectorUnavailable, match=r"config\.json: not valid JSON"):
        HFDetector(bad, device="cpu")
    with pytest.raises(DetectorUnavailable, match=r"config\.json: not valid JSON"):
        inspect_model(bad)
    labelled = tmp_path / "set"
    for label, img in (("real", images[0]), ("fake", images[1])):
        (labelled / label).mkdir(parents=True)
        shutil.copy(img, labelled / label / img.name)
    for args in (("scan", "-b", "hf", "-m", str(bad), str(images[0])),
                 ("ask", "-b", "hf", "-m", str(bad), str(images[0]), "what is this?"),
                 ("eval", str(labelled), "-b", "hf", "-m", str(bad)),
                 ("models", "inspect", str(bad))):
        _one_line_error(run_cli(*args), 4, "config.json: not valid JSON")
    (bad / "config.json").write_text("[1, 2]", encoding="utf-8")  # JSON, but not a config
    with pytest.raises(DetectorUnavailable, match="not a JSON object"):
        HFDetector(bad, device="cpu")


@pytest.mark.slow
def test_foreign_option_with_hf_is_a_usage_error(models: dict[str, Path], images: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--mmproj is for --backend gguf"):
        HFDetector(models["llava"], mmproj=tmp_path / "mmproj.gguf")
    with pytest.raises(UsageError, match="--device"):
        HFDetector(models["llava"], device="tpu")
    with pytest.raises(UsageError, match="--batch-size"):
        HFDetector(models["llava"], batch_size=0)
    res = run_cli("scan", "-b", "hf", "-m", str(models["llava"]), "--mmproj", str(tmp_path / "m.gguf"), str(images[0]))
    _one_line_error(res, 2, "--mmproj is for --backend gguf")


@pytest.mark.slow
def test_inspect_checks_the_weights_pin_as_scan_does(models: dict[str, Path], images: list[Path],
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    ckpt = tmp_path / "pinned"
    shutil.copytree(models["llava"], ckpt)
    good = inspect_model(ckpt)["weights_sha256"]
    assert inspect_model(ckpt)["weights_pin"].startswith("none")
    write_manifest(ckpt, {"schema": "fakescope-manifest/1", "weights_sha256": "0" * 64})
    with pytest.raises(DetectorUnavailable, match="weights pin fails.*" + "0" * 64 + f".*{good}"):
        inspect_model(ckpt)
    assert inspect_model(ckpt, hash_weights=False)["weights_pin"].startswith("not checked")
    # The CLI: inspect refuses what scan refuses, with the same exit code and both digests.
    inspected = run_cli("models", "inspect", str(ckpt))
    _one_line_error(inspected, 4, good)
    assert "weights pin fails" in inspected.stderr.decode()
    scanned = run_cli("scan", "-b", "hf", "-m", str(ckpt), str(images[0]))
    assert scanned.returncode == 4 and good in scanned.stderr.decode()
    # Pinned to what inspect printed: inspect says the pin holds, and scan loads the checkpoint.
    write_manifest(ckpt, {"schema": "fakescope-manifest/1", "weights_sha256": good})
    assert inspect_model(ckpt)["weights_pin"].startswith("ok")
    assert HFDetector(ckpt, device="cpu").weights_sha256 == good


def _nan_head_copy(src: Path, dst: Path) -> Path:
    """A copy of a checkpoint whose output head is NaN: every logit, so every label logit, is NaN
    (what a broken conversion or an fp16 overflow gives)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    head = next(k for k in tensors if k.endswith("lm_head.weight"))
    tensors[head] = torch.full_like(tensors[head], float("nan"))
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


@pytest.mark.slow
def test_nan_logits_are_a_per_file_detector_error(models: dict[str, Path], medias: list[Media], images: list[Path],
                                                  tmp_path: Path) -> None:
    ckpt = _nan_head_copy(models["llava"], tmp_path / "nanhead")
    det = HFDetector(ckpt, device="cpu", attributes=True)
    with pytest.raises(InputError, match="NaN or infinite") as info:
        det.analyze(medias[0])
    assert info.value.code == "detector-error"
    batch = det.analyze_batch(medias[:2])
    assert all(isinstance(r, InputError) and r.code == "detector-error" for r in batch)
    res = run_cli("scan", "-b", "hf", "-m", str(ckpt), "-f", "jsonl", "--no-cache", str(images[0]))
    assert res.returncode == 3, res.stderr.decode()
    rec = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} in the record"))
    assert [e["code"] for e in rec["errors"]] == ["detector-error"]
    assert "RuntimeWarning" not in res.stderr.decode()
