"""Split one pool collection into two labelled halves (CSV), to check a fitted detector on unseen images.

    python -m train.split_collection ../shared/data --source fakereasoning_tiles --out build/fr [--seed 0]

Writes OUT/train.csv and OUT/test.csv (path,label,source; absolute paths), each holding half of the
collection's fakes and half of its reals, drawn at random with --seed. Then:

    fakescope train detector --data OUT/train.csv --out OUT/model
    fakescope eval OUT/test.csv --backend fitted --model OUT/model/fitted.onnx
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path


def split(data: Path, source: str, out: Path, seed: int = 0) -> tuple[int, int]:
    with (data / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] == source]
    if not rows:
        raise SystemExit(f"no images of source {source!r} in {data / 'manifest.csv'}")
    rng = random.Random(seed)
    halves: tuple[list, list] = ([], [])
    for label in ("fake", "real"):
        of_label = [r for r in rows if r["label"] == label]
        rng.shuffle(of_label)
        half = len(of_label) // 2
        halves[0].extend(of_label[:half])
        halves[1].extend(of_label[half:])
    out.mkdir(parents=True, exist_ok=True)
    for name, part in zip(("train.csv", "test.csv"), halves, strict=True):
        with (out / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "label", "source"])
            for r in part:
                w.writerow([str((data / r["path"]).resolve()), r["label"], r["source"]])
    return len(halves[0]), len(halves[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--source", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    n_train, n_test = split(a.data, a.source, a.out, a.seed)
    print(f"wrote {a.out / 'train.csv'} ({n_train} images) and {a.out / 'test.csv'} ({n_test})")


if __name__ == "__main__":
    main()
