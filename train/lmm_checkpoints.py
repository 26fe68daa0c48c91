"""Resumable state of a `fakescope train lmm` run: the trainable weights, optimiser, schedule, RNG and
counters every --save-every steps, written so that a crash mid-save never leaves a half checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from fakescope_cli.errors import UsageError


def checkpoints(output: Path) -> list[Path]:
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
        for old in checkpoints(output)[:-keep]:
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
