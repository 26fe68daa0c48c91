"""Rescan speed: a second scan of an unchanged tree is served from the result cache.

Prints the first (cold) scan, the rescan (warm) and the ratio, same files and options, one run.
Target: rescan >= 20x faster. Uses the default detector when its weights are installed,
otherwise `--backend none` (provenance + pixel decoding + watermark reading).

    python bench/bench_cache.py [--files 300] [--size 1024]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    for i in range(n):
        img = Image.fromarray(np.roll(base, i, axis=0)).resize((size, size), Image.BICUBIC)
        img.save(folder / f"{i:05d}.jpg", quality=90)


def scan(folder: Path, cache: Path, backend: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fakescope_cli", "scan", "-q", "-f", "jsonl", "--backend", backend,
         "--cache-dir", str(cache), str(folder)],
        check=False, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--backend", default=None)
    args = ap.parse_args()
    backend = args.backend
    if backend is None:
        weights = Path(__file__).resolve().parent.parent / "fakescope_cli" / "weights" / "builtin.json"
        backend = "builtin" if weights.exists() else "none"
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "ev", Path(tmp) / "cache"
        folder.mkdir()
        make_images(folder, args.files, args.size)
        cold = scan(folder, cache, backend)
        warm = scan(folder, cache, backend)
    print(f"files: {args.files} of {args.size}x{args.size} JPEG; backend: {backend}")
    print(f"first scan (cold cache)  {cold:7.2f} s  {args.files / cold:8.1f} files/s")
    print(f"rescan (warm cache)      {warm:7.2f} s  {args.files / warm:8.1f} files/s")
    print(f"rescan speed-up          {cold / warm:7.1f}x  (target >= 20x)")


if __name__ == "__main__":
    main()
