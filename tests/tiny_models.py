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


def build_qwen2vl(out: Path, *, hidden: int = 32, image_px: int = 112, version: str = "2") -> Path:
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


def build_qwen3vl(out: Path, *, hidden: int = 32, image_px: int = 128) -> Path:
    """A random Qwen3-VL checkpoint (16-px patches, deepstack features) in `out`, saved as parts."""
    import torch
    from transformers import Qwen2VLImageProcessorPil, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    out.mkdir(parents=True, exist_ok=True)
    tok = _save_tokenizer(out, "qwen")
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    head_dim = hidden // 4
    text = dict(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=head_dim, vocab_size=len(tok), max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_interleaved": True,
                         "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8]},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )
    vision = dict(depth=2, hidden_size=hidden, intermediate_size=2 * hidden, num_heads=4, patch_size=16,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden, num_position_embeddings=64,
                  deepstack_visual_indexes=[0])
    cfg = Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False)
    torch.manual_seed(SEED)
    model = Qwen3VLForConditionalGeneration(cfg).eval()
    _spread_weights(model)
    model.save_pretrained(out, safe_serialization=True)
    px = image_px * image_px
    improc = Qwen2VLImageProcessorPil(
        min_pixels=px // 4, max_pixels=px, patch_size=16, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": px // 4, "longest_edge": px}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
    )
    improc.save_pretrained(out)
    tok.chat_template = QWEN2VL_TEMPLATE
    tok.save_pretrained(out)
    (out / "chat_template.jinja").write_text(QWEN2VL_TEMPLATE, encoding="utf-8")
    return out


def build_llava_next(out: Path, *, hidden: int = 64, image_size: int = 32, patch: int = 8) -> Path:
    """A random LLaVA-NeXT checkpoint (any-resolution tiles of a CLIP tower, image newline) in `out`."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    tok = _save_tokenizer(out, "llava")
    text = LlamaConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=1024, rms_norm_eps=1e-5,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    vision = CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        image_size=image_size, patch_size=patch, projection_dim=hidden, layer_norm_eps=1e-5,
    )
    pinpoints = [[image_size, 2 * image_size], [2 * image_size, image_size], [2 * image_size, 2 * image_size]]
    cfg = LlavaNextConfig(
        vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
        projector_hidden_act="gelu", vision_feature_select_strategy="default", vision_feature_layer=-2,
        image_grid_pinpoints=pinpoints, tie_word_embeddings=False,
    )
    torch.manual_seed(SEED)
    model = LlavaNextForConditionalGeneration(cfg).eval()
    _spread_weights(model)
    model.save_pretrained(out, safe_serialization=True)
    improc = LlavaNextImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
        image_grid_pinpoints=pinpoints,
    )
    proc = LlavaNextProcessor(image_processor=improc, tokenizer=tok, patch_size=patch,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1,
                              chat_template=LLAVA_TEMPLATE)
    proc.save_pretrained(out)
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
        merger = None if proj is not None else inner.visual.merger
        last = proj.linear_2 if proj is not None else (merger.mlp[-1] if hasattr(merger, "mlp") else merger.linear_fc2)
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
    elif kind == "qwen3vl":
        build_qwen3vl(out)
    elif kind == "llava_next":
        build_llava_next(out)
    else:
        raise ValueError(kind)
    marker.write_text("ok", encoding="utf-8")
    return out


def session_models_dir(tmp_path_factory: Any) -> Path:
    """One folder per pytest session (shared by the hf and gguf test modules)."""
    return tmp_path_factory.getbasetemp() / "tiny-models"


# ---------------------------------------------------------------------------------------------
# GGUF conversion of the tiny checkpoints, written with the `gguf` package.
# Tensor names, metadata keys and the Q/K permutation follow llama.cpp's own converters
# (convert_hf_to_gguf.py: LlamaModel.permute, Qwen2VLVisionModel; the LLaVA-1.5 projector layout of
# tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py) and the loader in tools/mtmd/clip.cpp.
# Everything is written as F32 so that the hf and gguf backends compute the same function.


def _llama_permute(w: Any, n_head: int) -> Any:
    """HF's rotate-half q/k layout -> the interleaved layout llama.cpp's 'llama' arch expects."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_vocab(writer: Any, model_dir: Path, vocab_size: int, chat_template: str) -> None:
    import gguf
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    reverse = {i: t for t, i in tok.get_vocab().items()}
    added = tok.get_added_vocab()
    tokens, types = [], []
    for i in range(vocab_size):
        t = reverse.get(i)
        if t is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(t)
            types.append(gguf.TokenType.CONTROL if t in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # the GPT-2 regex, as the HF ByteLevel pre-tokenizer uses
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    tj = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    writer.add_token_merges(merges)
    if tok.bos_token_id is not None:
        writer.add_bos_token_id(tok.bos_token_id)
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_pad_token_id(tok.pad_token_id)
    writer.add_add_bos_token(False)  # the HF tokenizer adds none either
    writer.add_chat_template(chat_template)


def convert_to_gguf(model_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write `model.gguf` (text model) and `mmproj.gguf` (vision tower + projector) for a tiny
    LLaVA or Qwen2-VL checkpoint built above. Returns their paths."""
    import gguf
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    tcfg, vcfg = cfg["text_config"], cfg["vision_config"]
    mtype = cfg["model_type"]
    # The runtime parameter names (transformers renames the on-disk ones on load).
    import transformers

    cls = {"llava": transformers.LlavaForConditionalGeneration, "qwen2_vl": transformers.Qwen2VLForConditionalGeneration,
           "qwen2_5_vl": transformers.Qwen2_5_VLForConditionalGeneration}[mtype]
    sd = {k: v.detach().float().numpy() for k, v in cls.from_pretrained(model_dir).state_dict().items()}
    template = (model_dir / "chat_template.jinja").read_text(encoding="utf-8")
    n_layer, hidden = tcfg["num_hidden_layers"], tcfg["hidden_size"]
    n_head, n_kv = tcfg["num_attention_heads"], tcfg["num_key_value_heads"]

    # ---- text model
    arch = "llama" if mtype == "llava" else "qwen2vl"
    text_path = out_dir / "model.gguf"
    w = gguf.GGUFWriter(str(text_path), arch)
    w.add_name(f"tiny-{mtype}")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(tcfg["max_position_embeddings"])
    w.add_embedding_length(hidden)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(tcfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(tcfg["rms_norm_eps"])
    rope = tcfg.get("rope_parameters") or {}
    w.add_rope_freq_base(float(rope.get("rope_theta", tcfg.get("rope_theta", 10000.0))))
    w.add_rope_dimension_count(hidden // n_head)
    if "mrope_section" in rope:
        w.add_rope_dimension_sections((list(rope["mrope_section"]) + [0, 0, 0, 0])[:4])
    w.add_vocab_size(tcfg["vocab_size"])
    _write_vocab(w, model_dir, tcfg["vocab_size"], template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2VL, n_layer)
    for key, arr in sd.items():
        if key.startswith("model.language_model."):
            hf = "model." + key[len("model.language_model."):]
        elif key == "lm_head.weight":
            hf = key
        else:
            continue
        if arch == "llama" and hf.endswith("q_proj.weight"):
            arr = _llama_permute(arr, n_head)
        elif arch == "llama" and hf.endswith("k_proj.weight"):
            arr = _llama_permute(arr, n_kv)
        name = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise KeyError(f"no GGUF name for {hf}")
        w.add_tensor(name, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # ---- multimodal projector
    mm_path = out_dir / "mmproj.gguf"
    m = gguf.GGUFWriter(str(mm_path), "clip")
    m.add_type(gguf.GGUFType.MMPROJ)
    m.add_file_type(gguf.LlamaFileType.ALL_F32)
    m.add_bool("clip.has_vision_encoder", True)
    m.add_uint32("clip.vision.projection_dim", hidden)
    pre = json.loads((model_dir / ("processor_config.json" if mtype == "llava" else "preprocessor_config.json"))
                     .read_text(encoding="utf-8"))
    pre = pre.get("image_processor", pre)
    m.add_array("clip.vision.image_mean", [float(x) for x in pre["image_mean"]])
    m.add_array("clip.vision.image_std", [float(x) for x in pre["image_std"]])
    tensors: list[tuple[str, Any]] = []
    if mtype == "llava":
        m.add_string("clip.projector_type", "mlp")
        m.add_uint32("clip.vision.image_size", vcfg["image_size"])
        m.add_uint32("clip.vision.patch_size", vcfg["patch_size"])
        m.add_uint32("clip.vision.embedding_length", vcfg["hidden_size"])
        m.add_uint32("clip.vision.feed_forward_length", vcfg["intermediate_size"])
        # All layers are written; llama.cpp's llava graph stops one short of the last, which is
        # HF's vision_feature_layer = -2. The post-layernorm is not used by LLaVA and not written.
        m.add_uint32("clip.vision.block_count", vcfg["num_hidden_layers"])
        m.add_uint32("clip.vision.attention.head_count", vcfg["num_attention_heads"])
        m.add_float32("clip.vision.attention.layer_norm_epsilon", vcfg["layer_norm_eps"])
        m.add_bool("clip.use_gelu", vcfg.get("hidden_act", "quick_gelu") == "gelu")
        p = "model.vision_tower."
        tensors += [("v.class_embd", sd[p + "embeddings.class_embedding"]),
                    ("v.patch_embd.weight", sd[p + "embeddings.patch_embedding.weight"]),
                    ("v.position_embd.weight", sd[p + "embeddings.position_embedding.weight"]),
                    ("v.pre_ln.weight", sd[p + "pre_layrnorm.weight"]), ("v.pre_ln.bias", sd[p + "pre_layrnorm.bias"])]
        parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.out_proj": "attn_out", "layer_norm1": "ln1", "layer_norm2": "ln2",
                 "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down"}
        for i in range(vcfg["num_hidden_layers"]):
            for hfp, gp in parts.items():
                for s in ("weight", "bias"):
                    tensors.append((f"v.blk.{i}.{gp}.{s}", sd[f"{p}encoder.layers.{i}.{hfp}.{s}"]))
        for i, j in ((1, 0), (2, 2)):
            for s in ("weight", "bias"):
                tensors.append((f"mm.{j}.{s}", sd[f"model.multi_modal_projector.linear_{i}.{s}"]))
    else:
        qwen25 = mtype == "qwen2_5_vl"
        embed = vcfg["hidden_size"] if qwen25 else vcfg["embed_dim"]
        ff = vcfg["intermediate_size"] if qwen25 else int(vcfg["embed_dim"] * vcfg["mlp_ratio"])
        m.add_string("clip.projector_type", "qwen2.5vl_merger" if qwen25 else "qwen2vl_merger")
        m.add_uint32("clip.vision.image_size", 560)
        m.add_uint32("clip.vision.patch_size", vcfg["patch_size"])
        m.add_uint32("clip.vision.embedding_length", embed)
        m.add_uint32("clip.vision.feed_forward_length", ff)
        m.add_uint32("clip.vision.block_count", vcfg["depth"])
        m.add_uint32("clip.vision.attention.head_count", vcfg["num_heads"])
        m.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
        m.add_uint32("clip.vision.spatial_merge_size", vcfg["spatial_merge_size"])
        # The same pixel bounds as the HF image processor, so both see the same resized image.
        m.add_uint32("clip.vision.image_min_pixels", int(pre["size"]["shortest_edge"]))
        m.add_uint32("clip.vision.image_max_pixels", int(pre["size"]["longest_edge"]))
        if qwen25:
            m.add_bool("clip.use_silu", True)
            m.add_uint32("clip.vision.n_wa_pattern", vcfg["fullatt_block_indexes"][0] + 1)
        conv = sd["model.visual.patch_embed.proj.weight"]  # (out, 3, t=2, p, p): two 2-D convolutions
        tensors += [("v.patch_embd.weight", conv[:, :, 0]), ("v.patch_embd.weight.1", conv[:, :, 1])]
        for i in range(vcfg["depth"]):
            b = f"model.visual.blocks.{i}."
            for s in ("weight", "bias"):
                q, k, v = np.split(sd[f"{b}attn.qkv.{s}"], 3, axis=0)
                tensors += [(f"v.blk.{i}.attn_q.{s}", q), (f"v.blk.{i}.attn_k.{s}", k), (f"v.blk.{i}.attn_v.{s}", v),
                            (f"v.blk.{i}.attn_out.{s}", sd[f"{b}attn.proj.{s}"])]
                if qwen25:
                    tensors += [(f"v.blk.{i}.ffn_gate.{s}", sd[f"{b}mlp.gate_proj.{s}"]),
                                (f"v.blk.{i}.ffn_up.{s}", sd[f"{b}mlp.up_proj.{s}"]),
                                (f"v.blk.{i}.ffn_down.{s}", sd[f"{b}mlp.down_proj.{s}"])]
                else:
                    tensors += [(f"v.blk.{i}.ffn_up.{s}", sd[f"{b}mlp.fc1.{s}"]),
                                (f"v.blk.{i}.ffn_down.{s}", sd[f"{b}mlp.fc2.{s}"])]
            for n_hf, n_g in (("norm1", "ln1"), ("norm2", "ln2")):
                tensors.append((f"v.blk.{i}.{n_g}.weight", sd[f"{b}{n_hf}.weight"]))
                if f"{b}{n_hf}.bias" in sd:
                    tensors.append((f"v.blk.{i}.{n_g}.bias", sd[f"{b}{n_hf}.bias"]))
        mg = "model.visual.merger."
        tensors.append(("v.post_ln.weight", sd[mg + "ln_q.weight"]))
        if mg + "ln_q.bias" in sd:
            tensors.append(("v.post_ln.bias", sd[mg + "ln_q.bias"]))
        for j in (0, 2):
            for s in ("weight", "bias"):
                tensors.append((f"mm.{j}.{s}", sd[f"{mg}mlp.{j}.{s}"]))
    for name, arr in tensors:
        m.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))
    m.write_header_to_file()
    m.write_kv_data_to_file()
    m.write_tensors_to_file()
    m.close()
    return text_path, mm_path


def cached_gguf(base: Path, kind: str) -> tuple[Path, Path]:
    """The GGUF conversion of `cached_build(base, kind)`, made once per session."""
    out = base / f"{kind}-gguf"
    marker = out / ".complete"
    if not marker.is_file():
        paths = convert_to_gguf(cached_build(base, kind), out)
        marker.write_text("ok", encoding="utf-8")
        return paths
    return out / "model.gguf", out / "mmproj.gguf"


def make_square_image(out: Path, size: int, seed: int = 7) -> Path:
    """A noise image exactly the model's input size: no resampling on either backend."""
    import numpy as np
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(out)
    return out
