"""Throughput of the builtin detector against the floor (read + sha256 + decode) on ~1 MP files.

python bench/bench_builtin.py [--n 500] [--threads 2]
Both runs happen in this process, over the same files, so their ratio is meaningful on a busy machine.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def make_files(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """~1 MP JPEGs (q90) from pool images, upscaled and cropped; synthetic noise if the pool is absent."""
    rng = np.random.default_rng(seed)
    sources = sorted(DATA.glob("*/*/*")) if DATA.is_dir() else []
    paths = []
    for i in range(n):
        if sources:
            with Image.open(sources[i % len(sources)]) as im:
                im = im.convert("RGB")
                s = 1280 / min(im.size)
                im = im.resize((max(1024, round(im.size[0] * s)), max(1024, round(im.size[1] * s))), Image.BICUBIC)
                x, y = int(rng.integers(0, im.size[0] - 1024 + 1)), int(rng.integers(0, im.size[1] - 1024 + 1))
                im = im.crop((x, y, x + 1024, y + 1024))
        else:
            im = Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
        p = folder / f"img{i:04d}.jpg"
        im.save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def floor(paths: list[Path]) -> float:
    t = time.perf_counter()
    for p in paths:
        data = p.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(p) as im:
            im.convert("RGB").load()
    return len(paths) / (time.perf_counter() - t)


def detector(paths: list[Path], det) -> float:
    from fakescope_cli.media import Media

    t = time.perf_counter()
    for p in paths:
        m = Media.open(p)
        _ = m.sha256
        det.analyze(m)
    return len(paths) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=None, help="folder with builtin.onnx + builtin.json")
    a = ap.parse_args()
    from fakescope_cli.detectors.builtin import BuiltinDetector
    from fakescope_cli.media import Media

    det = BuiltinDetector(weights_dir=a.weights, threads=a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = make_files(Path(tmp), a.n)
        print(f"made {len(paths)} files of 1024x1024 (JPEG q90) in {time.perf_counter() - t0:.1f}s")
        det.analyze(Media.open(paths[0]))  # load the session once, outside the timings
        floor(paths[:20])
        # interleave halves so background load hits both runs alike
        half = len(paths) // 2
        f1, d1 = floor(paths[:half]), detector(paths[:half], det)
        d2, f2 = detector(paths[half:], det), floor(paths[half:])
        fl, dt = (f1 + f2) / 2, (d1 + d2) / 2
        lat = []
        m = Media.open(paths[0])
        m.rgb()
        for _ in range(30):
            t = time.perf_counter()
            det.analyze(m)
            lat.append((time.perf_counter() - t) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'floor (read+sha256+decode)':32s} {fl:8.1f} images/s")
    print(f"{'builtin (read+sha256+decode+net)':32s} {dt:8.1f} images/s")
    print(f"ratio builtin/floor: {dt / fl:.2f} (target >= 0.5)")
    print(f"single-image latency (decoded image, net + tiling + calibration): median {statistics.median(lat):.1f} ms, "
          f"p90 {sorted(lat)[int(0.9 * len(lat))]:.1f} ms")
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
