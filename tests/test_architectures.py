"""Issue #19 point 6: which multimodal layouts the hf backend reads, and the one it refuses with how
to convert it (original-LLaVA checkpoints such as FakeShield's)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytest.importorskip("transformers")


def _original_llava(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A llava-hf folder whose config.json is rewritten the way the original LLaVA repository writes it."""
    from tests.tiny_models import cached_build, session_models_dir

    folder = tmp_path / "original-llava"
    shutil.copytree(cached_build(session_models_dir(tmp_path_factory), "llava"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update({"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
                "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_projector_type": "mlp2x_gelu"})
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_original_llava_format_is_refused_with_how_to_convert(tmp_path: Path,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = _original_llava(tmp_path, tmp_path_factory)
    for args in (("models", "inspect", str(folder)), ("scan", str(folder / "config.json"), "--backend", "hf",
                                                       "--model", str(folder))):
        proc = run_cli(*args)
        err = proc.stderr.decode()
        assert proc.returncode == 4, err
        assert "original-LLaVA-format" in err and "convert_llava_weights_to_hf" in err
        assert "Traceback" not in err


def _reference_p(model_dir: Path, image: Path, prompt: str) -> float:
    """p_fake from the model's own forward pass over the whole prompt: the image placeholder expanded as
    the model's processor does (LLaVA-NeXT: its processor itself; Qwen3-VL: the grid over merge²)."""
    import torch
    import transformers
    from PIL import Image
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    cfg = json.loads((model_dir / "config.json").read_text())
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    template = (model_dir / "chat_template.jinja").read_text()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True)
    img = Image.open(image).convert("RGB")
    if cfg["model_type"] == "llava_next":
        proc = transformers.AutoProcessor.from_pretrained(model_dir)
        kw = dict(proc(images=[img], text=[text], return_tensors="pt"))
        model = transformers.LlavaNextForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    else:
        pix = AutoImageProcessor.from_pretrained(model_dir)(images=[img], return_tensors="pt")
        n = int(pix["image_grid_thw"][0].prod()) // 4
        ids = tok(text.replace("<|image_pad|>", "<|image_pad|>" * n), return_tensors="pt")["input_ids"]
        kw = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pix["pixel_values"],
              "image_grid_thw": pix["image_grid_thw"], "mm_token_type_ids": (ids == cfg["image_token_id"]).int()}
        model = transformers.Qwen3VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        logits = model.eval()(**kw).logits[0, -1].double()
    logp = torch.log_softmax(logits, 0)
    zf = torch.logsumexp(logp[[tok.convert_tokens_to_ids(t) for t in ("fake", "Ġfake", "Fake", "ĠFake")]], 0)
    zr = torch.logsumexp(logp[[tok.convert_tokens_to_ids(t) for t in ("real", "Ġreal", "Real", "ĠReal")]], 0)
    return float(torch.sigmoid(zf - zr))


@pytest.mark.parametrize("kind", ["llava_next", "qwen3vl"])
def test_llava_next_and_qwen3_vl_through_the_fast_path(kind: str, tmp_path: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """Read with the same token reading as LLaVA-1.5 and Qwen2-VL: the placeholder expanded to the
    image's token count, the aspects packed after one shared prefix; equal to the model's own pass."""
    from fakescope_cli.detectors.hf import HFDetector
    from fakescope_cli.media import Media
    from fakescope_cli.protocol import DETECT_PROMPT
    from tests.tiny_models import cached_build, make_images, session_models_dir

    model_dir = cached_build(session_models_dir(tmp_path_factory), kind)
    images = make_images(tmp_path, n=2, size=(70, 40))  # not square: LLaVA-NeXT picks a 2-tile grid
    det = HFDetector(model_dir, device="cpu", attributes=True, batch_size=2)
    assert det.family == ("llava_next" if kind == "llava_next" else "qwen2_vl")
    results = det.analyze_batch([Media.open(p) for p in images])
    for path, res in zip(images, results, strict=True):
        assert not isinstance(res, Exception), res
        assert res.p_fake == pytest.approx(_reference_p(model_dir, path, DETECT_PROMPT), abs=1e-4)
        aspect, prompt = det.protocol.attributes[2]
        assert res.attributes[aspect] == pytest.approx(_reference_p(model_dir, path, prompt), abs=1e-4)
    assert det.stats["forward_passes"] == 2  # the shared prefix, then every probe in one pass
    assert det.ask(Media.open(images[0]), "What is in this image?", max_tokens=4) is not None
