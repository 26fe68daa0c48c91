"""Score a pool with fixed builtin weights, written like a `train.validate --json` run.

python -m train.shipped_scores DATA [--weights DIR] --json OUT.json

The weights are not refitted per fold: every image gets the score the shipped detector gives it (its own
code path, BuiltinDetector.analyze). So `train.compare NEW.json OUT.json` pairs a cross-validated recipe
with the weights that ship, source by source; on images the shipped weights were trained on, their
figures are not held out (use `train.compare --only-added DATA` for the pool's newer sources).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .builtin import _clean, summarise
from .data import manifest_path

MIN_SIDE = 64  # train.data.load_pool skips smaller images, so the runs line up image by image


def shipped_logits(data: Path, weights: Path | None = None) -> tuple[list[SimpleNamespace], np.ndarray]:
    """(items in train.data.load_pool's order, the detector's image logit for each)."""
    import csv

    from fakescope_cli.detectors.builtin import BuiltinDetector
    from fakescope_cli.media import Media

    man = manifest_path(data)
    det = BuiltinDetector(weights, threads=1)
    items, logits = [], []
    with man.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            media = Media.open(man.parent / row["path"])
            if min(media.rgb().size) < MIN_SIDE:
                continue
            items.append(SimpleNamespace(label=1 if row["label"] == "fake" else 0, source=row["source"]))
            logits.append(det.analyze(media).raw["logit"])
    return items, np.array(logits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--weights", type=Path, default=None, help="weights folder (default: the shipped one)")
    ap.add_argument("--json", type=Path, required=True)
    a = ap.parse_args()
    t0 = time.time()
    items, logits = shipped_logits(a.data, a.weights)
    res = summarise(items, logits)
    res.update({"weights": str(a.weights or "shipped"), "oof_logits": logits.tolist(),
                "oof_labels": [it.label for it in items], "oof_sources": [it.source for it in items]})
    lo, hi = res["mean_source_auc_ci95"]
    print(f"{len(items)} images in {time.time() - t0:.0f}s: pooled {res['pooled_auc']:.3f}, "
          f"mean per-source {res['mean_source_auc']:.3f} ({lo:.3f}-{hi:.3f})")
    a.json.write_text(json.dumps(_clean(res)))


if __name__ == "__main__":
    main()
