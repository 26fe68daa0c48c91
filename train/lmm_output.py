"""What a `fakescope train lmm` run leaves in OUTPUT (rank 0): the adapter merged into a full-precision
copy of the base as safetensors, the base's processor files, the protocol manifest (prompts as trained)
and training.json (data hash, settings, steps, loss, ranks)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import LogFn

if TYPE_CHECKING:
    from .lmm import LmmConfig

TRAIN_FORMAT = "fakescope-train-lmm/1"
# Top-level files of a base checkpoint that are NOT copied to the output (rewritten or weights).
_NOT_COPIED = re.compile(
    r".*\.(safetensors|bin|pt|pth|ckpt|gguf|msgpack|h5)$|.*\.index\.json$|^config\.json$|"
    r"^generation_config\.json$|^fakescope\.json$|^training\.json$|^adapter_.*|^\..*"
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _base_dtype(torch: Any, cfg_raw: dict[str, Any]) -> Any:
    name = cfg_raw.get("dtype") or cfg_raw.get("torch_dtype") or (cfg_raw.get("text_config") or {}).get("dtype")
    return getattr(torch, name) if isinstance(name, str) and hasattr(torch, name) else torch.float32


def finalize(cfg: LmmConfig, base: Path, output: Path, data: Path, model_type: str, cls: Any, convs: list[Any],
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
