"""Recipes tried for the builtin detector that did not beat the baseline, kept so the figures in the
model card can be reproduced (python -m train.explore features|predictive|recon DATA).

features   - 23 hand-crafted statistics (noise residual level/kurtosis, cross-channel residual
             correlation, chroma/luma residual ratio, saturation, colourfulness, spectral slope and
             periodic peaks, NPR ratio, rich/poor texture contrast, gradient kurtosis) of a 256-px centre
             crop re-encoded as JPEG q80 (or raw with --raw), class-balanced logistic regression; 4-fold
             source-grouped CV repeated over 3 fold assignments.
predictive - "zero-shot" style: a blind-spot pixel predictor (each pixel's Laplace mean and scale from its
             7x7 neighbourhood without the pixel itself) trained on the training folds' REAL photos only;
             an image scores by how much less surprising its pixels are than the predictor expects
             (mean NLL minus mean predicted entropy), and by a logistic regression over 9 such statistics.
recon      - zero-shot, AEROBLADE-style (Ricker et al., CVPR 2024): a generated image should be reconstructed
             by an autoencoder better than a photo is. A 128-px (--crop) centre crop through TAEF2; scores: minus the
             log reconstruction error (plain, and of vertical pixel differences), each also relative to the
             crop's own high-frequency energy (log mean squared Laplacian), so that content complexity cancels.
             Also a second pass ("double reconstruction"): the reconstruction's own error, so the autoencoder
             normalises itself, and the distance between the latents of the crop and of its reconstruction.
             No training: every image's score is out of sample. Format flip as elsewhere (fakes JPEG q90).
             With --cv-json (a train.validate JSON of the same pool) also a class-balanced logistic regression
             over these statistics, alone and with the CNN's out-of-fold logits, fitted in the same
             source-grouped folds (does a learnt combination beat its parts across sources?), and a fixed one:
             the mean of the standardised CNN logit and latent cycle score.
distill    - can a small, fast CNN imitate the zero-shot `cycle` detector? (--model: its ONNX file.) The
             teacher's per-tile score on the detector's own half-scale 64-px tiles is the regression target
             (no labels used); the student trains on the tiles of three source groups and is tested on the
             fourth (--fold): tile correlation with the teacher, and both AUCs on that group's images.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from .builtin import jpeg_q, summarise
from .data import Item, apply_aug, grouped_folds, load_pool, sample_aug


def jpeg(arr: np.ndarray, q: int) -> np.ndarray:
    """jpeg_q, with 0 meaning the raw pixels."""
    return jpeg_q(arr, q) if q else arr


def centre_crop(arr: np.ndarray, size: int = 256) -> np.ndarray:
    h, w = arr.shape[:2]
    s = min(size, h, w) // 8 * 8
    y, x = (h - s) // 2 // 8 * 8, (w - s) // 2 // 8 * 8
    return arr[y : y + s, x : x + s]


def handcrafted(a: np.ndarray) -> list[float]:
    from scipy import ndimage, stats

    f = a.astype(np.float32)
    lum = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    lap = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)
    res = ndimage.convolve(lum, lap, mode="reflect")
    rc = [ndimage.convolve(f[..., c], lap, mode="reflect") for c in range(3)]
    cb = -0.1687 * f[..., 0] - 0.3313 * f[..., 1] + 0.5 * f[..., 2]
    cr = 0.5 * f[..., 0] - 0.4187 * f[..., 1] - 0.0813 * f[..., 2]
    chroma = np.abs(ndimage.convolve(cb, lap, mode="reflect")).mean() + np.abs(ndimage.convolve(cr, lap, mode="reflect")).mean()
    mx, mn = f.max(-1), f.min(-1)
    sat = (mx - mn) / (mx + 1)
    rg, yb = f[..., 0] - f[..., 1], 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    s = lum.shape[0]
    power = np.abs(np.fft.fftshift(np.fft.fft2(lum - lum.mean()))) ** 2
    yy, xx = np.indices(power.shape)
    radius = np.hypot(yy - s / 2, xx - s / 2) / (s / 2)
    edges = np.linspace(0.05, 1.0, 20)
    profile = [np.log(power[(radius >= lo) & (radius < hi)].mean() + 1e-6) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    rspec = np.abs(np.fft.fft2(res)) ** 2
    rspec /= rspec.mean()
    peaks = [np.log(rspec[s // p, 0] + rspec[0, s // p] + 1e-6) for p in (2, 4, 8)]
    even = lum[: s // 2 * 2, : s // 2 * 2]
    npr = even - np.kron(even.reshape(s // 2, 2, s // 2, 2).mean((1, 3)), np.ones((2, 2)))
    n = s // 32
    patch = np.sort(np.abs(res[: n * 32, : n * 32]).reshape(n, 32, n, 32).mean((1, 3)).ravel())
    quarter = max(1, len(patch) // 4)
    grad = np.hypot(ndimage.sobel(lum, 1), ndimage.sobel(lum, 0))
    mean_res = np.abs(res).mean() + 0.1
    return [
        np.log(np.median(np.abs(res)) + 0.1), float(stats.kurtosis(res.ravel())),
        float(np.corrcoef(rc[0].ravel(), rc[1].ravel())[0, 1]), float(np.corrcoef(rc[1].ravel(), rc[2].ravel())[0, 1]),
        np.log((chroma + 0.1) / mean_res), sat.mean(), np.percentile(sat, 95),
        np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2), lum.std(),
        float(((f <= 2) | (f >= 253)).mean()), np.polyfit(np.log(edges[:-1]), profile, 1)[0],
        profile[-1] - profile[len(profile) // 2], *peaks, np.log(np.abs(npr).mean() + 0.1) - np.log(mean_res),
        np.log(patch[-quarter:].mean() + 0.1) - np.log(patch[:quarter].mean() + 0.1), float((patch < 1.0).mean()),
        float(stats.kurtosis(grad.ravel())),
        np.log(np.abs(ndimage.convolve(res, lap, mode="reflect")).mean() + 0.1) - np.log(mean_res),
    ]


def balanced_lr(x_train: np.ndarray, y_train: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    w = np.where(y_train == 1, 0.5 / (y_train == 1).sum(), 0.5 / (y_train == 0).sum()) * len(y_train)
    model = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x_train), y_train, sample_weight=w)
    return lambda x: model.decision_function(scaler.transform(x))


def report(name: str, items: list, scores: np.ndarray, flip: np.ndarray | None = None) -> dict:
    r = summarise(items, scores, flip)
    extra = f" flip {r['format_flip_delta']:+.3f}" if flip is not None else ""
    print(f"{name}: pooled {r['pooled_auc']:.3f} mean per-source {r['mean_source_auc']:.3f} "
          f"within {r['mean_within_source_auc']:.3f}{extra}", flush=True)
    return r


def run_features(items: list[Item], quality: int) -> None:
    t0 = time.time()
    feats = np.nan_to_num(np.array([handcrafted(jpeg(centre_crop(it.arr), quality)) for it in items]))
    flips = np.nan_to_num(np.array([handcrafted(jpeg(centre_crop(jpeg(it.arr, 90) if it.label else it.arr), quality))
                                    for it in items]))
    print(f"features of {len(items)} images in {time.time() - t0:.0f}s")
    y = np.array([it.label for it in items])
    for seed in (0, 1, 2):
        folds = np.array(grouped_folds(items, 4, seed=seed))
        score, flip = np.zeros(len(y)), np.zeros(len(y))
        for f in range(4):
            tr, te = folds != f, folds == f
            predict = balanced_lr(feats[tr], y[tr], 0.1)
            score[te], flip[te] = predict(feats[te]), predict(flips[te])
        report(f"features q{quality} LR, fold seed {seed}", items, score, flip)


def run_predictive(items: list[Item], quality: int, steps: int, threads: int) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)

    class BlindSpot(nn.Module):
        def __init__(self, k: int = 7, w: int = 32) -> None:
            super().__init__()
            self.k = k
            self.first = nn.Conv2d(3, w, k)
            mask = torch.ones(1, 1, k, k)
            mask[..., k // 2, k // 2] = 0  # the pixel itself is never seen
            self.register_buffer("mask", mask)
            self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(w, w, 1), nn.ReLU(), nn.Conv2d(w, w, 1), nn.ReLU(), nn.Conv2d(w, 6, 1))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = F.conv2d(F.pad((x - 128) / 64, [self.k // 2] * 4, mode="reflect"), self.first.weight * self.mask, self.first.bias)
            o = self.head(h)
            log_b = o[:, 3:].clamp(-4, 6)
            nll = (x - (128 + 64 * o[:, :3])).abs() / log_b.exp() + log_b + np.log(2)
            return nll[..., 3:-3, 3:-3], (1 + log_b + np.log(2))[..., 3:-3, 3:-3]

    def tiles(arr: np.ndarray) -> torch.Tensor:
        from fakescope_cli.detectors.tiling import extract_tiles

        batch, _, _, _ = extract_tiles(arr, 64, 3, quality)
        return torch.from_numpy(batch)

    @torch.no_grad()
    def statistics(net: nn.Module, arr: np.ndarray) -> list[float]:
        nll, ent = net(tiles(arr))
        gap = nll - ent
        e, g = ent.mean(1).flatten(), gap.mean(1).flatten()
        lo, hi = torch.quantile(e, torch.tensor([0.25, 0.75]))
        return [nll.mean().item(), ent.mean().item(), gap.mean().item(), g[e <= lo].mean().item(),
                g[e >= hi].mean().item(), e[e <= lo].mean().item(), e[e >= hi].mean().item(),
                gap.abs().mean().item(), g.std().item()]

    y = np.array([it.label for it in items])
    folds = np.array(grouped_folds(items, 4, seed=0))
    score, flip, zero, zero_flip = (np.zeros(len(y)) for _ in range(4))
    for f in range(4):
        tr, te = np.where(folds != f)[0], np.where(folds == f)[0]
        reals = [i for i in tr if y[i] == 0]
        torch.manual_seed(f)
        rng = random.Random(f)
        net = BlindSpot()
        opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.1)
        for _ in range(steps):
            crops = [jpeg(apply_aug(items[rng.choice(reals)].arr, 64, sample_aug(rng)), quality) for _ in range(32)]
            loss = net(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float())[0].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        stats_all = np.array([statistics(net, it.arr) for it in items])
        stats_flip = np.array([statistics(net, jpeg(items[i].arr, 90) if y[i] else items[i].arr) for i in te])
        predict = balanced_lr(stats_all[tr], y[tr], 0.3)
        score[te], flip[te] = predict(stats_all[te]), predict(stats_flip)
        zero[te], zero_flip[te] = -stats_all[te, 2], -stats_flip[:, 2]
        print(f"fold {f} done", flush=True)
    report(f"predictive q{quality}, zero-shot (-gap)", items, zero, zero_flip)
    report(f"predictive q{quality}, LR over 9 statistics", items, score, flip)


RECON_STATS = ("log recon MSE", "log recon MSE of differences", "log HF energy", "log MSE of the second pass",
               "log latent cycle distance", "log latent variance")


def recon_errors(ae, arr: np.ndarray, size: int = 128) -> list[float]:
    """RECON_STATS of a centre crop (128 px by default): x -> E -> z1 -> D -> r1 -> E -> z2 -> D -> r2."""
    import torch

    a = centre_crop(arr, size)
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255.0  # a writable copy for torch
    with torch.no_grad():
        z1 = ae.encoder(x)
        r1 = ae.decoder(z1).clamp(0.0, 1.0)
        z2 = ae.encoder(r1)
        r2 = ae.decoder(z2).clamp(0.0, 1.0)

    def vdiff(t: torch.Tensor) -> torch.Tensor:
        return t[..., 1:, :] - t[..., :-1, :]

    def log_mse(p: torch.Tensor, q: torch.Tensor) -> float:
        return float(np.log(((p - q) ** 2).mean().item() + 1e-9))

    lum = x.mean(1)
    lap = 4 * lum[:, 1:-1, 1:-1] - lum[:, :-2, 1:-1] - lum[:, 2:, 1:-1] - lum[:, 1:-1, :-2] - lum[:, 1:-1, 2:]
    return [log_mse(r1, x), log_mse(vdiff(r1), vdiff(x)), float(np.log((lap ** 2).mean().item() + 1e-9)),
            log_mse(r2, r1), log_mse(z2, z1), float(np.log(z1.var().item() + 1e-9))]


def run_recon(items: list[Item], data: Path, threads: int, cv_json: Path | None = None, size: int = 128) -> None:
    import torch

    from .taef2 import TAEF2

    torch.set_num_threads(threads)
    ae = TAEF2(data.parent / "models" / "taesd")
    t0 = time.time()
    errs = np.array([recon_errors(ae, it.arr, size) for it in items])
    # a real's flip is the same pixels in a PNG: its crop and score do not change
    flips = np.array([recon_errors(ae, jpeg(it.arr, 90), size) if it.label else errs[i] for i, it in enumerate(items)])
    print(f"TAEF2 reconstructions of {size}-px crops of {len(items)} images (+ {sum(it.label for it in items)} flipped) in "
          f"{time.time() - t0:.0f}s")
    # scores: higher = more likely generated
    for name, col in (("-log recon MSE", lambda e: -e[:, 0]), ("-log recon MSE of differences", lambda e: -e[:, 1]),
                      ("-(log recon MSE - log HF energy)", lambda e: e[:, 2] - e[:, 0]),
                      ("-(log recon MSE of differences - log HF energy)", lambda e: e[:, 2] - e[:, 1]),
                      ("-(log recon MSE - log MSE of the second pass)", lambda e: e[:, 3] - e[:, 0]),
                      ("-(log latent cycle distance - log latent variance)", lambda e: e[:, 5] - e[:, 4])):
        report(f"zero-shot {name}", items, col(errs), col(flips))
    if cv_json is None:
        return
    import json

    cv = json.loads(cv_json.read_text())
    if cv["oof_sources"] != [it.source for it in items]:
        raise SystemExit(f"{cv_json} was not computed on this pool (sources differ)")
    cnn = np.array(cv["oof_logits"])
    y = np.array([it.label for it in items])
    folds = np.array(grouped_folds(items, int(cv.get("k", 4)), seed=int(cv["recipe"]["seed"])))
    for name, feats in (("LR over the recon statistics", errs),
                        ("LR over the recon statistics + CNN out-of-fold logit", np.c_[errs, cnn])):
        score = np.zeros(len(y))
        for f in sorted(set(folds)):
            tr, te = folds != f, folds == f
            score[te] = balanced_lr(feats[tr], y[tr], 0.1)(feats[te])
        report(f"learnt, same folds as {cv_json.name}: {name}", items, score)
    # a combination fixed in advance instead: equal weights on the two scores standardised over the whole
    # pool (no labels used), the CNN's out-of-fold logit and the latent cycle score
    latent, latent_flip = errs[:, 5] - errs[:, 4], flips[:, 5] - flips[:, 4]

    def fused(c: np.ndarray, lat: np.ndarray) -> np.ndarray:  # standardised with the unflipped pool's statistics
        return (c - cnn.mean()) / cnn.std() + (lat - latent.mean()) / latent.std()

    cnn_flip = cv.get("oof_flip_logits")  # absent from CV JSONs written before it was kept
    report("fixed: mean of z-scores, CNN out-of-fold logit + latent cycle score", items, fused(cnn, latent),
           None if cnn_flip is None else fused(np.array(cnn_flip), latent_flip))


def run_distill(items: list[Item], model: Path, width: int, steps: int, fold: int, threads: int) -> None:
    import torch
    from scipy.stats import pearsonr, spearmanr
    from torch import nn

    from fakescope_cli.detectors.calibrated import OnnxSession
    from fakescope_cli.detectors.tiling import scaled_tiles

    from .builtin import auc

    torch.set_num_threads(threads)
    folds = np.array(grouped_folds(items, 4, seed=0))
    sess = OnnxSession.get(model, threads)
    t0 = time.time()
    tiles, target, owner = [], [], []
    for i, it in enumerate(items):
        tl = scaled_tiles(it.arr, 64, 3, 2.0, multiple=8)[0]
        if tl.shape[-1] != 64:  # only full-size tiles: one input size for the student
            continue
        stats = sess.run(None, {sess.get_inputs()[0].name: tl})[0]
        tiles.extend(tl)
        target.extend(stats[:, 1] - stats[:, 0])
        owner.extend([i] * len(tl))
    x_all = torch.from_numpy(np.stack(tiles)) / 255.0 - 0.5
    t_all, owner_a = np.array(target), np.array(owner)
    tz = torch.from_numpy(((t_all - t_all.mean()) / t_all.std()).astype(np.float32))
    tr, te = np.where(folds[owner_a] != fold)[0], np.where(folds[owner_a] == fold)[0]
    print(f"teacher scores of {len(t_all)} tiles in {time.time() - t0:.0f}s", flush=True)

    def cbr(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    w = width
    net = nn.Sequential(*cbr(3, w), *cbr(w, w, 2), *cbr(w, w), *cbr(w, 2 * w, 2), *cbr(2 * w, 2 * w),
                        *cbr(2 * w, 2 * w, 2), nn.Conv2d(2 * w, 1, 1))
    torch.manual_seed(0)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        b = rng.choice(tr, 64)
        xb = x_all[b].flip(3) if rng.random() < 0.5 else x_all[b]
        loss = ((net(xb).mean((1, 2, 3)) - tz[b]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x_all[i:i + 512]).mean((1, 2, 3)) for i in range(0, len(x_all), 512)]).numpy()
    y = np.array([it.label for it in items])
    imgs = sorted({int(i) for i in owner_a[te]})
    teacher = np.array([t_all[owner_a == i].mean() for i in imgs])
    student = np.array([pred[owner_a == i].mean() for i in imgs])
    params = sum(p.numel() for p in net.parameters())
    print(f"student width {w} ({params} parameters), {steps} steps: held-out tiles Pearson "
          f"{pearsonr(pred[te], t_all[te])[0]:.3f}, Spearman {spearmanr(pred[te], t_all[te])[0]:.3f}; "
          f"held-out group's {len(imgs)} images: teacher AUC {auc(teacher, y[imgs]):.3f}, "
          f"student AUC {auc(student, y[imgs]):.3f} ({time.time() - t0:.0f}s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["features", "predictive", "recon", "distill"])
    ap.add_argument("data", type=Path)
    ap.add_argument("--quality", type=int, default=80, help="JPEG re-encoding before measuring (0 = raw pixels)")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cv-json", type=Path, default=None, help="recon: also fit learnt combinations (see above)")
    ap.add_argument("--crop", type=int, default=128, help="recon: side of the centre crop")
    ap.add_argument("--model", type=Path, default=None, help="distill: the cycle detector's ONNX file")
    ap.add_argument("--width", type=int, default=32, help="distill: student width")
    ap.add_argument("--fold", type=int, default=3, help="distill: the held-out source group (0-3)")
    a = ap.parse_args()
    items = load_pool(a.data)
    if a.what == "features":
        run_features(items, a.quality)
    elif a.what == "recon":
        run_recon(items, a.data, a.threads, a.cv_json, a.crop)
    elif a.what == "distill":
        run_distill(items, a.model, a.width, a.steps, a.fold, a.threads)
    else:
        run_predictive(items, a.quality, a.steps, a.threads)


if __name__ == "__main__":
    main()
