"""Export and calibrate the opt-in `cycle` detector (fakescope_cli/detectors/cycle.py).

  python -m train.cycle export --taesd DIR --out FILE.onnx
      TAEF2 (own implementation, train/taef2.py) as one ONNX graph: 0..255 tiles -> per tile
      [log latent cycle distance, log latent variance]. The sha256 of the two weight files goes into the
      graph's metadata, so the detector can tell whether its calibration fits. (`fakescope train cycle`.)
  python -m train.cycle validate DATA --model FILE.onnx --json OUT.json [--write-config CYCLE.json] [--cv-json CV.json ...]
      Scores the labelled pool through the detector's own code path (onnxruntime), fakes also re-encoded
      as JPEG q90 (the format flip), and reports pooled, per-source and within-source AUC; fits the Platt
      calibration and the uncertain band on the pool and measures ECE with each source group calibrated on
      the others. --write-config writes the package's weights/cycle.json from those fits.

There is no training: the score is zero-shot, so no source of the pool is ever "held out" or "seen";
the held-out question is only the calibration's (two numbers and a band), answered by the cross-fitted ECE.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

VERSION = "cycle-taef2-t64-g3"  # the ONNX graph's; the detector's version adds the downscale factor


def version(downscale: float) -> str:
    return VERSION if downscale == 1.0 else f"{VERSION}-d{downscale:g}"
TILE, MAX_GRID = 64, 3
BAND_PRECISION = 0.9  # as for builtin: a weak detector opens a side of the band only where it is rarely wrong
# A threshold picked at the target precision in-sample lands a little under it held out even when the signal
# is the same in every source; a side closes only when held-out precision falls clearly short.
HELD_OUT_SLACK = 0.05


def taef2_sha256(taesd: Path) -> str:
    """One digest over the encoder's and the decoder's weight files, in that order."""
    h = hashlib.sha256()
    for name in ("taef2_encoder.pth", "taef2_decoder.pth"):
        h.update(hashlib.sha256((taesd / name).read_bytes()).digest())
    return h.hexdigest()


def export(taesd: Path, out: Path) -> str:
    """Write the ONNX graph; returns the weights' digest recorded in it."""
    import onnx
    import torch

    from fakescope_cli.detectors.cycle import METADATA_KEY

    from .taef2 import TAEF2, CycleStats

    digest = taef2_sha256(taesd)
    net = CycleStats(TAEF2(taesd)).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    torch.onnx.export(net, torch.zeros(2, 3, TILE, TILE), str(tmp), input_names=["tiles"], output_names=["stats"],
                      dynamic_axes={"tiles": {0: "n", 2: "h", 3: "w"}, "stats": {0: "n"}},
                      opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    onnx.helper.set_model_props(model, {METADATA_KEY: digest, "fakescope.model": VERSION})
    onnx.save(model, str(tmp))
    tmp.replace(out)  # a half-written file never sits at the path the detector loads
    return digest


def image_scores(model: Path, arrays: list[np.ndarray], threads: int, downscale: float = 1.0) -> np.ndarray:
    """Mean per-tile score of each image, through the detector's code path."""
    from fakescope_cli.detectors.calibrated import OnnxSession
    from fakescope_cli.detectors.cycle import cycle_tile_scores

    sess = OnnxSession.get(model, threads)
    return np.array([float(cycle_tile_scores(sess, a, TILE, MAX_GRID, downscale)[0].mean()) for a in arrays])


def checked_band(p: np.ndarray, scores: np.ndarray, labels: np.ndarray, sources: list[str], k: int = 4) -> dict:
    """The uncertain band fitted on the pool, each side kept open only if it holds across sources.

    Platt and band are refitted on k-1 source groups and applied to the held-out one; a side whose pooled
    held-out precision (balanced prior) falls below BAND_PRECISION - HELD_OUT_SLACK is closed. Calibration and band are the
    only things fitted to the pool, so this is the held-out check that applies to them.
    """
    from types import SimpleNamespace

    from .builtin import class_weights, fit_platt, grouped_folds, uncertain_band

    band = uncertain_band(p, labels, precision=BAND_PRECISION)
    fold = np.array(grouped_folds([SimpleNamespace(source=s, label=int(y)) for s, y in zip(sources, labels, strict=True)], k))
    w = class_weights(labels)
    hit = {"high": np.zeros(len(labels), bool), "low": np.zeros(len(labels), bool)}
    for f in range(k):
        tr, te = fold != f, fold == f
        a, b = fit_platt(scores[tr], labels[tr])
        p_all = 1 / (1 + np.exp(-(a * scores + b)))
        fold_band = uncertain_band(p_all[tr], labels[tr], precision=BAND_PRECISION)
        hit["high"] |= te & (p_all >= fold_band["high"]) & (fold_band["high"] < 1.0)
        hit["low"] |= te & (p_all <= fold_band["low"]) & (fold_band["low"] > 0.0)
    held = {}
    for side, target in (("high", 1), ("low", 0)):
        m = hit[side]
        held[side] = float(w[m & (labels == target)].sum() / w[m].sum()) if m.any() else None
        held[f"{side}_n"] = {"fake": int((m & (labels == 1)).sum()), "real": int((m & (labels == 0)).sum())}
    band["crossfit_precision"] = held
    band["fitted"] = {"low": band["low"], "high": band["high"]}  # oof_rates describe these, before any closing
    floor = BAND_PRECISION - HELD_OUT_SLACK
    if band["high"] < 1.0 and (held["high"] is None or held["high"] < floor):
        band["high"], band["closed_high"] = 1.0, f"held-out precision below {floor:.2f}"
    if band["low"] > 0.0 and (held["low"] is None or held["low"] < floor):
        band["low"], band["closed_low"] = 0.0, f"held-out precision below {floor:.2f}"
    return band


def validate(data: Path, model: Path, out_json: Path | None, threads: int = 2, write_config: Path | None = None,
             limit_per_source: int | None = None, cv_json: Path | None = None, downscale: float = 1.0,
             log=print) -> dict:
    import onnxruntime as ort

    from fakescope_cli.detectors.cycle import METADATA_KEY

    from .builtin import _clean, crossfit_ece, ece, fit_platt, jpeg_q, summarise
    from .data import load_pool

    items = load_pool(data, limit_per_source=limit_per_source)
    labels = np.array([it.label for it in items])
    t0 = time.time()
    scores = image_scores(model, [it.arr for it in items], threads, downscale)
    # a real's flip is the same pixels in a PNG: its tiles, and so its score, do not change
    flip = scores.copy()
    fakes = np.where(labels == 1)[0]
    flip[fakes] = image_scores(model, [jpeg_q(items[i].arr, 90) for i in fakes], threads, downscale)
    seconds = time.time() - t0
    res = summarise(items, scores, flip)
    log(f"cycle: {len(items)} images (+{len(fakes)} flipped) in {seconds:.0f}s: pooled {res['pooled_auc']:.3f}, "
        f"mean per-source {res['mean_source_auc']:.3f}, within-source {res['mean_within_source_auc']:.3f}, "
        f"format flip {res['format_flip_delta']:+.3f}")
    if cv_json is not None:
        res["fused_with_builtin"] = fused_with_builtin(items, scores, flip, cv_json, log)
    a, b = fit_platt(scores, labels)
    p = 1 / (1 + np.exp(-(a * scores + b)))
    sources = [it.source for it in items]
    res.update({
        "version": version(downscale), "tile": TILE, "max_grid": MAX_GRID, "downscale": downscale, "seconds": seconds,
        "n_images": len(items),
        "calibration": {"method": "platt-class-balanced", "a": a, "b": b},
        "ece_calibrated": ece(p, labels), "ece_calibrated_crossfit": crossfit_ece(scores, labels, sources),
        "uncertain": checked_band(p, scores, labels, sources),
        "scores": scores.tolist(), "flip_scores": flip.tolist(), "labels": labels.tolist(), "image_sources": sources,
    })
    log(f"Platt a={a:.3f} b={b:.3f}; ECE {res['ece_calibrated']:.3f} in-sample, "
        f"{res['ece_calibrated_crossfit']:.3f} cross-fitted by source group; band {res['uncertain']['low']:.3f}.."
        f"{res['uncertain']['high']:.3f}")
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(_clean(res), indent=1))
    if write_config is not None:
        meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta()
        summary = {k: res[k] for k in ("pooled_auc", "mean_source_auc", "mean_within_source_auc", "format_flip_delta",
                                       "ece_calibrated", "ece_calibrated_crossfit", "n_images")}
        summary["per_source"] = res["sources"]
        config = {"version": version(downscale), "model": "taef2-latent-cycle", "tile": TILE, "max_grid": MAX_GRID,
                  "downscale": downscale,
                  "taef2_sha256": meta.custom_metadata_map.get(METADATA_KEY), "calibration": res["calibration"],
                  "uncertain": res["uncertain"], "validation": summary,
                  "command": f"python -m train.cycle validate {data} --model FILE --downscale {downscale:g} "
                             f"--write-config {write_config.name}"}
        write_config.write_text(json.dumps(_clean(config), indent=1) + "\n")
    return res


def fused_with_builtin(items: list, scores: np.ndarray, flip: np.ndarray, cv_json: Path, log=print) -> dict:
    """The builtin CNN's out-of-fold logits (a train.validate JSON of the same pool) and this score, each
    standardised over the pool (no labels) and summed with equal weights: a fusion fixed in advance, since
    fitted ones lose across sources (builtin card). Flip-checked when the JSON keeps oof_flip_logits."""
    from .builtin import summarise

    cv = json.loads(cv_json.read_text())
    if cv["oof_sources"] != [it.source for it in items]:
        raise SystemExit(f"{cv_json} was not computed on this pool (sources differ)")
    cnn = np.array(cv["oof_logits"])
    cnn_flip = cv.get("oof_flip_logits")

    def z(c: np.ndarray, s: np.ndarray) -> np.ndarray:
        return (c - cnn.mean()) / cnn.std() + (s - scores.mean()) / scores.std()

    r = summarise(items, z(cnn, scores), None if cnn_flip is None else z(np.array(cnn_flip), flip))
    flip_txt = f", format flip {r['format_flip_delta']:+.3f}" if cnn_flip is not None else ""
    log(f"fixed fusion with {cv_json.name} (seed {cv['recipe']['seed']}): pooled {r['pooled_auc']:.3f}, mean per-source "
        f"{r['mean_source_auc']:.3f}, within-source {r['mean_within_source_auc']:.3f}{flip_txt}")
    return {k: v for k, v in r.items() if k != "sources"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    ex = sub.add_parser("export")
    ex.add_argument("--taesd", type=Path, required=True)
    ex.add_argument("--out", type=Path, required=True)
    va = sub.add_parser("validate")
    va.add_argument("data", type=Path)
    va.add_argument("--model", type=Path, required=True)
    va.add_argument("--json", type=Path, default=None)
    va.add_argument("--write-config", type=Path, default=None)
    va.add_argument("--threads", type=int, default=2)
    va.add_argument("--downscale", type=float, default=1.0, help="shrink each image by this factor before tiling")
    va.add_argument("--limit-per-source", type=int, default=None, help="at most N images per source and label")
    va.add_argument("--cv-json", type=Path, action="append", default=[],
                    help="a train.validate JSON of the builtin CNN: also report their fixed fusion (repeatable)")
    a = ap.parse_args()
    if a.what == "export":
        print(f"wrote {a.out} (TAEF2 weights sha256 {export(a.taesd, a.out)})")
    else:
        res = validate(a.data, a.model, a.json, a.threads, a.write_config, a.limit_per_source,
                       a.cv_json[0] if a.cv_json else None, a.downscale)
        items = None
        for extra in a.cv_json[1:]:  # more seeds' CNNs: the zero-shot scores are computed once
            from .data import load_pool

            items = items or load_pool(a.data, limit_per_source=a.limit_per_source)
            fused_with_builtin(items, np.array(res["scores"]), np.array(res["flip_scores"]), extra)


if __name__ == "__main__":
    main()
