"""Source-grouped cross-validation of builtin-detector recipes.

python -m train.validate DATA --mode pool|aligned|mix|distill [--steps N] [--folds K] [--recon cache.npz] [--norm-q Q]
    [--width W] [--tile T] [--grid G] [--json OUT]
Prints per-source AUCs, the mean over sources, pooled AUC and the format-flip delta.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .builtin import Recipe, Recon, cross_validate
from .data import load_pool
from .distill import teacher_bank


def print_report(res: dict, title: str) -> None:
    print(f"== {title}")
    print(f"{'source':28s} {'fake':>5s} {'real':>5s} {'AUC fakes':>10s} {'AUC reals':>10s} {'within':>7s}")
    for s, r in res["sources"].items():
        def f(k: str, r: dict = r) -> str:
            v = r.get(k)
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
        print(f"{s:28s} {r['n_fake']:5d} {r['n_real']:5d} {f('auc_fakes_vs_all_reals'):>10s} "
              f"{f('auc_reals_vs_all_fakes'):>10s} {f('auc_within'):>7s}")
    lo, hi = res.get("mean_source_auc_ci95", (math.nan, math.nan))
    print(f"pooled OOF AUC {res['pooled_auc']:.3f}  mean per-source AUC {res['mean_source_auc']:.3f} "
          f"(95% CI {lo:.3f}-{hi:.3f}, sources resampled)  mean within-source AUC {res['mean_within_source_auc']:.3f}")
    if "format_flip_auc" in res:
        print(f"format flip AUC {res['format_flip_auc']:.3f} (delta {res['format_flip_delta']:+.3f})")
    if "format_flip_by_quality" in res:
        print("format flip delta by JPEG quality: " + ", ".join(f"q{q} {d:+.3f}" for q, d in res["format_flip_by_quality"].items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--mode", default="mix")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--p-jpeg", type=float, default=0.75)
    ap.add_argument("--luma", action="store_true", help="luma high-pass + NPR input instead of RGB")
    ap.add_argument("--norm-q", type=int, default=0, help="JPEG re-encoding quality before the net (0 = off)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--balance-history", action="store_true", help="pool/mix: equal JPEG-history share per class")
    ap.add_argument("--consistency", type=float, default=0.0, help="weight of the JPEG q85-95 invariance penalty")
    ap.add_argument("--lossless-q", type=int, default=0, help="re-encode tiles of lossless files at this quality")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--grid", type=int, default=3)
    ap.add_argument("--recon", type=Path)
    ap.add_argument("--downscale", type=float, default=1.0, help="cut tiles this many times larger, shrink them to --tile")
    ap.add_argument("--resample", default="box", choices=["box", "bicubic"], help="how --downscale shrinks a tile")
    ap.add_argument("--views", type=int, default=8, help="distill: augmented crops per image for the teacher")
    ap.add_argument("--teacher-cache", type=Path, help="distill: teacher scores to reuse or create (.npz)")
    ap.add_argument("--taesd", type=Path, help="distill: TAEF2 folder (default: ../models/taesd beside DATA)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    items = load_pool(a.data)
    recon = Recon.load(a.recon) if a.recon else None
    r = Recipe(mode=a.mode, steps=a.steps, batch=a.batch, crop=a.crop, seed=a.seed, threads=a.threads, p_jpeg=a.p_jpeg,
               luma=a.luma, norm_q=a.norm_q, balance_history=a.balance_history, consistency=a.consistency, lossless_q=a.lossless_q, width=a.width, tile=a.tile, grid=a.grid,
               downscale=a.downscale, resample=a.resample, views=a.views, lr=a.lr)
    teacher = None
    if a.mode == "distill":
        taesd = a.taesd or (a.data if a.data.is_dir() else a.data.parent).parent / "models" / "taesd"
        teacher = teacher_bank(items, taesd, a.teacher_cache, a.views, a.seed, a.tile, a.downscale, a.grid, a.threads, a.resample)
    res = cross_validate(items, r, recon, k=a.folds, teacher=teacher)
    print_report(res, f"{a.mode} steps={a.steps} crop={a.crop} folds={a.folds}")
    if a.json:
        a.json.write_text(json.dumps(res))


if __name__ == "__main__":
    main()
