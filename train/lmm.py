"""`fakescope train lmm`: supervised fine-tuning of a multimodal checkpoint with LoRA or QLoRA.

Input: a transformers checkpoint folder (LLaVA-1.5 llava-hf layout, Qwen2-VL, Qwen2.5-VL) and an
instruction JSONL from `fakescope data build` (or LLaVA's own JSON). Output: a folder that
`fakescope scan --backend hf --model OUTPUT` loads directly:

    OUTPUT/model*.safetensors, config.json   the base with the LoRA weights merged in
    OUTPUT/tokenizer*, chat template, image processor config   copied from the base
    OUTPUT/adapter/                          the LoRA adapter alone (peft format)
    OUTPUT/fakescope.json                    the protocol manifest (prompts as trained)
    OUTPUT/training.json                     what was run: data hash, settings, steps, loss, ranks
    OUTPUT/checkpoints/step-NNNNNN/          resumable state every --save-every steps

The prompt side of every turn is tokenised exactly as the hf backend tokenises it at scan time
(same chat template, same image-token expansion), and only the assistant's tokens carry loss, so
the first answer token is trained at the very position where the protocol reads `fake` / `real`.

Distributed: started by `torchrun` or `accelerate launch` (RANK / WORLD_SIZE / LOCAL_RANK in the
environment) it runs DistributedDataParallel — NCCL on GPUs, gloo on CPUs — with a distributed
sampler; without them it is one process. No code or flag changes between the two.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fakescope_cli.errors import UsageError

from .common import LogFn, distributed_rank, load_recipe, make_logger, seed_everything

TRAIN_FORMAT = "fakescope-train-lmm/1"
IGNORE = -100
SCOPES = ("text", "projector", "vision")
# Top-level files of a base checkpoint that are NOT copied to the output (rewritten or weights).
_NOT_COPIED = re.compile(
    r".*\.(safetensors|bin|pt|pth|ckpt|gguf|msgpack|h5)$|.*\.index\.json$|^config\.json$|"
    r"^generation_config\.json$|^fakescope\.json$|^training\.json$|^adapter_.*|^\..*"
)


@dataclass
class LmmConfig:
    base: str = ""
    data: str = ""
    output: str = ""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "text,projector"  # scopes (text, projector, vision) or a module-name regex
    qlora: bool = False
    epochs: int = 1
    max_steps: int = 0  # > 0: stop after this many optimiser steps (epochs then only bound it)
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    seed: int = 0
    save_every: int = 0  # optimiser steps between checkpoints (0: none before the end)
    keep_checkpoints: int = 2
    resume: bool = False
    max_length: int = 4096
    gradient_checkpointing: bool = False
    device: str = "auto"  # auto, cpu, cuda
    dtype: str = "auto"  # training dtype of the frozen weights: auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16
    save_dtype: str = "auto"  # merged weights: auto (the base's own dtype), float32, bfloat16, float16
    num_workers: int = 0
    log_every: int = 10
    threads: int = 0  # torch CPU threads per process (0: cores / processes)
    progress: bool = True

    def check(self) -> None:
        for name in ("base", "data", "output"):
            if not getattr(self, name):
                raise UsageError(f"--{name} is required (on the command line or in the recipe)")
        positive = ("lora_r", "lora_alpha", "batch_size", "grad_accum", "epochs", "max_length", "log_every")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            raise UsageError("--lora-dropout and --warmup-ratio must be in [0, 1)")
        if self.lr <= 0:
            raise UsageError("--lr must be > 0")
        if min(self.max_steps, self.save_every, self.keep_checkpoints, self.num_workers, self.threads) < 0:
            raise UsageError("--max-steps, --save-every, --keep-checkpoints, --num-workers, --threads must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError("--device must be auto, cpu or cuda")
        for name in ("dtype", "save_dtype"):
            if getattr(self, name) not in ("auto", "float32", "bfloat16", "float16"):
                raise UsageError(f"--{name.replace('_', '-')} must be auto, float32, bfloat16 or float16")


def make_config(recipe: str | None = None, **overrides: Any) -> LmmConfig:
    """Defaults, then the recipe's [lmm] table, then the explicit options (None = not given)."""
    known = {f.name: f for f in fields(LmmConfig)}
    values: dict[str, Any] = {}
    if recipe:
        table = load_recipe(recipe, "lmm")
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise UsageError(f"{recipe}: unknown [lmm] keys {unknown}")
        values.update(table)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = LmmConfig()
    for k, v in values.items():
        default = getattr(cfg, k)
        try:
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise TypeError
            elif isinstance(default, (int, float)):
                v = type(default)(v)
                if isinstance(default, int) and not float(v).is_integer():
                    raise TypeError
            else:
                v = str(v)
        except (TypeError, ValueError):
            raise UsageError(f"{k.replace('_', '-')}: {v!r} is not a valid {type(default).__name__}") from None
        setattr(cfg, k, v)
    cfg.check()
    return cfg


# ---------------------------------------------------------------- architectures


def family_of(model_type: str) -> str:
    from fakescope_cli.checkpoints import KNOWN_ARCHITECTURES

    known = KNOWN_ARCHITECTURES.get(model_type)
    if known is None:
        supported = ", ".join(sorted(KNOWN_ARCHITECTURES))
        raise UsageError(f"model type {model_type!r}: fakescope train lmm supports {supported}")
    return known[0]


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


# ---------------------------------------------------------------- encoding


class Encoder:
    """Turns one conversation into token ids, labels and pixel tensors, tokenising prompts exactly as
    `fakescope_cli.detectors.hf.HFDetector` does (template, BOS rule, image-token expansion)."""

    def __init__(self, base: Path, family: str, config: Any, max_length: int):
        import transformers
        from transformers.models.auto.image_processing_auto import AutoImageProcessor

        from fakescope_cli.protocol import load_protocol

        self.family, self.config, self.max_length = family, config, max_length
        self.protocol = load_protocol(base)
        kw: dict[str, Any] = {"local_files_only": True}
        processor = None
        try:
            processor = transformers.AutoProcessor.from_pretrained(base, **kw)
        except Exception:  # noqa: BLE001 - e.g. Qwen2-VL's processor wants torchvision: load the parts
            processor = None
        tok = getattr(processor, "tokenizer", None) or transformers.AutoTokenizer.from_pretrained(base, **kw)
        improc = getattr(processor, "image_processor", None) or AutoImageProcessor.from_pretrained(base, **kw)
        template = (self.protocol.chat_template or getattr(processor, "chat_template", None)
                    or getattr(tok, "chat_template", None))
        if not template and (base / "chat_template.jinja").is_file():
            template = (base / "chat_template.jinja").read_text(encoding="utf-8")
        if not template:
            raise UsageError(f"{base}: no chat template (tokenizer_config.json / chat_template.jinja)")
        self.tokenizer, self.image_processor, self.template = tok, improc, template
        itok = getattr(config, "image_token_id", None)
        if itok is None:
            itok = getattr(config, "image_token_index", None)
        if itok is None:
            raise UsageError(f"{base}: config.json has no image_token_id")
        self.image_token_id = int(itok)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def _render(self, messages: list[dict[str, Any]], generation: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=generation)

    def _encode(self, text: str, first: bool) -> list[int]:
        bos = self.tokenizer.bos_token
        add = first and not (bos and text.startswith(bos))  # hf backend's rule: the template may write BOS
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    def messages(self, turns: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        if turns[0][0] != "system" and self.protocol.system_prompt:
            msgs.append({"role": "system", "content": [{"type": "text", "text": self.protocol.system_prompt}]})
        for role, text in turns:
            if role == "user" and "<image>" in text:
                clean = text.replace("<image>\n", "").replace("\n<image>", "").replace("<image>", "").strip()
                content = [{"type": "image"}, {"type": "text", "text": clean}]
            else:
                content = [{"type": "text", "text": text}]
            msgs.append({"role": role, "content": content})
        return msgs

    def text_ids(self, turns: tuple[tuple[str, str], ...]) -> tuple[list[int], list[int]]:
        """(ids, labels) with ONE image placeholder; labels are IGNORE outside assistant turns."""
        msgs = self.messages(turns)
        ids: list[int] = []
        labels: list[int] = []
        done = ""
        for j, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            prompt = self._render(msgs[:j], generation=True)
            full = self._render(msgs[: j + 1], generation=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise UsageError("the chat template does not render a conversation as prompt + answer; "
                                 "give a chat_template in fakescope.json that does")
            head = self._encode(prompt[len(done):], first=not ids)
            answer = self._encode(full[len(prompt):], first=False)
            ids += head + answer
            labels += [IGNORE] * len(head) + answer
            done = full
        if ids.count(self.image_token_id) != 1:
            raise UsageError(f"the rendered conversation holds {ids.count(self.image_token_id)} image "
                             "placeholders; exactly one is supported")
        return ids, labels

    def prepare_image(self, path: Path) -> Any:
        """The image as the hf backend will score it (the same sizing: what is trained is what is scanned)."""
        from fakescope_cli.detectors.multimodal import fit_image, pixel_limit
        from fakescope_cli.media import Media

        limit = pixel_limit(self.protocol.max_image_pixels, dynamic_resolution=self.family == "qwen2_vl")
        return fit_image(Media.open(path).rgb(), limit)

    def encode(self, conv: Any) -> dict[str, Any]:
        ids, labels = self.text_ids(conv.turns)
        out = self.image_processor(images=[self.prepare_image(conv.image)], return_tensors="pt")
        item: dict[str, Any] = {}
        if self.family == "qwen2_vl":
            grid = out["image_grid_thw"]
            merge = int(self.config.vision_config.spatial_merge_size)
            n = int(grid[0].prod()) // (merge * merge)
            item["pixel_values"], item["image_grid_thw"] = out["pixel_values"], grid
        else:
            pv = out["pixel_values"]
            patch = int(self.config.vision_config.patch_size)
            n = (pv.shape[-2] // patch) * (pv.shape[-1] // patch)
            if getattr(self.config, "vision_feature_select_strategy", "default") == "full":
                n += 1
            item["pixel_values"] = pv
        i = ids.index(self.image_token_id)
        ids = ids[:i] + [self.image_token_id] * n + ids[i + 1:]
        labels = labels[:i] + [IGNORE] * n + labels[i + 1:]
        if len(ids) > self.max_length:
            if i + n >= self.max_length:
                raise UsageError(f"{conv.image}: {n} image tokens do not fit --max-length {self.max_length}")
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        item["input_ids"], item["labels"] = ids, labels
        return item


def collate(batch: list[dict[str, Any]], pad_id: int, image_token_id: int, family: str) -> dict[str, Any]:
    """Right-padded ids/labels/mask, pixel tensors stacked (LLaVA) or concatenated (Qwen2-VL)."""
    import torch

    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), int(pad_id), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[r, :n] = torch.tensor(b["input_ids"])
        labels[r, :n] = torch.tensor(b["labels"])
        mask[r, :n] = 1
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if family == "qwen2_vl":
        out["pixel_values"] = torch.cat([b["pixel_values"] for b in batch], dim=0)
        out["image_grid_thw"] = torch.cat([b["image_grid_thw"] for b in batch], dim=0)
        out["mm_token_type_ids"] = (ids == image_token_id).int()
    else:
        out["pixel_values"] = torch.cat([b["pixel_values"] for b in batch], dim=0)
    return out


def sft_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Token-mean cross-entropy over assistant tokens only; logits are computed only at the
    positions that predict a supervised token (the vocabulary projection dominates memory)."""
    import torch
    import torch.nn.functional as F

    labels = batch.pop("labels")
    sup = labels[:, 1:] != IGNORE
    pos = sup.any(dim=0).nonzero().squeeze(1)
    if pos.numel() == 0:  # every answer truncated away: a zero loss that still touches the graph
        pos = torch.tensor([0], device=labels.device)
    out = model(**batch, logits_to_keep=pos, use_cache=False)
    logits = out.logits.float()
    target = labels[:, pos + 1]
    n = int((target != IGNORE).sum())
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE,
                           reduction="sum") / max(n, 1)
    return loss, n


# ---------------------------------------------------------------- checkpoints


def _checkpoints(output: Path) -> list[Path]:
    root = output / "checkpoints"
    found = [p for p in root.glob("step-*") if (p / "state.json").is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _trainable_state(model: Any) -> dict[str, Any]:
    return {n: p.detach().to("cpu").contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(output: Path, model: Any, opt: Any, sched: Any, state: dict[str, Any], keep: int) -> Path:
    """Rank 0 writes the trainable weights, optimiser, schedule and counters into a temporary folder
    renamed into place, so a crash mid-save never leaves a half checkpoint that --resume would pick."""
    import torch
    from safetensors.torch import save_file

    root = output / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state['global_step']:06d}"
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    torch.save(torch.get_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    if keep > 0:
        for old in _checkpoints(output)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(ckpt: Path, model: Any, opt: Any, sched: Any) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in saved]
    extra = [n for n in saved if n not in params]
    if missing or extra:
        raise UsageError(f"{ckpt}: does not match this model's trainable weights (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}); was it made with other --lora-targets or --lora-r?")
    with torch.no_grad():
        for n, t in saved.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))
    opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    sched.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    torch.set_rng_state(torch.load(ckpt / "rng.pt", weights_only=True))
    return json.loads((ckpt / "state.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the run


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _dtype(torch: Any, name: str, on_cuda: bool) -> Any:
    if name == "auto":
        if on_cuda:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def _base_dtype(torch: Any, cfg_raw: dict[str, Any]) -> Any:
    name = cfg_raw.get("dtype") or cfg_raw.get("torch_dtype") or (cfg_raw.get("text_config") or {}).get("dtype")
    return getattr(torch, name) if isinstance(name, str) and hasattr(torch, name) else torch.float32


def _lr_lambda(total: int, warmup: int) -> Any:
    def f(step: int) -> float:  # linear warm-up, then cosine decay to zero
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return f


def train_lmm(cfg: LmmConfig, log: LogFn | None = None) -> dict[str, Any]:
    """Run one fine-tuning job (in each process of a distributed launch). Returns the summary that
    rank 0 also writes to OUTPUT/training.json."""
    import logging

    # peft imports bitsandbytes, whose CPU backend warns at import about an optional hub kernel.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import torch
    import torch.distributed as dist
    import transformers
    from peft import LoraConfig, get_peft_model

    from fakescope_cli.checkpoints import hf_weight_files

    from .instruct import read_instruct

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rank, local_rank, world = distributed_rank()
    log = log or make_logger("train lmm: ")
    log_all = make_logger("train lmm: ", all_ranks=True)
    base, output, data = Path(cfg.base), Path(cfg.output), Path(cfg.data)
    try:
        _, weights_format = hf_weight_files(base, trust_pickle=True)
    except Exception as exc:  # noqa: BLE001 - DetectorUnavailable and friends: a bad --base
        raise UsageError(f"--base: {exc}") from None
    if weights_format != "safetensors":
        # Training loads safetensors only (use_safetensors=True); there is no opt-in here.
        raise UsageError(f"--base {base}: only pickle weights; training loads safetensors only. Convert "
                         "them first (transformers: save_pretrained(..., safe_serialization=True))")
    cfg_raw = json.loads((base / "config.json").read_text(encoding="utf-8"))
    model_type = str(cfg_raw.get("model_type"))
    family = family_of(model_type)
    convs = read_instruct(data)

    if output.exists() and any(output.iterdir()) and not cfg.resume:
        raise UsageError(f"{output} is not empty: pass --resume to continue a run there, or choose another --output")

    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to torch")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // world)
    if not use_cuda:
        torch.set_num_threads(threads)
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    seed_everything(cfg.seed)  # the same on every rank: LoRA starts identical everywhere
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    dtype = _dtype(torch, cfg.dtype, use_cuda)
    cls = getattr(transformers, {"llava": "LlavaForConditionalGeneration"}.get(model_type) or
                  {"qwen2_vl": "Qwen2VLForConditionalGeneration",
                   "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}[model_type])
    load_kw: dict[str, Any] = {"dtype": dtype, "local_files_only": True, "use_safetensors": True}
    if cfg.qlora:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UsageError("--qlora needs bitsandbytes: pip install 'fakescope[hf]'") from None
        load_kw["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype, llm_int8_skip_modules=_QLORA_SKIP,
        )
        load_kw["device_map"] = {"": device}
    model = cls.from_pretrained(base, **load_kw)
    if not cfg.qlora:
        model.to(device)
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

    from torch.utils.data import DataLoader, Dataset
    from torch.utils.data.distributed import DistributedSampler

    class _Data(Dataset):
        def __len__(self) -> int:
            return len(convs)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return encoder.encode(convs[i])

    dataset = _Data()
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=False)
    micro_per_epoch = math.ceil(len(sampler) / cfg.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total = cfg.max_steps or steps_per_epoch * cfg.epochs
    n_epochs = math.ceil(total / steps_per_epoch)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, max(1, int(cfg.warmup_ratio * total))))

    state: dict[str, Any] = {"global_step": 0, "epoch": 0, "step_in_epoch": 0, "examples_seen": 0}
    resumed_from = None
    ckpts = _checkpoints(output) if cfg.resume else []
    if ckpts:
        state = load_checkpoint(ckpts[-1], model, opt, sched)
        resumed_from = ckpts[-1].name
        if state.get("world_size", world) != world:
            log(f"note: the checkpoint was written by {state.get('world_size')} processes, this run has {world}; "
                "the rest of the epoch is re-sharded")
        log(f"resuming from {ckpts[-1]} (step {state['global_step']}/{total})")
    elif cfg.resume:
        log(f"--resume: no checkpoint under {output / 'checkpoints'}; starting from the beginning")
    output.mkdir(parents=True, exist_ok=True)

    ddp_model: Any = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        # The LLaVA recipe reads the vision tower's second-to-last layer: LoRA weights in the last
        # one get no gradient, which plain DDP treats as an error.
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None,
                                            find_unused_parameters="vision" in scopes or scopes == ["custom"])
    tasks = Counter(c.task or "other" for c in convs)
    log(f"base {base} ({model_type}), {'QLoRA 4-bit' if cfg.qlora else 'LoRA'} r={cfg.lora_r} alpha={cfg.lora_alpha} "
        f"on {','.join(scopes)}: {n_train:,} trainable of {n_all:,} parameters")
    log(f"world_size {world}, device {device}, dtype {str(dtype).replace('torch.', '')}"
        + (f", backend {dist.get_backend()}" if distributed else ""))
    log(f"data {data}: {len(convs)} records ({', '.join(f'{k} {v}' for k, v in sorted(tasks.items()))}); "
        f"{steps_per_epoch} steps per epoch, {total} steps, batch {cfg.batch_size} x accum {cfg.grad_accum} x {world} processes")
    if distributed:
        log_all(f"rank {rank} of {world}: {len(sampler)} records per epoch from the distributed sampler")

    seen_mask = torch.zeros(len(convs), dtype=torch.int32)
    progress = None
    if cfg.progress and rank == 0 and sys.stderr.isatty():  # in a log file, the step lines say it all
        from tqdm.auto import tqdm

        progress = tqdm(total=total, initial=state["global_step"], desc="train lmm", unit="step",
                        file=sys.stderr, dynamic_ncols=True, leave=True)
        plain_log = log

        def log(message: str) -> None:  # noqa: F811 - the same lines, without tearing the bar
            with tqdm.external_write_mode(file=sys.stderr):
                plain_log(message)
    ddp_model.train()
    t0 = time.monotonic()
    run_loss, last_loss = None, float("nan")
    examples_local = 0
    global_step = state["global_step"]
    for epoch in range(state["epoch"], n_epochs):
        if global_step >= total:
            break
        sampler.set_epoch(epoch)
        order = list(sampler)
        skip = state["step_in_epoch"] * cfg.grad_accum * cfg.batch_size if epoch == state["epoch"] else 0
        step_in_epoch = state["step_in_epoch"] if epoch == state["epoch"] else 0
        chunks = [order[i: i + cfg.batch_size] for i in range(skip, len(order), cfg.batch_size)]
        loader = DataLoader(chunks, batch_size=None, shuffle=False, num_workers=cfg.num_workers,
                            collate_fn=lambda idx: (idx, collate([dataset[i] for i in idx], encoder.pad_id,
                                                                 encoder.image_token_id, family)))
        micro = 0
        step_loss = 0.0
        for idx, batch in loader:
            in_step = min(cfg.grad_accum, len(chunks) - (micro // cfg.grad_accum) * cfg.grad_accum)
            boundary = (micro % cfg.grad_accum) == in_step - 1
            batch = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in batch.items()}
            sync = contextlib.nullcontext() if (boundary or not distributed) else ddp_model.no_sync()
            autocast = torch.autocast("cuda", dtype=dtype) if use_cuda and dtype != torch.float32 else contextlib.nullcontext()
            with sync, autocast:
                loss, _ = sft_loss(ddp_model, batch)
                (loss / in_step).backward()
            step_loss += float(loss.detach()) / in_step
            seen_mask[idx] += 1
            examples_local += len(idx)
            micro += 1
            if not boundary:
                continue
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            global_step += 1
            step_in_epoch += 1
            last_loss = step_loss
            run_loss = step_loss if run_loss is None else 0.9 * run_loss + 0.1 * step_loss
            step_loss = 0.0
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{run_loss:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}", refresh=False)
            if global_step % cfg.log_every == 0 or global_step == total:
                shown = run_loss
                if distributed:  # every rank reaches this step: report the mean over ranks
                    t = torch.tensor([run_loss], dtype=torch.float64, device=device if use_cuda else "cpu")
                    dist.all_reduce(t)
                    shown = float(t) / world
                log(f"step {global_step}/{total} epoch {epoch + 1} loss {shown:.4f} lr {sched.get_last_lr()[0]:.3e}")
            done = global_step >= total
            if cfg.save_every and (global_step % cfg.save_every == 0 or done):
                # Counters point at the next step: the epoch rolls over when this one is complete.
                nxt = {"epoch": epoch + 1, "step_in_epoch": 0} if step_in_epoch >= steps_per_epoch else \
                      {"epoch": epoch, "step_in_epoch": step_in_epoch}
                st = {"global_step": global_step, **nxt, "world_size": world, "loss": run_loss,
                      "total_steps": total}
                if rank == 0:
                    path = save_checkpoint(output, model, opt, sched, st, cfg.keep_checkpoints)
                    log(f"checkpoint {path}")
                if distributed:
                    dist.barrier()
            if done:
                break
        state["step_in_epoch"] = 0
    if progress is not None:
        progress.close()
    train_seconds = time.monotonic() - t0

    # What each rank did: records drawn, and that the replicas ended with the same weights.
    ranks: list[dict[str, Any]] = [{"rank": 0, "examples": examples_local}]
    in_sync = True
    shared = 0
    if distributed:
        counts = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
        dist.all_gather(counts, torch.tensor([examples_local], dtype=torch.long))
        masks = [torch.zeros_like(seen_mask) for _ in range(world)]
        dist.all_gather(masks, seen_mask)
        check = torch.tensor([sum(float(p.detach().double().sum()) for p in trainable)], dtype=torch.float64)
        checks = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(checks, check)
        in_sync = all(abs(float(c) - float(checks[0])) <= 1e-6 * max(1.0, abs(float(checks[0]))) for c in checks)
        seen = torch.stack([(m > 0).int() for m in masks])
        shared = int((seen.sum(0) > 1).sum())
        ranks = [{"rank": r, "examples": int(counts[r]), "distinct_records": int(seen[r].sum())} for r in range(world)]
        log(f"ranks: {ranks}; records drawn by more than one rank: {shared}; replicas in sync: {in_sync}")

    summary: dict[str, Any] = {}
    if rank == 0:
        model.save_pretrained(output / "adapter", safe_serialization=True)
        log(f"adapter written to {output / 'adapter'}")
    # Free the training copy before the merge loads the base again (a 7B model twice may not fit).
    del ddp_model, model, opt, sched, trainable
    if use_cuda:
        torch.cuda.empty_cache()
    if rank == 0:
        summary = _finalize(cfg, base, output, data, model_type, cls, convs, tasks, regex, scopes,
                            n_train, n_4bit, world, ranks, shared, in_sync, global_step, total, run_loss, last_loss,
                            train_seconds, resumed_from, log)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _finalize(cfg: LmmConfig, base: Path, output: Path, data: Path, model_type: str, cls: Any, convs: list[Any],
              tasks: Counter, regex: str, scopes: list[str], n_train: int, n_4bit: int, world: int,
              ranks: list[dict[str, Any]], shared: int, in_sync: bool, global_step: int, total: int,
              run_loss: float | None, last_loss: float, train_seconds: float, resumed_from: str | None,
              log: LogFn) -> dict[str, Any]:
    """Rank 0: adapter, merged safetensors, processor files, manifest, training.json."""
    import peft
    import torch
    import transformers
    from peft import PeftModel

    adapter_dir = output / "adapter"
    cfg_raw = json.loads((base / "config.json").read_text(encoding="utf-8"))
    save_dtype = _base_dtype(torch, cfg_raw) if cfg.save_dtype == "auto" else getattr(torch, cfg.save_dtype)
    # Merge into a full-precision copy of the base (for QLoRA too: merged 4-bit weights would lose
    # the adapter's precision), then save it as plain safetensors.
    fresh = cls.from_pretrained(base, dtype=save_dtype, local_files_only=True, use_safetensors=True)
    merged = PeftModel.from_pretrained(fresh, adapter_dir).merge_and_unload()
    merged.config.use_cache = True
    for old in output.glob("*.safetensors"):
        old.unlink()  # a resumed run must not leave shards of an earlier merge beside the new ones
    merged.save_pretrained(output, safe_serialization=True, max_shard_size="5GB")
    for f in sorted(base.iterdir()):
        if f.is_file() and not _NOT_COPIED.fullmatch(f.name):
            shutil.copy2(f, output / f.name)
    manifest = _manifest(base, convs, cfg)
    (output / "fakescope.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    summary = {
        "format": TRAIN_FORMAT,
        "base": str(base.resolve()),
        "model_type": model_type,
        "data": str(data.resolve()),
        "data_sha256": _sha256(data),
        "records": len(convs),
        "tasks": dict(sorted(tasks.items())),
        "method": "qlora-4bit-nf4" if cfg.qlora else "lora",
        "lora_target_regex": regex,
        "lora_scopes": scopes,
        "trainable_parameters": n_train,
        "quantized_4bit_modules": n_4bit,
        "steps": global_step,
        "total_steps": total,
        "final_loss": run_loss,
        "last_step_loss": last_loss,
        "train_seconds": round(train_seconds, 2),
        "world_size": world,
        "ranks": ranks,
        "records_drawn_by_several_ranks": shared,
        "replicas_in_sync": in_sync,
        "resumed_from": resumed_from,
        "saved_dtype": str(save_dtype).replace("torch.", ""),
        "config": asdict(cfg),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    (output / "training.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    log(f"merged model written to {output} ({global_step} steps, loss {run_loss if run_loss is not None else float('nan'):.4f})")
    return summary


def _manifest(base: Path, convs: list[Any], cfg: LmmConfig) -> dict[str, Any]:
    """The base's manifest (or the defaults), with the prompts the data actually trained, and
    without the base's calibration, which does not describe the fine-tuned model."""
    from fakescope_cli.protocol import DETECT_PROMPT, MANIFEST_NAME, MANIFEST_SCHEMA, protocol_from_manifest

    src = base / MANIFEST_NAME
    manifest: dict[str, Any] = json.loads(src.read_text(encoding="utf-8")) if src.is_file() else {}
    manifest.pop("calibration", None)
    manifest["schema"] = MANIFEST_SCHEMA
    detect = {c.turns[-2][1].replace("<image>", "").strip() for c in convs if c.task == "detect"}
    if len(detect) == 1:
        (prompt,) = detect
        current = manifest.get("prompts", {}).get("detect", DETECT_PROMPT)
        if prompt != current:
            manifest.setdefault("prompts", {})["detect"] = prompt
    manifest["description"] = (f"LoRA fine-tune (fakescope train lmm, {'QLoRA' if cfg.qlora else 'LoRA'} r={cfg.lora_r}) "
                               f"of {base.resolve().name} on {Path(cfg.data).name}")
    protocol_from_manifest(manifest, source=str(base / MANIFEST_NAME))  # refuse to write one that won't load
    return manifest


def main(argv: list[str] | None = None) -> None:
    """`python -m fakescope_train.lmm ARGS` is `fakescope train lmm ARGS` (for torchrun -m)."""
    from fakescope_cli.cli import app

    app(["train", "lmm", *(sys.argv[1:] if argv is None else argv)], prog_name="fakescope")


if __name__ == "__main__":
    main()
