"""Compare two cross-validation runs of `train.validate --json` source by source.

python -m train.compare NEW.json OLD.json [OLD2.json ...] [--only-added DATA]
Prints each run's mean per-source AUC with its 95% interval, then NEW's gain over each OLD on the same
sources (paired by source, 95% bootstrap interval over sources).
--only-added DATA: first restrict every run to the images of the sources that tools/extend_pool.py added
to DATA's pool (rows whose notes say so), re-ranking them among themselves from the runs' out-of-fold
logits; weights fitted on the older pool (train.shipped_scores) never saw these images.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .builtin import mean_ci95, paired_source_gain, per_source_table, source_aucs, summarise
from .data import manifest_path

ADDED_NOTE = "added by tools/extend_pool.py"


def added_sources(data: Path) -> set[str]:
    """Sources whose every row was added by tools/extend_pool.py (the pool's newer sources)."""
    with manifest_path(data).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    added = {r["source"] for r in rows if r["notes"].rstrip().endswith(ADDED_NOTE)}
    return added - {r["source"] for r in rows if not r["notes"].rstrip().endswith(ADDED_NOTE)}


def restrict(run: dict, sources: set[str]) -> dict:
    """The run's figures on the images of `sources` only, from its out-of-fold logits."""
    keep = [i for i, s in enumerate(run["oof_sources"]) if s in sources]
    items = [SimpleNamespace(label=run["oof_labels"][i], source=run["oof_sources"][i]) for i in keep]
    logits = np.array([run["oof_logits"][i] for i in keep], dtype=float)
    res = summarise(items, logits)
    res["sources"] = per_source_table(items, logits)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("new", type=Path)
    ap.add_argument("old", type=Path, nargs="+")
    ap.add_argument("--only-added", type=Path, metavar="DATA",
                    help="only the sources tools/extend_pool.py added to this pool, ranked among themselves")
    a = ap.parse_args()
    runs = {p: json.loads(p.read_text()) for p in [a.new, *a.old]}
    if a.only_added:
        keep = added_sources(a.only_added)
        runs = {p: restrict(r, keep) for p, r in runs.items()}
        n = sum(v["n_fake"] + v["n_real"] for v in runs[a.new]["sources"].values())
        print(f"only the {len(keep)} added sources ({n} images), ranked among themselves")
    for p, r in runs.items():
        lo, hi = mean_ci95(source_aucs(r["sources"]))
        print(f"{p.name}: pooled AUC {r['pooled_auc']:.3f}, mean per-source AUC {r['mean_source_auc']:.3f} "
              f"(95% CI {lo:.3f}-{hi:.3f})")
    for p in a.old:
        g = paired_source_gain(runs[a.new]["sources"], runs[p]["sources"])
        lo, hi = g["ci95"]
        print(f"{a.new.name} - {p.name}: {g['mean_gain']:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}) over {g['n']} "
              f"source figures, better on {g['sources_better']}")


if __name__ == "__main__":
    main()
