"""Compare two cross-validation runs of `train.validate --json` source by source.

python -m train.compare NEW.json OLD.json [OLD2.json ...]
Prints each run's mean per-source AUC with its 95% interval, then NEW's gain over each OLD on the same
sources (paired by source, 95% bootstrap interval over sources).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .builtin import mean_ci95, paired_source_gain, source_aucs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("new", type=Path)
    ap.add_argument("old", type=Path, nargs="+")
    a = ap.parse_args()
    runs = {p: json.loads(p.read_text()) for p in [a.new, *a.old]}
    for p, r in runs.items():
        lo, hi = mean_ci95(source_aucs(r["sources"]))
        print(f"{p.name}: mean per-source AUC {r['mean_source_auc']:.3f} (95% CI {lo:.3f}-{hi:.3f})")
    for p in a.old:
        g = paired_source_gain(runs[a.new]["sources"], runs[p]["sources"])
        lo, hi = g["ci95"]
        print(f"{a.new.name} - {p.name}: {g['mean_gain']:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}) over {g['n']} "
              f"source figures, better on {g['sources_better']}")


if __name__ == "__main__":
    main()
