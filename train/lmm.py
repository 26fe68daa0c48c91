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
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fakescope_cli.errors import UsageError

from .common import LogFn, distributed_rank, load_recipe, make_logger, seed_everything
from .lmm_checkpoints import checkpoints, load_checkpoint, save_checkpoint
from .lmm_encode import IGNORE, Encoder, collate, family_of, sft_loss
from .lmm_model import Network, load_network, train_dtype
from .lmm_output import finalize

__all__ = ["IGNORE", "Encoder", "LmmConfig", "collate", "family_of", "make_config", "sft_loss", "train_lmm"]



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


# ---------------------------------------------------------------- the run


def _lr_lambda(total: int, warmup: int) -> Any:
    def f(step: int) -> float:  # linear warm-up, then cosine decay to zero
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return f


@dataclass
class Processes:
    """Where this process trains, in a launch of `world` processes."""

    rank: int
    local_rank: int
    world: int
    device: Any
    use_cuda: bool
    dtype: Any

    @property
    def distributed(self) -> bool:
        return self.world > 1


@dataclass
class _Schedule:
    dataset: Any
    sampler: Any
    steps_per_epoch: int
    total: int
    n_epochs: int
    trainable: list[Any]
    opt: Any
    sched: Any


@dataclass
class _Progress:
    """What the loop did, for the rank report and training.json."""

    global_step: int
    run_loss: float | None
    last_loss: float
    examples_local: int
    seen_mask: Any
    seconds: float


def train_lmm(cfg: LmmConfig, log: LogFn | None = None) -> dict[str, Any]:
    """Run one fine-tuning job (in each process of a distributed launch). Returns the summary that
    rank 0 also writes to OUTPUT/training.json."""
    import logging

    # peft imports bitsandbytes, whose CPU backend warns at import about an optional hub kernel.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import torch
    import torch.distributed as dist

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = log or make_logger("train lmm: ")
    base, output, data = Path(cfg.base), Path(cfg.output), Path(cfg.data)
    model_type, family, convs = _read_inputs(cfg, base, output, data)
    procs = _start_processes(cfg)
    net = load_network(cfg, base, model_type, family, procs)
    plan = _schedule(cfg, convs, net, procs)
    state, resumed_from = _resume(cfg, output, net, plan, procs.world, log)
    output.mkdir(parents=True, exist_ok=True)

    ddp_model: Any = net.model
    if procs.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # The LLaVA recipe reads the vision tower's second-to-last layer: LoRA weights in the last
        # one get no gradient, which plain DDP treats as an error.
        ddp_model = DistributedDataParallel(net.model, device_ids=[procs.device.index] if procs.use_cuda else None,
                                            find_unused_parameters="vision" in net.scopes or net.scopes == ["custom"])
    tasks = Counter(c.task or "other" for c in convs)
    _log_setup(cfg, base, data, model_type, convs, tasks, net, plan, procs, log)
    done = _train(cfg, output, ddp_model, net, plan, procs, state, len(convs), family, log)
    ranks, shared, in_sync = _rank_report(done, plan.trainable, procs, log)

    summary: dict[str, Any] = {}
    if procs.rank == 0:
        net.model.save_pretrained(output / "adapter", safe_serialization=True)
        log(f"adapter written to {output / 'adapter'}")
    # Free the training copy before the merge loads the base again (a 7B model twice may not fit).
    cls, regex, scopes, n_train, n_4bit, total = net.cls, net.regex, net.scopes, net.n_train, net.n_4bit, plan.total
    del ddp_model, net, plan
    if procs.use_cuda:
        torch.cuda.empty_cache()
    if procs.rank == 0:
        summary = finalize(cfg, base, output, data, model_type, cls, convs, tasks, regex, scopes,
                            n_train, n_4bit, procs.world, ranks, shared, in_sync, done.global_step, total,
                            done.run_loss, done.last_loss, done.seconds, resumed_from, log)
    if procs.distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _read_inputs(cfg: LmmConfig, base: Path, output: Path, data: Path) -> tuple[str, str, list[Any]]:
    """The base's model type and family, and the conversations, after the checks that need no torch."""
    from fakescope_cli.checkpoints import hf_weight_files

    from .instruct import read_instruct

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
    family = family_of(model_type)  # an unsupported architecture is refused before the data is read
    convs = read_instruct(data)
    if output.exists() and any(output.iterdir()) and not cfg.resume:
        raise UsageError(f"{output} is not empty: pass --resume to continue a run there, or choose another --output")
    return model_type, family, convs


def _start_processes(cfg: LmmConfig) -> Processes:
    """Device, threads and (under torchrun) the process group; the seed, the same on every rank."""
    import torch
    import torch.distributed as dist

    rank, local_rank, world = distributed_rank()
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to torch")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // world))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    seed_everything(cfg.seed)  # the same on every rank: LoRA starts identical everywhere
    return Processes(rank, local_rank, world, device, use_cuda, train_dtype(torch, cfg.dtype, use_cuda))


def _schedule(cfg: LmmConfig, convs: list[Any], net: Network, procs: Processes) -> _Schedule:
    """This rank's share of the data, the number of steps, the optimiser and the learning-rate schedule."""
    import torch
    from torch.utils.data import Dataset
    from torch.utils.data.distributed import DistributedSampler

    encoder = net.encoder

    class _Data(Dataset):
        def __len__(self) -> int:
            return len(convs)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return encoder.encode(convs[i])

    dataset = _Data()
    sampler = DistributedSampler(dataset, num_replicas=procs.world, rank=procs.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=False)
    micro_per_epoch = math.ceil(len(sampler) / cfg.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total = cfg.max_steps or steps_per_epoch * cfg.epochs
    trainable = [p for p in net.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, max(1, int(cfg.warmup_ratio * total))))
    return _Schedule(dataset, sampler, steps_per_epoch, total, math.ceil(total / steps_per_epoch), trainable, opt, sched)


def _resume(cfg: LmmConfig, output: Path, net: Network, plan: _Schedule, world: int,
            log: LogFn) -> tuple[dict[str, Any], str | None]:
    """The counters to start from: the last checkpoint's under --resume (its weights, optimiser and
    schedule loaded), else zero."""
    state: dict[str, Any] = {"global_step": 0, "epoch": 0, "step_in_epoch": 0, "examples_seen": 0}
    ckpts = checkpoints(output) if cfg.resume else []
    if not ckpts:
        if cfg.resume:
            log(f"--resume: no checkpoint under {output / 'checkpoints'}; starting from the beginning")
        return state, None
    state = load_checkpoint(ckpts[-1], net.model, plan.opt, plan.sched)
    if state.get("world_size", world) != world:
        log(f"note: the checkpoint was written by {state.get('world_size')} processes, this run has {world}; "
            "the rest of the epoch is re-sharded")
    log(f"resuming from {ckpts[-1]} (step {state['global_step']}/{plan.total})")
    return state, ckpts[-1].name


def _log_setup(cfg: LmmConfig, base: Path, data: Path, model_type: str, convs: list[Any], tasks: Counter,
               net: Network, plan: _Schedule, procs: Processes, log: LogFn) -> None:
    import torch.distributed as dist

    log(f"base {base} ({model_type}), {'QLoRA 4-bit' if cfg.qlora else 'LoRA'} r={cfg.lora_r} alpha={cfg.lora_alpha} "
        f"on {','.join(net.scopes)}: {net.n_train:,} trainable of {net.n_all:,} parameters")
    log(f"world_size {procs.world}, device {procs.device}, dtype {str(procs.dtype).replace('torch.', '')}"
        + (f", backend {dist.get_backend()}" if procs.distributed else ""))
    log(f"data {data}: {len(convs)} records ({', '.join(f'{k} {v}' for k, v in sorted(tasks.items()))}); "
        f"{plan.steps_per_epoch} steps per epoch, {plan.total} steps, batch {cfg.batch_size} x accum {cfg.grad_accum} "
        f"x {procs.world} processes")
    if procs.distributed:
        make_logger("train lmm: ", all_ranks=True)(
            f"rank {procs.rank} of {procs.world}: {len(plan.sampler)} records per epoch from the distributed sampler")


def _train(cfg: LmmConfig, output: Path, ddp_model: Any, net: Network, plan: _Schedule, procs: Processes,
           state: dict[str, Any], n_records: int, family: str, log: LogFn) -> _Progress:
    """The optimisation loop, from the counters in `state`: gradient accumulation, clipping, logging
    (a progress bar on a terminal), and a checkpoint every --save-every steps."""
    import torch
    from torch.utils.data import DataLoader

    seen_mask = torch.zeros(n_records, dtype=torch.int32)
    progress = None
    if cfg.progress and procs.rank == 0 and sys.stderr.isatty():  # in a log file, the step lines say it all
        from tqdm.auto import tqdm

        progress = tqdm(total=plan.total, initial=state["global_step"], desc="train lmm", unit="step",
                        file=sys.stderr, dynamic_ncols=True, leave=True)
        plain_log = log

        def log(message: str) -> None:  # the same lines, without tearing the bar
            with tqdm.external_write_mode(file=sys.stderr):
                plain_log(message)
    ddp_model.train()
    t0 = time.monotonic()
    run_loss, last_loss = None, float("nan")
    examples_local = 0
    global_step, total = state["global_step"], plan.total
    encoder, dataset, opt, sched = net.encoder, plan.dataset, plan.opt, plan.sched
    for epoch in range(state["epoch"], plan.n_epochs):
        if global_step >= total:
            break
        plan.sampler.set_epoch(epoch)
        order = list(plan.sampler)
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
            step_loss += _accumulate(ddp_model, batch, in_step, boundary, procs)
            seen_mask[idx] += 1
            examples_local += len(idx)
            micro += 1
            if not boundary:
                continue
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(plan.trainable, cfg.max_grad_norm)
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
                log(f"step {global_step}/{total} epoch {epoch + 1} loss {_mean_over_ranks(run_loss, procs):.4f} "
                    f"lr {sched.get_last_lr()[0]:.3e}")
            done = global_step >= total
            if cfg.save_every and (global_step % cfg.save_every == 0 or done):
                # Counters point at the next step: the epoch rolls over when this one is complete.
                nxt = {"epoch": epoch + 1, "step_in_epoch": 0} if step_in_epoch >= plan.steps_per_epoch else \
                      {"epoch": epoch, "step_in_epoch": step_in_epoch}
                st = {"global_step": global_step, **nxt, "world_size": procs.world, "loss": run_loss,
                      "total_steps": total}
                if procs.rank == 0:
                    path = save_checkpoint(output, net.model, opt, sched, st, cfg.keep_checkpoints)
                    log(f"checkpoint {path}")
                if procs.distributed:
                    torch.distributed.barrier()
            if done:
                break
        state["step_in_epoch"] = 0
    if progress is not None:
        progress.close()
    return _Progress(global_step, run_loss, last_loss, examples_local, seen_mask, time.monotonic() - t0)


def _accumulate(ddp_model: Any, batch: dict[str, Any], in_step: int, boundary: bool, procs: Processes) -> float:
    """Forward and backward of one micro-batch (gradients synchronised across ranks only at the step's
    last one); its share of the step's loss."""
    import torch

    batch = {k: (v.to(procs.device, procs.dtype) if v.is_floating_point() else v.to(procs.device))
             for k, v in batch.items()}
    sync = contextlib.nullcontext() if (boundary or not procs.distributed) else ddp_model.no_sync()
    autocast = (torch.autocast("cuda", dtype=procs.dtype) if procs.use_cuda and procs.dtype != torch.float32
                else contextlib.nullcontext())
    with sync, autocast:
        loss, _ = sft_loss(ddp_model, batch)
        (loss / in_step).backward()
    return float(loss.detach()) / in_step


def _mean_over_ranks(value: float, procs: Processes) -> float:
    """Every rank reaches the same step: the figure logged is the mean over ranks."""
    if not procs.distributed:
        return value
    import torch

    t = torch.tensor([value], dtype=torch.float64, device=procs.device if procs.use_cuda else "cpu")
    torch.distributed.all_reduce(t)
    return float(t) / procs.world


def _rank_report(done: _Progress, trainable: list[Any], procs: Processes,
                 log: LogFn) -> tuple[list[dict[str, Any]], int, bool]:
    """What each rank did: records drawn, and that the replicas ended with the same weights."""
    ranks: list[dict[str, Any]] = [{"rank": 0, "examples": done.examples_local}]
    if not procs.distributed:
        return ranks, 0, True
    import torch
    import torch.distributed as dist

    world = procs.world
    counts = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([done.examples_local], dtype=torch.long))
    masks = [torch.zeros_like(done.seen_mask) for _ in range(world)]
    dist.all_gather(masks, done.seen_mask)
    check = torch.tensor([sum(float(p.detach().double().sum()) for p in trainable)], dtype=torch.float64)
    checks = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(checks, check)
    in_sync = all(abs(float(c) - float(checks[0])) <= 1e-6 * max(1.0, abs(float(checks[0]))) for c in checks)
    seen = torch.stack([(m > 0).int() for m in masks])
    shared = int((seen.sum(0) > 1).sum())
    ranks = [{"rank": r, "examples": int(counts[r]), "distinct_records": int(seen[r].sum())} for r in range(world)]
    log(f"ranks: {ranks}; records drawn by more than one rank: {shared}; replicas in sync: {in_sync}")
    return ranks, shared, in_sync


def main(argv: list[str] | None = None) -> None:
    """`python -m fakescope_train.lmm ARGS` is `fakescope train lmm ARGS` (for torchrun -m)."""
    from fakescope_cli.cli import app

    app(["train", "lmm", *(sys.argv[1:] if argv is None else argv)], prog_name="fakescope")


if __name__ == "__main__":
    main()
