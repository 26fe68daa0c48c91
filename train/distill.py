"""The builtin detector's "distill" recipe: a small CNN learns the zero-shot TAEF2 latent-cycle score.

The cycle score (fakescope_cli/detectors/cycle.py, cycle-card.md) ranks the pool's sources far better than
any network trained on the pool's labels did, but it costs about 30 times the builtin budget per image.
Here a StudentNet (train/model.py) learns to reproduce the teacher's score of a tile from its pixels. The
loss never sees a label: nothing in it can tie a score to a source's format, size or content, which is how
every supervised recipe on this pool failed. The labels fit only the calibration afterwards (train/builtin.py).

The student sees what the teacher sees, at the same scale: tiles cut at native resolution, `downscale`
times the tile side, and shrunk by that factor (tiling.scaled_tiles). The teacher's shrink is the `cycle`
detector's (bicubic); the student's is by default a box reduction (the mean of each 2 x 2 block), which
costs a fifth as much at inference and differs only in how sharply it cuts the finest detail. Each image
gives the tiles of the inference grid plus `views` augmented crops (the both-classes chain of
train/data.py: JPEG 60-100, downscale 0.5-1, mild blur, flips); the teacher scores every crop as it is
after augmentation, so the student is taught the teacher's behaviour under those changes too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fakescope_cli.detectors.tiling import scaled_tiles

from .data import Item, apply_aug, sample_aug

TEACHER_BATCH = 32  # tiles per teacher run: TAEF2 activations of 128 tiles took about 1 GB


@dataclass
class TeacherBank:
    tiles: np.ndarray  # N,3,S,S uint8: what the student sees
    score: np.ndarray  # N float32: the teacher's tile score, log latent variance - log latent cycle distance
    owner: np.ndarray  # N int32: index of the pool item the tile came from
    params: dict

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez(tmp, tiles=self.tiles, score=self.score, owner=self.owner,
                 params=np.array(sorted(self.params.items()), dtype=str))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TeacherBank:
        z = np.load(path)
        return cls(z["tiles"], z["score"], z["owner"], {k: v for k, v in z["params"]})


def student_views(arr: np.ndarray, rng, views: int, tile: int, downscale: float, grid: int,
                  resample: str = "box") -> list[tuple[np.ndarray, np.ndarray]]:
    """(student's tile, teacher's tile) pairs, each 3,tile,tile uint8, of the same native cut: the inference
    grid's tiles and `views` augmented crops of one image. Only full-size tiles: an image too small for them
    adds nothing (the student is fully convolutional, so inference still scores it)."""
    from PIL import Image

    student = scaled_tiles(arr, tile, grid, downscale, resample=resample)[0]
    teacher = scaled_tiles(arr, tile, grid, downscale, resample="bicubic")[0]
    out = [(s.astype(np.uint8), t.astype(np.uint8)) for s, t in zip(student, teacher, strict=True)
           if s.shape[-1] == t.shape[-1] == tile]
    cut = round(tile * downscale)
    if min(arr.shape[:2]) >= cut:
        for _ in range(views):
            crop = Image.fromarray(apply_aug(arr, cut, sample_aug(rng)))
            pair = [crop.reduce(int(downscale)) if how == "box" else crop.resize((tile, tile), Image.BICUBIC)
                    for how in (resample, "bicubic")]
            out.append(tuple(np.asarray(p, dtype=np.uint8).transpose(2, 0, 1) for p in pair))
    return out


def build_teacher_bank(items: list[Item], taesd: Path, views: int = 8, seed: int = 0, tile: int = 64,
                       downscale: float = 2.0, grid: int = 3, threads: int = 2, resample: str = "box",
                       log=print) -> TeacherBank:
    """Score every tile the student will train on with the teacher: TAEF2 from `taesd`, exported to a
    temporary ONNX graph by the `cycle` exporter (onnxruntime runs it about 6x faster than torch here)."""
    import random
    import tempfile

    import onnxruntime as ort

    from .cycle import export, taef2_sha256

    rng = random.Random(seed)
    tiles: list[np.ndarray] = []
    seen: list[np.ndarray] = []
    owner: list[int] = []
    for i, it in enumerate(items):
        got = student_views(it.arr, rng, views, tile, downscale, grid, resample)
        tiles.extend(g[0] for g in got)
        seen.extend(g[1] for g in got)
        owner.extend([i] * len(got))
    x = np.stack(seen)
    t0 = time.time()
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        export(Path(taesd), Path(tmp) / "teacher.onnx")
        # a session of its own, not the detectors' shared cache: its memory arena goes when it does
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        sess = ort.InferenceSession(str(Path(tmp) / "teacher.onnx"), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for k in range(0, len(x), TEACHER_BATCH):
            stats = sess.run(None, {name: x[k:k + TEACHER_BATCH].astype(np.float32)})[0]
            scores.append(stats[:, 1] - stats[:, 0])
            if k // TEACHER_BATCH % 160 == 0:
                log(f"  teacher: {k + len(stats)}/{len(x)} tiles {time.time() - t0:.0f}s")
    params = {**_settings(views, seed, tile, downscale, grid, resample, len(items)),
              "taef2_sha256": taef2_sha256(Path(taesd))}
    return TeacherBank(np.stack(tiles), np.concatenate(scores).astype(np.float32), np.array(owner, dtype=np.int32), params)


def _settings(views: int, seed: int, tile: int, downscale: float, grid: int, resample: str,
              images: int) -> dict[str, str]:
    """What a bank was built with (stored as strings in its .npz); a cache is reused only if all match."""
    return {"views": str(views), "seed": str(seed), "tile": str(tile), "downscale": f"{downscale:g}",
            "grid": str(grid), "resample": resample, "images": str(images)}


def teacher_bank(items: list[Item], taesd: Path, cache: Path | None, views: int, seed: int, tile: int,
                 downscale: float, grid: int, threads: int, resample: str = "box", log=print) -> TeacherBank:
    """The cached bank if it was built with these settings for a pool of this size, else a new one (saved)."""
    want = _settings(views, seed, tile, downscale, grid, resample, len(items))
    if cache is not None and Path(cache).is_file():
        bank = TeacherBank.load(Path(cache))
        if all(bank.params.get(k) == v for k, v in want.items()):
            log(f"teacher bank: {len(bank.score)} tiles from {cache}")
            return bank
        log(f"teacher bank {cache} was built with other settings: rebuilding")
    bank = build_teacher_bank(items, taesd, views, seed, tile, downscale, grid, threads, resample, log)
    if cache is not None:
        bank.save(Path(cache))
    log(f"teacher bank: {len(bank.score)} tiles")
    return bank


def train_student(bank: TeacherBank, train_ids: list[int], width: int, steps: int, batch: int, lr: float,
                  seed: int, threads: int, log=print):
    """Fit a StudentNet to the standardised teacher scores of the training images' tiles (squared error)."""
    import torch

    from .model import StudentNet

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rows = np.where(np.isin(bank.owner, np.array(train_ids)))[0]
    target = bank.score[rows]
    mean, std = float(target.mean()), float(target.std()) or 1.0
    z = torch.from_numpy(((bank.score - mean) / std).astype(np.float32))
    net = StudentNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    net.train()
    t0, run = time.time(), 0.0
    for step in range(steps):
        b = rng.choice(rows, batch)
        x = torch.from_numpy(bank.tiles[b]).float() / 255.0
        if rng.random() < 0.5:
            x = x.flip(3)
        loss = ((net(x) - z[b]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        if step % 250 == 0 or step == steps - 1:
            log(f"  step {step} loss {run:.4f} {time.time() - t0:.0f}s")
    net.eval()
    net.teacher_mean, net.teacher_std = mean, std
    return net
