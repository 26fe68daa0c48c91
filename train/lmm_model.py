"""The base checkpoint of `fakescope train lmm` with its LoRA adapter: which modules each --lora-targets
scope names per architecture, the 4-bit QLoRA load, and what was made trainable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope_cli.errors import UsageError

from .lmm_encode import Encoder

if TYPE_CHECKING:
    from .lmm import LmmConfig, Processes

SCOPES = ("text", "projector", "vision")


# Module-name patterns (re.fullmatch, the way peft reads a string target_modules) per family and
# scope. "(?:.*\.)?" tolerates the nesting differences between transformers versions and the
# peft wrapper's own prefix.
_TARGETS: dict[str, dict[str, str]] = {
    "llava": {
        "text": r"(?:.*\.)?language_model\.(?:model\.)?layers\.\d+\.(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)",
        "projector": r"(?:.*\.)?multi_modal_projector\.linear_[12]",
        "vision": r"(?:.*\.)?vision_tower\.(?:vision_model\.)?encoder\.layers\.\d+\.(?:self_attn\.(?:[qkv]|out)_proj|mlp\.fc[12])",
    },
    "qwen2_vl": {
        "text": r"(?:.*\.)?language_model\.(?:model\.)?layers\.\d+\.(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)",
        "projector": r"(?:.*\.)?visual\.merger\.mlp\.[02]",
        "vision": r"(?:.*\.)?visual\.blocks\.\d+\.(?:attn\.(?:qkv|proj)|mlp\.(?:fc[12]|gate_proj|up_proj|down_proj))",
    },
}
# Kept in 16/32-bit under QLoRA: small, and quantising them costs accuracy for no memory gain.
# Names as older transformers compare them (substrings) and as 5.x does (re.match from the start).
_QLORA_SKIP = ["vision_tower", "multi_modal_projector", "visual", "lm_head",
               r".*\.vision_tower", r".*\.multi_modal_projector", r".*\.visual"]


def lora_target_regex(family: str, spec: str) -> tuple[str, list[str]]:
    """(regex, scopes) for --lora-targets: a comma list of scopes, or a regex of module names."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if parts and all(p in SCOPES for p in parts):
        return "|".join(f"(?:{_TARGETS[family][p]})" for p in parts), parts
    try:
        re.compile(spec)
    except re.error as exc:
        raise UsageError(f"--lora-targets {spec!r}: neither scopes ({', '.join(SCOPES)}) nor a regex: {exc}") from None
    return spec, ["custom"]


@dataclass
class Network:
    """The base with its LoRA adapter, and what was made trainable."""

    model: Any
    cls: Any  # the transformers class, loaded again for the merge
    encoder: Encoder
    regex: str
    scopes: list[str]
    n_train: int
    n_all: int
    n_4bit: int


def train_dtype(torch: Any, name: str, on_cuda: bool) -> Any:
    if name == "auto":
        if on_cuda:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def load_network(cfg: LmmConfig, base: Path, model_type: str, family: str, procs: Processes) -> Network:
    """The base model (4-bit under QLoRA) with a LoRA adapter on the chosen modules."""
    import transformers
    from peft import LoraConfig, get_peft_model

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    cls = getattr(transformers, {"llava": "LlavaForConditionalGeneration"}.get(model_type) or
                  {"qwen2_vl": "Qwen2VLForConditionalGeneration",
                   "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}[model_type])
    load_kw: dict[str, Any] = {"dtype": procs.dtype, "local_files_only": True, "use_safetensors": True}
    if cfg.qlora:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UsageError("--qlora needs bitsandbytes: pip install 'fakescope[hf]'") from None
        load_kw["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=procs.dtype, llm_int8_skip_modules=_QLORA_SKIP,
        )
        load_kw["device_map"] = {"": procs.device}
    model = cls.from_pretrained(base, **load_kw)
    if not cfg.qlora:
        model.to(procs.device)
    n_4bit = sum(1 for m in model.modules() if type(m).__name__ == "Linear4bit")
    model.config.use_cache = False
    encoder = Encoder(base, family, model.config, cfg.max_length)
    if cfg.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    regex, scopes = lora_target_regex(family, cfg.lora_targets)
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=regex, bias="none")
    try:
        model = get_peft_model(model, lcfg)
    except ValueError as exc:
        raise UsageError(f"--lora-targets {cfg.lora_targets!r} matches no module of this model: {exc}") from None
    model.peft_config["default"].base_model_name_or_path = str(base.resolve())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    return Network(model, cls, encoder, regex, scopes, n_train, n_all, n_4bit)
