"""Train, validate (source-grouped CV), calibrate and export the embedded `builtin` detector.

Entry point for `fakescope train builtin`: `train_builtin(data, out, seed, epochs)`.
Recipes ("modes"):
  pool     - pool fakes vs pool reals;
  aligned  - pool reals vs the same crops passed through the TAEF2 autoencoder (no pool fakes at all);
  mix      - both, half of each batch;
  distill  - no labels in the loss: a StudentNet regresses the zero-shot TAEF2 latent-cycle score of
             2x-reduced tiles (train/distill.py); the labels fit only the calibration.
Every crop of both classes goes through the same augmentation chain (train.data.apply_aug).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fakescope_cli.detectors.tiling import MAX_GRID, TILE, jpeg_roundtrip, scaled_tiles

from .common import seed_everything
from .data import Item, apply_aug, grouped_folds, jpeg_like, load_pool, sample_aug
from .distill import TeacherBank, teacher_bank, train_student
from .model import LocalNet, MapOnly, StudentNet

LOGIT_CLIP = 8.0
BAND_PRECISION = 0.9


@dataclass
class Recipe:
    mode: str = "mix"
    steps: int = 600
    batch: int = 32
    crop: int = 48
    lr: float = 2e-3
    width: int = 32
    seed: int = 0
    threads: int = 1
    p_jpeg: float = 0.75
    luma: bool = False
    # JPEG re-encoding quality applied to every crop/tile before the net (0 = off); see detectors/tiling.py
    norm_q: int = 0
    # pool mode: give lossless images of the class with fewer JPEGs a borrowed JPEG history (see Sampler)
    balance_history: bool = False
    # weight of a penalty on logit(x) - logit(JPEG q85-95 of x): invariance to one more mild JPEG
    consistency: float = 0.0
    # inference on a losslessly stored image (PNG, TIFF...) re-encodes its tiles once at this JPEG
    # quality (0 = off), so lossless and JPEG files reach the net with the same kind of history
    lossless_q: int = 0
    tile: int = TILE
    grid: int = MAX_GRID
    # tiles are cut `downscale` times larger than `tile` and shrunk to it (tiling.scaled_tiles); 1 = native
    downscale: float = 1.0
    # how a tile cut `downscale` times larger is shrunk for the net (tiling.scaled_tiles): box or bicubic
    resample: str = "box"
    # distill: augmented crops per image scored by the teacher, besides the inference grid's tiles
    views: int = 8
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode == "distill":  # the teacher's tiles are cut at tile x downscale; no other crop is taken
            self.crop = round(self.tile * self.downscale)


@dataclass
class Recon:
    real: np.ndarray
    recon: np.ndarray
    idx: np.ndarray
    matched: bool = False  # reconstructions re-encoded with their photo's JPEG tables (build_recon_cache)

    @classmethod
    def load(cls, path: Path) -> Recon:
        z = np.load(path)
        return cls(z["real"], z["recon"], z["idx"], bool(z["matched"]) if "matched" in z.files else False)


def _source_weights(items: list[Item], ids: list[int]) -> np.ndarray:
    # sources drawn in proportion to sqrt(size): big sources do not drown the small ones
    count: dict[str, int] = {}
    for i in ids:
        count[items[i].source] = count.get(items[i].source, 0) + 1
    w = np.array([math.sqrt(count[items[i].source]) / count[items[i].source] for i in ids])
    return w / w.sum()


class Sampler:
    def __init__(self, items: list[Item], train_ids: list[int], recipe: Recipe, recon: Recon | None) -> None:
        self.items = items
        self.r = recipe
        self.rng = random.Random(recipe.seed)
        self.nrng = np.random.default_rng(recipe.seed)
        self.by_label = {lab: [i for i in train_ids if items[i].label == lab] for lab in (0, 1)}
        self.w = {lab: _source_weights(items, ids) for lab, ids in self.by_label.items() if ids}
        allowed = set(train_ids)
        self.pairs = [j for j, i in enumerate(recon.idx) if int(i) in allowed] if recon is not None else []
        self.recon = recon
        # JPEG history balancing: in the pool most reals are JPEGs and most fakes are not. A lossless
        # image of the class with the smaller JPEG share is compressed, with probability p_hist[label],
        # using the tables of a random training JPEG, so both classes carry JPEG history equally often.
        self.jpeg_ids = [i for i in train_ids if items[i].qtables]
        share = {lab: sum(1 for i in ids if items[i].qtables) / max(1, len(ids)) for lab, ids in self.by_label.items()}
        top = max(share.values()) if share else 0.0
        self.p_hist = {lab: (top - s) / (1 - s) if s < 1 else 0.0 for lab, s in share.items()}

    def _aug(self):
        return sample_aug(self.rng, p_jpeg=self.r.p_jpeg)

    def pool(self, n: int) -> tuple[list[np.ndarray], list[int]]:
        xs, ys = [], []
        for k in range(n):
            lab = k % 2
            i = int(self.nrng.choice(self.by_label[lab], p=self.w[lab]))
            arr = self.items[i].arr
            if self.r.balance_history and not self.items[i].qtables and self.jpeg_ids \
                    and self.rng.random() < self.p_hist.get(lab, 0.0):
                arr = self._borrowed_jpeg(arr)
            xs.append(apply_aug(arr, self.r.crop, self._aug()))
            ys.append(lab)
        return xs, ys

    def _borrowed_jpeg(self, arr: np.ndarray) -> np.ndarray:
        """An MCU-aligned window (twice the crop) JPEG-encoded with another training image's tables."""
        h, w = arr.shape[:2]
        s = min(2 * self.r.crop + 16, h, w)
        y, x = self.rng.randint(0, h - s), self.rng.randint(0, w - s)
        y, x = y - y % 16, x - x % 16
        donor = self.items[self.jpeg_ids[self.rng.randrange(len(self.jpeg_ids))]]
        return jpeg_like(arr[y : y + s, x : x + s], donor)

    def aligned(self, n: int) -> tuple[list[np.ndarray], list[int]]:
        assert self.recon is not None
        xs, ys = [], []
        for _ in range(n // 2):
            j = self.pairs[self.rng.randrange(len(self.pairs))]
            a = self._aug()
            xs.append(apply_aug(self.recon.real[j], self.r.crop, a))
            xs.append(apply_aug(self.recon.recon[j], self.r.crop, a))
            ys += [0, 1]
        return xs, ys

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(crops, labels, the same crops after one more JPEG at q85-95 or None without consistency)."""
        n = self.r.batch
        if self.r.mode == "pool":
            xs, ys = self.pool(n)
        elif self.r.mode == "aligned":
            xs, ys = self.aligned(n)
        else:
            a, b = self.aligned(n // 2), self.pool(n - n // 2)
            xs, ys = a[0] + b[0], a[1] + b[1]
        again = [jpeg_q(x, self.rng.randint(85, 95)) for x in xs] if self.r.consistency else None
        return self._tensor(xs), torch.tensor(ys, dtype=torch.float32), self._tensor(again) if again else None

    def _tensor(self, xs: list[np.ndarray]) -> torch.Tensor:
        if self.r.norm_q:
            xs = [jpeg_q(x, self.r.norm_q) for x in xs]
        return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0


def train_model(items: list[Item], train_ids: list[int], recipe: Recipe, recon: Recon | None,
                log=print, teacher: TeacherBank | None = None) -> LocalNet | StudentNet:
    if recipe.mode == "distill":
        if teacher is None:
            raise ValueError("the distill recipe needs the teacher's scores (train.distill.teacher_bank)")
        return train_student(teacher, train_ids, recipe.width, recipe.steps, recipe.batch, recipe.lr, recipe.seed,
                             recipe.threads, log=log)
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    net = LocalNet(recipe.width, luma=recipe.luma)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps, pct_start=0.1)
    sampler = Sampler(items, train_ids, recipe, recon)
    net.train()
    t0, run = time.time(), 0.0
    for step in range(recipe.steps):
        x, y, x2 = sampler.batch()
        if x2 is None:
            loss = F.binary_cross_entropy_with_logits(net(x), y)
        else:
            both = net(torch.cat([x, x2]))
            loss = F.binary_cross_entropy_with_logits(both[: len(y)], y) \
                + recipe.consistency * (both[: len(y)] - both[len(y) :]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        if step % 100 == 0 or step == recipe.steps - 1:
            log(f"  step {step} loss {run:.4f} {time.time() - t0:.0f}s")
    net.eval()
    return net


@torch.no_grad()
def score_arrays(net: LocalNet | StudentNet, arrays: list[np.ndarray], recipe: Recipe, lossy: list[bool]) -> np.ndarray:
    """Image logit = mean of the logit map over the fixed tile grid (same as shipped inference).

    lossy[i]: whether image i is stored in a lossy format (JPEG); decides the lossless_q re-encoding.
    """
    out = []
    for arr, is_lossy in zip(arrays, lossy, strict=True):
        quality = recipe.norm_q or (0 if is_lossy else recipe.lossless_q)
        tiles, _, _, _ = scaled_tiles(arr, recipe.tile, recipe.grid, recipe.downscale, quality, resample=recipe.resample)
        m = net.logit_map(torch.from_numpy(tiles) / 255.0)
        out.append(float(m.mean()))
    return np.array(out)


FLIP_QUALITIES = (90, 75, 95)


def jpeg_q(arr: np.ndarray, q: int = 90) -> np.ndarray:
    """An H,W,3 uint8 array through one JPEG at quality q (the same round trip inference uses on tiles)."""
    from PIL import Image

    return np.asarray(jpeg_roundtrip(Image.fromarray(arr), q))


# ---------------------------------------------------------------- metrics

def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    # average ranks for ties
    i = 0
    r = np.arange(1, len(order) + 1, dtype=float)
    while i < len(order):
        j = i
        while j + 1 < len(order) and allv[j + 1] == allv[i]:
            j += 1
        r[i : j + 1] = (i + j + 2) / 2.0
        i = j + 1
    ranks[order] = r
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def per_source_table(items: list[Item], scores: np.ndarray) -> dict[str, dict]:
    """Per-source AUC on out-of-fold scores.

    A fake source is ranked against all reals, a real source against all fakes; a source with both
    labels also gets its within-source AUC.
    """
    labels = np.array([it.label for it in items])
    srcs = np.array([it.source for it in items])
    table: dict[str, dict] = {}
    for s in sorted(set(srcs)):
        m = srcs == s
        row: dict = {"n_fake": int((labels[m] == 1).sum()), "n_real": int((labels[m] == 0).sum())}
        if row["n_fake"]:
            sel = (m & (labels == 1)) | (labels == 0)
            row["auc_fakes_vs_all_reals"] = auc(scores[sel], labels[sel])
        if row["n_real"]:
            sel = (m & (labels == 0)) | (labels == 1)
            row["auc_reals_vs_all_fakes"] = auc(scores[sel], labels[sel])
        if row["n_fake"] and row["n_real"]:
            row["auc_within"] = auc(scores[m], labels[m])
        table[s] = row
    return table


def source_aucs(table: dict[str, dict], min_images: int = 5) -> list[float]:
    """The per-source AUCs that the mean per-source AUC averages (sources with >= min_images images)."""
    vals = []
    for row in table.values():
        for key in ("auc_fakes_vs_all_reals", "auc_reals_vs_all_fakes"):
            if key in row and (row["n_fake"] + row["n_real"]) >= min_images:
                vals.append(row[key])
    return vals


def mean_ci95(values: list[float], resamples: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean, resampling the values (here: whole sources).

    It shows how far the mean per-source AUC depends on which sources the pool happens to hold; the
    noise inside each source's AUC is not in it.
    """
    v = np.asarray([x for x in values if x == x], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def paired_source_gain(new: dict[str, dict], old: dict[str, dict], min_images: int = 5) -> dict:
    """How much a recipe's per-source AUCs beat another's on the same sources, with a 95% interval.

    Pairing by source removes what the two runs share (which sources are hard), so this interval is
    narrower than comparing the two means' own intervals.
    """
    diffs = []
    for s, row in new.items():
        if row["n_fake"] + row["n_real"] < min_images or s not in old:
            continue
        for key in ("auc_fakes_vs_all_reals", "auc_reals_vs_all_fakes"):
            if key in row and key in old[s]:
                diffs.append(row[key] - old[s][key])
    lo, hi = mean_ci95(diffs)
    return {"n": len(diffs), "mean_gain": float(np.nanmean(diffs)) if diffs else float("nan"), "ci95": (lo, hi),
            "sources_better": int(sum(d > 0 for d in diffs))}


def summarise(items: list[Item], scores: np.ndarray, flip_scores: np.ndarray | None = None) -> dict:
    labels = np.array([it.label for it in items])
    table = per_source_table(items, scores)
    vals = source_aucs(table)
    within = [r["auc_within"] for r in table.values() if "auc_within" in r and r["n_fake"] >= 3 and r["n_real"] >= 3]
    res = {"pooled_auc": auc(scores, labels), "mean_source_auc": float(np.nanmean(vals)),
           "mean_source_auc_ci95": mean_ci95(vals),
           "mean_within_source_auc": float(np.nanmean(within)) if within else float("nan"), "sources": table}
    if flip_scores is not None:
        res["format_flip_auc"] = auc(flip_scores, labels)
        res["format_flip_delta"] = res["format_flip_auc"] - res["pooled_auc"]
    return res


def cross_validate(items: list[Item], recipe: Recipe, recon: Recon | None, k: int = 4, log=print,
                   flip: bool = True, teacher: TeacherBank | None = None) -> dict:
    folds = grouped_folds(items, k, seed=recipe.seed)
    scores = np.zeros(len(items))
    flip_q = {q: np.zeros(len(items)) for q in FLIP_QUALITIES}
    for f in range(k):
        tr = [i for i, g in enumerate(folds) if g != f]
        te = [i for i, g in enumerate(folds) if g == f]
        srcs = sorted({items[i].source for i in te})
        log(f"fold {f}: test sources {srcs}")
        net = train_model(items, tr, recipe, recon, log=log, teacher=teacher)
        scores[te] = score_arrays(net, [items[i].arr for i in te], recipe, [items[i].fmt == "JPEG" for i in te])
        if flip:
            # format flip: fakes re-encoded JPEG q (a lossy file now), reals re-saved PNG (pixels unchanged,
            # but a lossless file now)
            for q in FLIP_QUALITIES:
                flipped = [jpeg_q(items[i].arr, q) if items[i].label else items[i].arr for i in te]
                flip_q[q][te] = score_arrays(net, flipped, recipe, [bool(items[i].label) for i in te])
    res = summarise(items, scores, flip_q[90] if flip else None)
    if flip:
        labels = np.array([it.label for it in items])
        res["format_flip_by_quality"] = {str(q): auc(v, labels) - res["pooled_auc"] for q, v in flip_q.items()}
    res["recipe"] = asdict(recipe)
    res["matched_history"] = bool(recon.matched) if recon is not None else None
    res["k"] = k
    res["oof_logits"] = scores.tolist()
    if flip:  # the format-flipped images' logits (JPEG q90), so later combinations can be flip-checked too
        res["oof_flip_logits"] = flip_q[90].tolist()
    res["oof_labels"] = [it.label for it in items]
    res["oof_sources"] = [it.source for it in items]
    return res


# ---------------------------------------------------------------- calibration

def class_weights(labels: np.ndarray) -> np.ndarray:
    """Weights that make both labels count equally: calibrated p then assumes a 50/50 prior."""
    n1, n0 = max(1, int((labels == 1).sum())), max(1, int((labels == 0).sum()))
    return np.where(labels == 1, 0.5 / n1, 0.5 / n0) * len(labels)


def fit_platt(logits: np.ndarray, labels: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """p = sigmoid(a * logit + b): damped Newton on the class-balanced log loss (standardised input)."""
    mu, sd = float(logits.mean()), float(logits.std() + 1e-12)
    x, y = (logits.astype(float) - mu) / sd, labels.astype(float)
    cw = class_weights(labels)

    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float((cw * (np.logaddexp(0, z) - y * z)).sum())

    a, b = 0.0, 0.0
    cur = loss(a, b)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(a * x + b, -50, 50)))
        g = np.array([(cw * (p - y) * x).sum(), (cw * (p - y)).sum()])
        w = cw * p * (1 - p) + 1e-9
        h = np.array([[(w * x * x).sum(), (w * x).sum()], [(w * x).sum(), w.sum()]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6 and loss(a - t * step[0], b - t * step[1]) > cur:
            t /= 2
        a, b = a - t * step[0], b - t * step[1]
        new = loss(a, b)
        if cur - new < 1e-12:
            break
        cur = new
    # back to raw logits: a*(l - mu)/sd + b
    return float(a / sd), float(b - a * mu / sd)


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10, balanced: bool = True) -> float:
    """Expected calibration error (10 equal-width bins), class-balanced by default like the fit."""
    w = class_weights(y) if balanced else np.ones(len(y))
    edges = np.linspace(0, 1, bins + 1)
    tot = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if m.any():
            wm = w[m]
            tot += wm.sum() / w.sum() * abs((wm * p[m]).sum() / wm.sum() - (wm * y[m]).sum() / wm.sum())
    return float(tot)


def crossfit_ece(logits: np.ndarray, labels: np.ndarray, sources: list[str], k: int = 4) -> float:
    """ECE where each source's calibrated p comes from a Platt fit on the other source groups."""
    from types import SimpleNamespace

    fold = grouped_folds([SimpleNamespace(source=s, label=int(y)) for s, y in zip(sources, labels, strict=True)], k)
    fold_a = np.array(fold)
    p = np.zeros(len(labels))
    for f in range(k):
        te = fold_a == f
        a, b = fit_platt(logits[~te], labels[~te])
        p[te] = 1 / (1 + np.exp(-(a * logits[te] + b)))
    return ece(p, labels)


def uncertain_band(p: np.ndarray, y: np.ndarray, precision: float = 0.8, min_share: float = 0.02) -> dict:
    """Thresholds outside which the calibrated p_fake earned `precision` on held-out data (balanced prior).

    low: largest t with P(real | p <= t) >= precision; high: smallest t with P(fake | p >= t) >= precision.
    Where no such t covers at least `min_share` of that class, the side stays closed (0.0 or 1.0): the
    detector then never claims that side on its own.
    """
    w = class_weights(y)
    low, high = 0.0, 1.0
    for t in np.unique(np.round(p, 3)):
        m = p <= t
        if w[m & (y == 0)].sum() / max(w[m].sum(), 1e-9) >= precision and (m & (y == 0)).sum() >= min_share * (y == 0).sum():
            low = float(t)
    for t in np.unique(np.round(p, 3))[::-1]:
        m = p >= t
        if w[m & (y == 1)].sum() / max(w[m].sum(), 1e-9) >= precision and (m & (y == 1)).sum() >= min_share * (y == 1).sum():
            high = float(t)
    low, high = min(low, 0.5), max(high, 0.5)
    cover = {"real_below_low": float(((p <= low) & (y == 0)).sum() / max(1, (y == 0).sum())),
             "fake_above_high": float(((p >= high) & (y == 1)).sum() / max(1, (y == 1).sum())),
             "fake_below_low": float(((p <= low) & (y == 1)).sum() / max(1, (y == 1).sum())),
             "real_above_high": float(((p >= high) & (y == 0)).sum() / max(1, (y == 0).sum()))}
    return {"low": low, "high": high, "target_precision": precision, "oof_rates": cover}


# ---------------------------------------------------------------- export

def _clean(obj):
    """NaN -> None so the JSON is strict."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def export_onnx(net: LocalNet | StudentNet, path: Path) -> None:
    wrapper = MapOnly(net).eval()
    dummy = torch.zeros(2, 3, 96, 96)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapper, dummy, str(path), input_names=["tiles"], output_names=["logit_map"],
                      dynamic_axes={"tiles": {0: "n", 2: "h", 3: "w"}, "logit_map": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)


def train_builtin(data: Path, out: Path, seed: int = 0, epochs: int = 1, *, mode: str = "aligned",
                  steps_per_epoch: int = 2000, batch: int = 32, crop: int = 64, cv_folds: int = 4, taesd: Path | None = None,
                  recon_cache: Path | None = None, threads: int = 2, limit_per_source: int | None = None,
                  holdout_sources: tuple[str, ...] = ("headshot_classification",), cv_from: Path | None = None,
                  luma: bool = False, norm_q: int = 0, width: int = 32, tile: int = TILE, grid: int = MAX_GRID,
                  consistency: float = 0.0, balance_history: bool = False, lossless_q: int = 0,
                  downscale: float = 1.0, resample: str = "box", views: int = 8, teacher_cache: Path | None = None,
                  lr: float = 2e-3,
                  log=print) -> dict:
    """Train the shipped detector. Writes out/builtin.onnx and out/builtin.json (calibration, thresholds).

    With cv_folds >= 2 the same recipe is first run under source-grouped CV; its out-of-fold logits fit
    the Platt calibration and the uncertainty band, and the metrics go into the JSON. `holdout_sources`
    are left out of the final fit (they stay in the CV) so the shipped model can be tested on them.
    `epochs` scales the number of optimiser steps (steps_per_epoch each): crops are drawn at random.
    `cv_from`: the JSON written by `python -m train.validate --json` for the very same recipe; its
    out-of-fold logits are used instead of re-running the cross-validation.
    """
    seed_everything(seed)  # the shared seed helper (train/common.py); local RNGs below are seeded too
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    items = load_pool(data, limit_per_source=limit_per_source)
    log(f"pool: {len(items)} images ({sum(it.label for it in items)} fake)")
    tdir = Path(taesd) if taesd else (data if data.is_dir() else data.parent).parent / "models" / "taesd"
    recon, teacher = None, None
    if mode == "distill":
        teacher = teacher_bank(items, tdir, teacher_cache, views, seed, tile, downscale, grid, threads, resample, log=log)
    if mode in ("aligned", "mix"):
        if recon_cache is None or not Path(recon_cache).exists():
            from .data import build_recon_cache

            recon_cache = Path(recon_cache) if recon_cache else out / "recon_cache.npz"
            build_recon_cache(items, tdir, recon_cache, size=128, per_image=1, seed=seed)
        recon = Recon.load(Path(recon_cache))
    recipe = Recipe(mode=mode, steps=max(1, steps_per_epoch * epochs), batch=batch, crop=crop, seed=seed,
                    threads=threads, luma=luma, norm_q=norm_q, width=width, tile=tile, grid=grid,
                    consistency=consistency, balance_history=balance_history, lossless_q=lossless_q,
                    downscale=downscale, resample=resample, views=views, lr=lr)
    meta: dict = {"recipe": asdict(recipe), "pool_images": len(items), "tile": recipe.tile, "max_grid": recipe.grid,
                  "downscale": recipe.downscale, "resample": recipe.resample,
                  "jpeg_quality": recipe.norm_q, "lossless_jpeg_quality": recipe.lossless_q,
                  "logit_clip": LOGIT_CLIP,
                  "pool_fakes": sum(it.label for it in items)}
    a, b = 1.0, 0.0
    cv = None
    if cv_from is not None:
        cv = json.loads(Path(cv_from).read_text())
        mine = {k: v for k, v in asdict(recipe).items() if k != "threads"}
        theirs = {k: v for k, v in cv["recipe"].items() if k != "threads"}
        # validation runs made before these options existed used these values
        for key, old in (("luma", False), ("norm_q", 0), ("tile", 96), ("grid", 3), ("consistency", 0.0),
                         ("balance_history", False), ("lossless_q", 0), ("downscale", 1.0), ("views", 8),
                         ("resample", "box")):
            theirs.setdefault(key, old)
        if mine != theirs:
            raise ValueError(f"cv_from was run with another recipe: {theirs} != {mine}")
    elif cv_folds >= 2:
        cv = cross_validate(items, recipe, recon, k=cv_folds, log=log, teacher=teacher)
    if cv is not None:
        # the detector clips the image logit the same way: a few flat or saturated tiles give huge logits
        logits = np.clip(np.array(cv["oof_logits"]), -LOGIT_CLIP, LOGIT_CLIP)
        labels = np.array(cv["oof_labels"])
        a, b = fit_platt(logits, labels)
        p = 1 / (1 + np.exp(-(a * logits + b)))
        meta["cv"] = {k: v for k, v in cv.items() if not k.startswith("oof_")}
        meta["cv"]["ece_raw"] = ece(1 / (1 + np.exp(-logits)), labels)
        meta["cv"]["ece_calibrated"] = ece(p, labels)
        meta["cv"]["ece_calibrated_crossfit"] = crossfit_ece(logits, labels, cv["oof_sources"])
        # 0.9, not 0.8: a weak detector should open a side of the band only where it is rarely wrong
        meta["uncertain"] = uncertain_band(p, labels, precision=BAND_PRECISION)
        out.mkdir(parents=True, exist_ok=True)
        (out / "cv_oof.json").write_text(json.dumps({k: cv[k] for k in ("oof_logits", "oof_labels", "oof_sources")}))
    train_ids = [i for i, it in enumerate(items) if it.source not in set(holdout_sources)]
    net = train_model(items, train_ids, recipe, recon, log=log, teacher=teacher)
    export_onnx(net, out / "builtin.onnx")
    torch.save(net.state_dict(), out / "builtin.pt")
    meta["calibration"] = {"method": "platt-class-balanced", "a": a, "b": b,
                           "formula": "p_fake = sigmoid(a * mean_tile_logit + b)"}
    meta.setdefault("uncertain", {"low": 0.3, "high": 0.7, "note": "no cross-validation run: default band"})
    meta["recon_matched"] = bool(recon.matched) if recon is not None else None
    meta["holdout_sources"] = sorted(set(holdout_sources))
    meta["train_images"] = len(train_ids)
    meta["train_seconds"] = round(time.time() - t0, 1)
    meta["seed"] = seed
    params = sum(p.numel() for p in net.parameters())
    if mode == "distill":
        meta["model"] = (f"StudentNet(width={recipe.width}) CNN on 2x-reduced tiles, {params} params, regressing the "
                         "TAEF2 latent-cycle score")
        meta["teacher"] = {**teacher.params, "tiles": len(teacher.score), "mean": net.teacher_mean, "std": net.teacher_std}
    else:
        meta["model"] = f"LocalNet(width={recipe.width}, luma={recipe.luma}) high-pass residual CNN, {params} params"
    meta["version"] = (f"builtin-{mode}-w{recipe.width}-t{recipe.tile}" + (f"-d{recipe.downscale:g}" if recipe.downscale != 1 else "")
                       + (f"-q{recipe.norm_q}" if recipe.norm_q else "")
                       + (f"-l{recipe.lossless_q}" if recipe.lossless_q else "") + f"-s{seed}")
    meta["weights_file"] = "builtin.onnx"
    meta["weights_sha256"] = hashlib.sha256((out / "builtin.onnx").read_bytes()).hexdigest()
    (out / "builtin.json").write_text(json.dumps(_clean(meta), indent=1))
    return meta


def main() -> None:
    """python -m train.builtin --data DATA --out OUT --seed S --epochs E [--mode aligned|mix|pool] ..."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--mode", default="aligned", choices=["aligned", "mix", "pool", "distill"])
    ap.add_argument("--steps-per-epoch", type=int, default=2000)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cv-folds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--taesd", type=Path)
    ap.add_argument("--recon-cache", type=Path)
    ap.add_argument("--holdout", nargs="*", default=["headshot_classification"],
                    help="sources left out of the final fit (default: the one the shipped test measures)")
    ap.add_argument("--luma", action="store_true", help="luma high-pass + NPR input instead of RGB (round 3)")
    ap.add_argument("--cv-from", type=Path, help="validate JSON of the same recipe (skips re-running the CV)")
    ap.add_argument("--norm-q", type=int, default=0, help="JPEG re-encoding quality before the net (0 = off)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--tile", type=int, default=TILE)
    ap.add_argument("--grid", type=int, default=MAX_GRID)
    ap.add_argument("--consistency", type=float, default=0.0, help="weight of the JPEG q85-95 invariance penalty")
    ap.add_argument("--balance-history", action="store_true", help="pool/mix: equal JPEG-history share per class")
    ap.add_argument("--lossless-q", type=int, default=0, help="re-encode tiles of lossless files at this quality")
    ap.add_argument("--downscale", type=float, default=1.0, help="cut tiles this many times larger, shrink them to --tile")
    ap.add_argument("--resample", default="box", choices=["box", "bicubic"], help="how --downscale shrinks a tile")
    ap.add_argument("--views", type=int, default=8, help="distill: augmented crops per image for the teacher")
    ap.add_argument("--teacher-cache", type=Path, help="distill: teacher scores to reuse or create (.npz)")
    a = ap.parse_args()
    meta = train_builtin(a.data, a.out, seed=a.seed, epochs=a.epochs, mode=a.mode, steps_per_epoch=a.steps_per_epoch,
                         batch=a.batch, crop=a.crop, cv_folds=a.cv_folds, taesd=a.taesd, recon_cache=a.recon_cache,
                         threads=a.threads, holdout_sources=tuple(a.holdout), cv_from=a.cv_from, luma=a.luma,
                         norm_q=a.norm_q, width=a.width, tile=a.tile, grid=a.grid, consistency=a.consistency,
                         balance_history=a.balance_history, lossless_q=a.lossless_q, downscale=a.downscale,
                         resample=a.resample, views=a.views, teacher_cache=a.teacher_cache, log=lambda *m: print(*m, flush=True))
    print(json.dumps(_clean({k: v for k, v in meta.items() if k != "cv"}), indent=1))
    if "cv" in meta:
        print(f"CV pooled AUC {meta['cv']['pooled_auc']:.3f} mean per-source {meta['cv']['mean_source_auc']:.3f} "
              f"flip delta {meta['cv']['format_flip_delta']:+.3f} ECE {meta['cv']['ece_calibrated']:.3f}")


if __name__ == "__main__":
    main()
