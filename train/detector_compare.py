"""Feature sources for a fitted detector, compared on the pool: cross-source and within-collection figures.

    python -m train.detector_compare ../shared/data --cycle-model FILE.onnx --cache build/features \
        --json build/detector_compare.json [--splits 20] [--threads 2]

Feature sources: EfficientNet-Lite0's 1280 pooled ImageNet features (train/backbone.py) on the
`resize` view, on the `crop` view, and both; the builtin student's score (the mean over its tiles, and
their spread, min and max); the `cycle` detector's score (the same four statistics); and combinations.
Every source gets the same head (standardisation + logistic regression, classes weighted equally).

* cross-source: 4-fold cross-validation grouped by source (train.data.grouped_folds, the builtin card's
  protocol), pooled AUC and the mean per-source AUC with its 95% interval over sources;
* within-collection: for every pool source with at least 10 images of each label, train on a random
  half (stratified) and score the other half, repeated --splits times: mean AUC and the 2.5-97.5
  percentiles over the splits.
The builtin and cycle scores are also reported as they are (zero-shot, no head) for reference.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .builtin import auc, mean_ci95, per_source_table, source_aucs
from .detector import DEFAULT_C, Head, extract_features, out_of_fold


def load_manifest(data: Path) -> list[dict[str, str]]:
    with (data / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def cached(path: Path, make) -> np.ndarray:
    if path.is_file():
        return np.load(path)["x"]
    x = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=x)
    return x


def effnet_features(paths: list[str], view: str, threads: int) -> np.ndarray:
    x, kept = extract_features(paths, view, threads)
    if len(kept) != len(paths):
        raise SystemExit(f"{len(paths) - len(kept)} pool images did not decode")
    return x


def tile_statistics(scores: np.ndarray) -> np.ndarray:
    return np.array([scores.mean(), scores.std(), scores.min(), scores.max()], dtype=np.float32)


def builtin_features(paths: list[str]) -> np.ndarray:
    """The builtin detector's tile logits (its own code path), summarised per image."""
    from fakescope_cli.detectors.builtin import BuiltinDetector
    from fakescope_cli.media import Media

    det = BuiltinDetector(threads=1)
    out = []
    for p in paths:
        res = det.analyze(Media.open(p))
        tiles = np.array([[np.log(v / (1 - v)) for v in row] for row in res.regions["p_fake"]]).ravel()
        out.append(np.r_[res.raw["logit"], tile_statistics(tiles)[1:]])
    return np.array(out, dtype=np.float32)


def cycle_features(paths: list[str], model: Path) -> np.ndarray:
    from fakescope_cli.detectors.calibrated import OnnxSession
    from fakescope_cli.detectors.cycle import cycle_tile_scores
    from fakescope_cli.media import Media

    session = OnnxSession.get(model, 2)
    out = []
    for p in paths:
        scores, *_ = cycle_tile_scores(session, Media.open(p).rgb(), 64, 3, 2.0)
        out.append(tile_statistics(scores))
    return np.array(out, dtype=np.float32)


def cross_source(x: np.ndarray, items: list[SimpleNamespace], folds: np.ndarray, c: float) -> dict:
    y = np.array([it.label for it in items])
    scores = out_of_fold(x, y, folds, c)
    return summarise(items, scores)


def summarise(items: list[SimpleNamespace], scores: np.ndarray) -> dict:
    y = np.array([it.label for it in items])
    table = per_source_table(items, scores)
    vals = source_aucs(table)
    return {"pooled_auc": auc(scores, y), "mean_source_auc": float(np.nanmean(vals)),
            "mean_source_auc_ci95": mean_ci95(vals), "sources": table}


def within_collection(x: np.ndarray, items: list[SimpleNamespace], splits: int, c: float, seed: int = 0) -> dict:
    y = np.array([it.label for it in items])
    src = np.array([it.source for it in items])
    out = {}
    for s in sorted(set(src)):
        m = np.flatnonzero(src == s)
        if min((y[m] == 1).sum(), (y[m] == 0).sum()) < 10:
            continue
        rng = np.random.default_rng(seed)
        aucs = []
        for _ in range(splits):
            train = np.zeros(len(m), bool)
            for lab in (0, 1):
                idx = np.flatnonzero(y[m] == lab)
                train[rng.permutation(idx)[: len(idx) // 2]] = True
            head = Head(c).fit(x[m[train]], y[m[train]])
            aucs.append(auc(head.logit(x[m[~train]]), y[m[~train]]))
        lo, hi = np.percentile(aucs, [2.5, 97.5])
        out[s] = {"n_fake": int((y[m] == 1).sum()), "n_real": int((y[m] == 0).sum()), "auc": float(np.mean(aucs)),
                  "range95": (float(lo), float(hi)), "splits": splits}
    return out


def main() -> None:
    from .data import grouped_folds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--cycle-model", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=Path("build/features"))
    ap.add_argument("--json", type=Path, default=Path("build/detector_compare.json"))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--c", type=float, nargs="+", default=[DEFAULT_C])
    ap.add_argument("--only", nargs="+", default=None, metavar="WORD",
                    help="run only the feature sets whose name contains one of these words")
    a = ap.parse_args()
    rows = load_manifest(a.data)
    paths = [str(a.data / r["path"]) for r in rows]
    items = [SimpleNamespace(label=1 if r["label"] == "fake" else 0, source=r["source"]) for r in rows]
    folds = np.array(grouped_folds(items, 4, seed=0))
    t0 = time.time()
    feats = {v: cached(a.cache / f"effnet_{v}.npz", lambda v=v: effnet_features(paths, v, a.threads))
             for v in ("resize", "crop")}
    feats["builtin"] = cached(a.cache / "builtin.npz", lambda: builtin_features(paths))
    if a.cycle_model:
        feats["cycle"] = cached(a.cache / "cycle.npz", lambda: cycle_features(paths, a.cycle_model))
    print(f"features ready in {time.time() - t0:.0f}s")
    sets = {
        "EfficientNet-Lite0, resize view": ["resize"],
        "EfficientNet-Lite0, crop view": ["crop"],
        "EfficientNet-Lite0, both views": ["resize", "crop"],
        "builtin student (tile score statistics)": ["builtin"],
    }
    if "cycle" in feats:
        sets["cycle (tile score statistics)"] = ["cycle"]
        sets["builtin + cycle"] = ["builtin", "cycle"]
        sets["EfficientNet-Lite0 resize + builtin + cycle"] = ["resize", "builtin", "cycle"]
    if a.only:
        sets = {n: k for n, k in sets.items() if any(w in n for w in a.only)}
    results: dict = {"zero_shot": {"builtin": summarise(items, feats["builtin"][:, 0])}, "heads": {}}
    if "cycle" in feats:
        results["zero_shot"]["cycle"] = summarise(items, feats["cycle"][:, 0])
    for name, zs in results["zero_shot"].items():
        lo, hi = zs["mean_source_auc_ci95"]
        print(f"zero-shot {name}: pooled {zs['pooled_auc']:.3f}, mean per-source {zs['mean_source_auc']:.3f} ({lo:.3f}-{hi:.3f})")
    for name, keys in sets.items():
        x = np.concatenate([feats[k] for k in keys], axis=1)
        for c in a.c:
            cs = cross_source(x, items, folds, c)
            wc = within_collection(x, items, a.splits, c)
            lo, hi = cs["mean_source_auc_ci95"]
            results["heads"][f"{name}, C={c}"] = {"cross_source": cs, "within": wc}
            within = ", ".join(f"{s} {r['auc']:.3f} ({r['range95'][0]:.2f}-{r['range95'][1]:.2f})" for s, r in wc.items())
            print(f"{name}, C={c}: cross-source pooled {cs['pooled_auc']:.3f}, mean per-source {cs['mean_source_auc']:.3f} "
                  f"({lo:.3f}-{hi:.3f}); within: {within}", flush=True)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
