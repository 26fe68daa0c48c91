"""Build tiny, randomly initialised multimodal checkpoints on disk, for the hf and gguf tests.

Nothing is downloaded: the tokenizer is trained here (byte-level BPE, GPT-2 pre-tokenizer so that
llama.cpp tokenises it the same way), the configs are written here, and the weights are random
with a fixed seed. The models are tiny (hidden 32-64, 2 layers, 32-56 px images) so each forward
pass takes milliseconds on a shared CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SEED = 1234

# Words the tiny vocabulary must hold as single tokens, so that the label-word variants of the
# protocol resolve (and a few words so that prompts tokenise into something plausible).
_LABEL_WORDS = ["fake", "real", "Fake", "Real"]
_CORPUS_LINES = [
    "What is the authenticity of this image, fake or real?",
    "Judging only by its texture, is this image fake or real?",
    "this image is fake",
    "this image is real",
    "USER: ASSISTANT: system user assistant",
    "texture edge clarity light and shadow layout symmetry reflection perspective shape theme",
    "content deficiency distortion unrealistic details overall tone",
    "Explain what betrays the image and how to verify it further.",
    "You are a helpful assistant.",
]

LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{{ item['text'] }}{% endfor %}{% endif %}{{ ' ' }}"
    "{% elif message['role'] == 'user' %}USER: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{{ ' ' }}"
    "{% else %}ASSISTANT: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{{ item['text'] }}{% endfor %}{% endif %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

QWEN2VL_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAVA_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]


def _corpus() -> list[str]:
    lines = list(_CORPUS_LINES)
    for w in _LABEL_WORDS:
        lines.extend([w, f" {w}", f"{w} {w} {w}", f"is {w}."] * 20)
    return lines * 4


def build_tokenizer_object(specials: list[str], vocab_size: int = 400) -> Any:
    """A byte-level BPE `tokenizers.Tokenizer` (GPT-2 regex pre-tokenizer), trained on a few lines."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def _save_tokenizer(out: Path, kind: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    if kind == "llava":
        obj = build_tokenizer_object(LLAVA_SPECIALS)
        tok = PreTrainedTokenizerFast(
            tokenizer_object=obj, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
            extra_special_tokens={"image_token": "<image>"},
        )
    else:
        obj = build_tokenizer_object(QWEN_SPECIALS)
        tok = PreTrainedTokenizerFast(
            tokenizer_object=obj, eos_token="<|im_end|>", pad_token="<|endoftext|>",
            extra_special_tokens={"image_token": "<|image_pad|>", "vision_bos_token": "<|vision_start|>",
                                  "vision_eos_token": "<|vision_end|>"},
        )
    tok.padding_side = "left"
    return tok


def build_llava(out: Path, *, hidden: int = 64, image_size: int = 32, patch: int = 8,
                vocab_pad: int = 0) -> Path:
    """A random LLaVA-1.5-shaped checkpoint (CLIP tower + 2-layer MLP projector + Llama) in `out`."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    tok = _save_tokenizer(out, "llava")
    vocab = len(tok) + vocab_pad
    text = LlamaConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=vocab, max_position_embeddings=512, rms_norm_eps=1e-5,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    vision = CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        image_size=image_size, patch_size=patch, projection_dim=hidden, layer_norm_eps=1e-5,
    )
    n_img = (image_size // patch) ** 2
    cfg = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
        projector_hidden_act="gelu", vision_feature_select_strategy="default", vision_feature_layer=-2,
        image_seq_length=n_img, tie_word_embeddings=False,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(cfg).eval()
    _spread_weights(model)
    model.save_pretrained(out, safe_serialization=True)
    improc = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    )
    proc = LlavaProcessor(
        image_processor=improc, tokenizer=tok, patch_size=patch, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE,
    )
    proc.save_pretrained(out)
    return out


def build_qwen2vl(out: Path, *, hidden: int = 32, image_px: int = 56, version: str = "2") -> Path:
    """A random Qwen2-VL (or Qwen2.5-VL with version='2.5') checkpoint in `out`."""
    import torch
    from transformers import Qwen2VLImageProcessorPil

    out.mkdir(parents=True, exist_ok=True)
    tok = _save_tokenizer(out, "qwen")
    vocab = len(tok)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    head_dim = hidden // 4
    text = dict(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=vocab, max_position_embeddings=1024, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8]},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    common = dict(
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    if version == "2":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        vision = dict(depth=2, embed_dim=hidden, hidden_size=hidden, num_heads=4, mlp_ratio=2,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, **common)
        model_cls = Qwen2VLForConditionalGeneration
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        vision = dict(depth=2, hidden_size=hidden, out_hidden_size=hidden, intermediate_size=2 * hidden,
                      num_heads=4, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                      in_channels=3, window_size=56, fullatt_block_indexes=[1])
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
        model_cls = Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(SEED)
    model = model_cls(cfg).eval()
    _spread_weights(model)
    model.save_pretrained(out, safe_serialization=True)
    px = image_px * image_px
    improc = Qwen2VLImageProcessorPil(
        min_pixels=px // 4, max_pixels=px, patch_size=14, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": px // 4, "longest_edge": px},
    )
    # Saved as parts, the way Qwen2-VL checkpoints ship them: the processor class itself would also
    # want a video processor, which needs torchvision (not required by fakescope).
    improc.save_pretrained(out)
    tok.chat_template = QWEN2VL_TEMPLATE
    tok.save_pretrained(out)
    (out / "chat_template.jinja").write_text(QWEN2VL_TEMPLATE, encoding="utf-8")
    return out


def _spread_weights(model: Any) -> None:
    """Random init at std 0.02 gives near-uniform logits at this size; widen the output head so that
    p_fake differs clearly from 0.5 and between images (what the arithmetic tests need)."""
    import torch

    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head.normal_(0.0, 0.25)
        emb = model.get_input_embeddings().weight
        emb.normal_(0.0, 1.0)
        # Large image embeddings, so that different images give visibly different p_fake.
        inner = model.model
        proj = getattr(inner, "multi_modal_projector", None)
        last = proj.linear_2 if proj is not None else inner.visual.merger.mlp[-1]
        last.weight.normal_(0.0, 1.0)


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> Path:
    path = model_dir / "fakescope.json"
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def make_images(out: Path, n: int = 4, size: tuple[int, int] = (48, 40)) -> list[Path]:
    """Small PNG/JPEG images with different content (seeded noise and gradients)."""
    import numpy as np
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    paths = []
    for i in range(n):
        h, w = size[1] + 8 * i, size[0] + 4 * i
        base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
        noise = rng.normal(0, 40 + 20 * i, (h, w, 3))
        arr = np.clip(base * (i % 2) + noise + 30 * i, 0, 255).astype(np.uint8)
        ext = "png" if i % 2 == 0 else "jpg"
        p = out / f"img{i}.{ext}"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def cached_build(base: Path, kind: str) -> Path:
    """Build `kind` ('llava', 'qwen2vl', 'qwen25vl') once per pytest session under `base`.

    Several test modules ask for the same checkpoints; a marker file says a build completed, so an
    interrupted build is redone rather than half-used.
    """
    out = base / kind
    marker = out / ".complete"
    if marker.is_file():
        return out
    if out.exists():
        import shutil

        shutil.rmtree(out)
    if kind == "llava":
        build_llava(out)
    elif kind == "qwen2vl":
        build_qwen2vl(out)
    elif kind == "qwen25vl":
        build_qwen2vl(out, version="2.5")
    else:
        raise ValueError(kind)
    marker.write_text("ok", encoding="utf-8")
    return out


def session_models_dir(tmp_path_factory: Any) -> Path:
    """One folder per pytest session (shared by the hf and gguf test modules)."""
    return tmp_path_factory.getbasetemp() / "tiny-models"
