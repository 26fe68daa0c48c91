"""Reading the label where a checkpoint answers (issue 19, point 1, in part): the manifest's
`answer_prefix` forced into the answer before the label word is read, and `prompt_format: raw` (the
image placeholder then the prompt, no chat template). Built once on the multimodal base, so hf and
gguf agree on the same weights; both are checked against the model's own forward pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("llama_cpp")

from fakescope_cli.detectors.gguf import GGUFDetector  # noqa: E402
from fakescope_cli.detectors.hf import HFDetector  # noqa: E402
from fakescope_cli.errors import DetectorUnavailable, InputError  # noqa: E402
from fakescope_cli.media import Media  # noqa: E402
from fakescope_cli.protocol import ASPECTS, DETECT_PROMPT, ManifestError, protocol_from_manifest  # noqa: E402
from tests.tiny_models import (  # noqa: E402
    cached_build,
    cached_gguf,
    make_square_image,
    session_models_dir,
    write_manifest,
)

FAKE_TOKENS = ["fake", "Ġfake", "Fake", "ĠFake"]
REAL_TOKENS = ["real", "Ġreal", "Real", "ĠReal"]
PREFIX = "This is a"
RAW_PROMPT = "Does the image looks real/fake?"


@pytest.fixture(scope="module")
def llava(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = session_models_dir(tmp_path_factory)
    return (cached_build(base, "llava"), *cached_gguf(base, "llava"))


@pytest.fixture(scope="module")
def square(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_square_image(tmp_path_factory.mktemp("answer-format") / "sq32.png", 32)


def _with_manifest(llava: tuple[Path, Path, Path], folder: Path, manifest: dict) -> tuple[Path, Path, Path]:
    """Copies of the checkpoint and of its GGUF pair, each with `manifest` beside the weights."""
    hf_dir = folder / "hf"
    shutil.copytree(llava[0], hf_dir)
    write_manifest(hf_dir, manifest)
    gg = folder / "gguf"
    gg.mkdir()
    shutil.copy(llava[1], gg / "model.gguf")
    shutil.copy(llava[2], gg / "mmproj.gguf")
    write_manifest(gg, manifest)
    return hf_dir, gg / "model.gguf", gg / "mmproj.gguf"


def _reference_p(model_dir: Path, image: Path, text_of: object) -> float:
    """p_fake from the model's own full forward pass: `text_of(tokenizer)` gives the prompt text with
    one <image>, expanded here to the vision tower's patch count as the llava processor does."""
    from PIL import Image
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    cfg = json.loads((model_dir / "config.json").read_text())
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    pix = AutoImageProcessor.from_pretrained(model_dir)(images=[Image.open(image).convert("RGB")], return_tensors="pt")
    n = (pix["pixel_values"].shape[-1] // cfg["vision_config"]["patch_size"]) ** 2
    text = text_of(tok)  # type: ignore[operator]
    ids = tok(text.replace("<image>", "<image>" * n), return_tensors="pt")["input_ids"]
    model = transformers.LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pix["pixel_values"]).logits
    last = logits[0, -1].double()
    zf = torch.logsumexp(last[[tok.convert_tokens_to_ids(t) for t in FAKE_TOKENS]], 0)
    zr = torch.logsumexp(last[[tok.convert_tokens_to_ids(t) for t in REAL_TOKENS]], 0)
    return float(torch.sigmoid(zf - zr))


def _chat_text(model_dir: Path, prompt: str, prefix: str):
    template = (model_dir / "chat_template.jinja").read_text()

    def text_of(tok):
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True) + prefix
    return text_of


def test_answer_prefix_is_read_after_the_prefix_on_hf_and_gguf(llava, square, tmp_path):
    hf_dir, model, mmproj = _with_manifest(llava, tmp_path, {"answer_prefix": PREFIX})
    media = Media.open(square)
    h = HFDetector(hf_dir, device="cpu", attributes=True)
    g = GGUFDetector(model, mmproj, n_threads=1, attributes=True)
    a, b = h.analyze(media), g.analyze(media)
    expected = _reference_p(hf_dir, square, _chat_text(hf_dir, DETECT_PROMPT, PREFIX))
    assert a.p_fake == pytest.approx(expected, abs=1e-4)
    assert b.p_fake == pytest.approx(a.p_fake, abs=5e-3)
    # The aspects share the image prefix and carry the answer prefix too.
    aspect = ASPECTS[3]
    expected_aspect = _reference_p(hf_dir, square, _chat_text(hf_dir, h.protocol.attributes[3][1], PREFIX))
    assert a.attributes[aspect] == pytest.approx(expected_aspect, abs=1e-4)
    assert b.attributes[aspect] == pytest.approx(a.attributes[aspect], abs=5e-3)
    # Without the prefix the label is read elsewhere: another number.
    plain = HFDetector(llava[0], device="cpu").analyze(media).p_fake
    assert abs(plain - a.p_fake) > 1e-3
    # Free questions are not prefixed: ask sees the plain template.
    assert h.render("Describe it.") == HFDetector(llava[0], device="cpu").render("Describe it.")


def test_raw_prompt_format_skips_the_chat_template_on_hf_and_gguf(llava, square, tmp_path):
    manifest = {"prompt_format": "raw", "prompts": {"detect": RAW_PROMPT}, "answer_prefix": PREFIX}
    hf_dir, model, mmproj = _with_manifest(llava, tmp_path, manifest)
    media = Media.open(square)
    h = HFDetector(hf_dir, device="cpu")
    assert h.render(RAW_PROMPT, probe=True) == f"<image>{RAW_PROMPT}{PREFIX}"
    a = h.analyze(media)
    assert a.p_fake == pytest.approx(_reference_p(hf_dir, square, lambda tok: f"<image>{RAW_PROMPT}{PREFIX}"), abs=1e-4)
    b = GGUFDetector(model, mmproj, n_threads=1).analyze(media)
    assert b.p_fake == pytest.approx(a.p_fake, abs=5e-3)


def test_manifest_fields_are_validated():
    p = protocol_from_manifest({"answer_prefix": PREFIX, "prompt_format": "raw"})
    assert (p.answer_prefix, p.prompt_format) == (PREFIX, "raw") and p.describe()["answer_prefix"] == PREFIX
    assert protocol_from_manifest({}).prompt_format == "chat"
    for bad, field in (({"answer_prefix": ""}, "answer_prefix"), ({"answer_prefix": 3}, "answer_prefix"),
                       ({"prompt_format": "jinja"}, "prompt_format"),
                       ({"prompt_format": "raw", "chat_template": "{{ x }}"}, "chat_template")):
        with pytest.raises(ManifestError, match=field):
            protocol_from_manifest(bad)


def _word_logprob(model_dir: Path, image: Path, text: str, word: str) -> float:
    """log P(word | text) from the model's own forward pass over text + word: the sum, over the word's
    tokens, of each token's log-softmax at the position before it."""
    from PIL import Image
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    cfg = json.loads((model_dir / "config.json").read_text())
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    pix = AutoImageProcessor.from_pretrained(model_dir)(images=[Image.open(image).convert("RGB")], return_tensors="pt")
    n = (pix["pixel_values"].shape[-1] // cfg["vision_config"]["patch_size"]) ** 2
    prompt = tok(text.replace("<image>", "<image>" * n))["input_ids"]
    word_ids = tok.encode(word, add_special_tokens=False)
    ids = torch.tensor([prompt + word_ids])
    model = transformers.LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pix["pixel_values"]).logits
    logp = torch.log_softmax(logits[0].double(), -1)
    return float(sum(logp[len(prompt) - 1 + j, t] for j, t in enumerate(word_ids)))


THREE_CLASSES = {"fake": ["full synthetic", " tampered"], "real": [" real"]}


def test_multi_token_label_words_and_three_classes_are_scored_exactly(llava, square, tmp_path):
    """label_words with three classes, two on the fake side and several tokens each: every word is
    scored as the sum of its tokens' log-probabilities (the model's own forward pass over the prompt
    and the word); hf (single pass and packed with the aspects) and gguf agree."""
    manifest = {"answer_prefix": PREFIX, "label_words": THREE_CLASSES, "attributes": ["texture"]}
    hf_dir, model, mmproj = _with_manifest(llava, tmp_path, manifest)
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    assert len(tok.encode("full synthetic", add_special_tokens=False)) > 1  # really several tokens
    media = Media.open(square)
    h = HFDetector(hf_dir, device="cpu")
    res = h.analyze(media)
    text_of = _chat_text(hf_dir, DETECT_PROMPT, PREFIX)(tok)
    lp = {w: _word_logprob(hf_dir, square, text_of, w) for words in THREE_CLASSES.values() for w in words}
    zf = float(torch.logsumexp(torch.tensor([lp["full synthetic"], lp[" tampered"]]), 0))
    assert res.raw["z_fake"] == pytest.approx(zf, abs=1e-4)  # normalised: log-probabilities, not logits
    assert res.raw["z_real"] == pytest.approx(lp[" real"], abs=1e-4)
    assert res.p_fake == pytest.approx(1 / (1 + np.exp(lp[" real"] - zf)), abs=1e-5)
    assert res.raw["label_ids"]["fake_sequences"]  # the multi-token words are named in the record
    # The packed path (detection + an aspect, one pass after the shared prefix) gives the same score.
    packed_det = HFDetector(hf_dir, device="cpu", attributes=True)
    packed = packed_det.analyze(media)
    assert packed_det.stats["forward_passes"] == 2  # still one prefill, then every segment in one pass
    assert packed.p_fake == pytest.approx(res.p_fake, abs=1e-5)
    aspect_text = _chat_text(hf_dir, h.protocol.attributes[0][1], PREFIX)(tok)
    alp = {w: _word_logprob(hf_dir, square, aspect_text, w) for words in THREE_CLASSES.values() for w in words}
    azf = float(torch.logsumexp(torch.tensor([alp["full synthetic"], alp[" tampered"]]), 0))
    assert packed.attributes["texture"] == pytest.approx(1 / (1 + np.exp(alp[" real"] - azf)), abs=1e-5)
    gg = GGUFDetector(model, mmproj, n_threads=1, attributes=True)
    g = gg.analyze(media)
    assert g.p_fake == pytest.approx(res.p_fake, abs=5e-3)
    assert g.attributes["texture"] == pytest.approx(packed.attributes["texture"], abs=5e-3)
    # Segments too long for one llama.cpp batch run one by one from the same prefix: the same scores.
    gg.llm.n_batch = 4
    one_by_one = gg.analyze(media)
    assert one_by_one.p_fake == pytest.approx(g.p_fake, abs=1e-4)
    assert one_by_one.attributes["texture"] == pytest.approx(g.attributes["texture"], abs=1e-4)


def test_manifest_label_words_are_validated():
    p = protocol_from_manifest({"label_words": THREE_CLASSES})
    assert p.label_words["fake"] == ("full synthetic", " tampered")
    for bad in ({"fake": ["x"]}, {"fake": ["x"], "real": ["y"], "other": ["z"]}, {"fake": [], "real": ["y"]},
                {"fake": ["   "], "real": ["y"]}, {"fake": ["x"], "real": ["x"]}):
        with pytest.raises(ManifestError, match="label_words"):
            protocol_from_manifest({"label_words": bad})


def test_the_server_backend_refuses_what_it_cannot_honour(tmp_path):
    from fakescope_cli.detectors.server import ServerDetector
    from tests.server_harness import FaultServer

    answer = {"choices": [{"message": {"content": "fake"}, "logprobs": {"content": [
        {"token": "fake", "logprob": -0.1, "top_logprobs": [{"token": "fake", "logprob": -0.1}]}]}}]}
    with FaultServer(answer) as fs:
        for manifest, why in (({"prompt_format": "raw"}, "prompt_format raw"),
                              ({"label_words": THREE_CLASSES}, "several words")):
            with pytest.raises(DetectorUnavailable, match=why):
                ServerDetector("tiny", fs.url, manifest=str(write_manifest(tmp_path, manifest)))


def test_server_reads_the_label_after_the_prefix_or_marker_the_model_writes(llava, square, tmp_path):
    """On the real llama-cpp-python server: a greedy answer with top_logprobs, the label read at the
    position right after the answer prefix (the model must open with it) or after the marker (its
    reasoning kept). The tiny model writes noise, so prefix, marker and label words are taken from its
    own greedy answer; the gguf backend, forcing the same prefix, gives the same p_fake."""
    from fakescope_cli.detectors.server import ServerDetector, _norm_token, score_top_logprobs
    from tests.server_harness import LlamaServer, chat

    media = Media.open(square)
    with LlamaServer(llava[1], llava[2], tmp_path / "server.log") as server:
        plain = ServerDetector("tiny", server.url)
        body = {"model": "tiny", "messages": plain._messages(plain.prepare_image(media), DETECT_PROMPT),
                "max_tokens": 16, "temperature": 0, "logprobs": True, "top_logprobs": plain.top_logprobs}
        tokens = chat(server.url, body)["choices"][0]["logprobs"]["content"]
        text = "".join(t["token"] for t in tokens)
        # The label position: a token with text after a token with text (the tiny model also writes
        # partial UTF-8 pieces, empty strings that leave the boundary ambiguous).
        k = next(i for i in range(2, len(tokens)) if tokens[i]["token"].strip() and tokens[i - 1]["token"])
        prefix = "".join(t["token"] for t in tokens[:k]).lstrip()
        top = [(e["token"], e["logprob"]) for e in tokens[k]["top_logprobs"]]
        words = list(dict.fromkeys(w for w in (_norm_token(t) for t, _ in top) if w and len(w.split()) == 1))[:2]
        label_words = {"fake": [words[0]], "real": [words[1]]}
        expected = score_top_logprobs(top, label_words)

        for sub in ("prefix", "marker", "never"):
            (tmp_path / sub).mkdir()
        det = ServerDetector("tiny", server.url, manifest=str(write_manifest(
            tmp_path / "prefix", {"answer_prefix": prefix, "label_words": label_words})))
        res = det.analyze(media)
        assert res.raw["z_fake"] == pytest.approx(expected.z_fake) and res.raw["z_real"] == pytest.approx(expected.z_real)
        assert res.raw["label_read_from"] == tokens[k]["token"]
        gg = tmp_path / "gguf"
        gg.mkdir()
        shutil.copy(llava[1], gg / "model.gguf")
        shutil.copy(llava[2], gg / "mmproj.gguf")
        write_manifest(gg, {"answer_prefix": prefix, "label_words": label_words})
        local = GGUFDetector(gg / "model.gguf", gg / "mmproj.gguf", n_threads=1).analyze(media)
        assert res.p_fake == pytest.approx(local.p_fake, abs=0.02)

        marker = "".join(t["token"] for t in tokens[1:k])
        marked = ServerDetector("tiny", server.url, manifest=str(write_manifest(
            tmp_path / "marker", {"answer_marker": marker, "marker_max_tokens": 16, "label_words": label_words})))
        m = marked.analyze(media)
        assert m.p_fake == pytest.approx(res.p_fake, abs=1e-6)
        assert m.explanation == text[: text.find(marker)]
        # A prefix or marker the model does not write: that file is a detector-error, the scan goes on.
        for manifest in ({"answer_prefix": "<ANSWER>"}, {"answer_marker": "<CONCLUSION>", "marker_max_tokens": 4}):
            never = ServerDetector("tiny", server.url, manifest=str(write_manifest(tmp_path / "never", manifest)))
            out = never.analyze_batch([media])
            assert isinstance(out[0], InputError) and out[0].code == "detector-error"
            assert "<ANSWER>" in out[0].message or "<CONCLUSION>" in out[0].message


def _pair(backend: str, llava: tuple[Path, Path, Path], folder: Path, manifest: dict):
    hf_dir, model, mmproj = _with_manifest(llava, folder, manifest)
    if backend == "hf":
        return HFDetector(hf_dir, device="cpu")
    return GGUFDetector(model, mmproj, n_threads=1)


@pytest.mark.parametrize("backend", ["hf", "gguf"])
def test_marker_mode_reads_the_label_after_the_models_own_reasoning(backend, llava, square, tmp_path):
    """A reason-first model: the answer is generated until the marker, the label read right after it,
    and the reasoning kept as the explanation. The tiny random model reasons in noise, so the marker
    is taken from its own greedy answer; reading after it must equal forcing that text as a prefix."""
    media = Media.open(square)
    plain = _pair(backend, llava, tmp_path / "plain", {})
    text = plain.ask(media, DETECT_PROMPT, max_tokens=8)
    middle = next(i for i in range(len(text) // 2, len(text)) if text[i:i + 3].strip())
    marker = text[middle:middle + 3]
    at = text.find(marker)
    marked = _pair(backend, llava, tmp_path / "marked", {"answer_marker": marker, "marker_max_tokens": 8})
    forced = _pair(backend, llava, tmp_path / "forced", {"answer_prefix": text[: at + len(marker)]})
    res, expected = marked.analyze(media), forced.analyze(media).p_fake
    assert res.p_fake == pytest.approx(expected, abs=1e-9)
    assert abs(expected - plain.analyze(media).p_fake) > 1e-6  # where the label is read matters
    assert res.explanation == text[:at] and "explanation_verdict" in res.raw and text[:at] not in res.raw.values()
    # A marker the model never writes within the bound: that file has no score, and says why.
    never = _pair(backend, llava, tmp_path / "never", {"answer_marker": "<CONCLUSION>", "marker_max_tokens": 8})
    out = never.analyze_batch([media])
    assert isinstance(out[0], InputError) and out[0].code == "detector-error" and "<CONCLUSION>" in out[0].message
