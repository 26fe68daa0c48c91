"""Memory stays flat with the number of files: peak RSS of a scan over 2,000 / 5,000 / 20,000 files.

Prints the largest resident set of any fakescope process (main or worker) for each size. Flat
means the 20,000-file figure is within a few MB of the 2,000-file one.

    python bench/bench_memory.py [--backend none]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Run cmd in a fresh child that reports the peak RSS of itself and its descendants."""
    probe = (
        "import resource, subprocess, sys, time;"
        "t = time.perf_counter();"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=False);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True).stdout
    rss, secs = out.split()
    return float(rss), float(secs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="none")
    ap.add_argument("--sizes", default="2000,5000,20000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = root / "t.png"
        Image.new("RGB", (64, 64), (120, 30, 200)).save(template)
        data = template.read_bytes()
        folder = root / "ev"
        folder.mkdir()
        made = 0
        print(f"backend: {args.backend}; cores: {os.cpu_count()}")
        print(f"{'files':>7s} {'peak RSS MB':>12s} {'seconds':>8s} {'files/s':>8s}")
        for n in sizes:
            for i in range(made, n):
                sub = folder / f"d{i // 1000:03d}"
                sub.mkdir(exist_ok=True)
                # Distinct bytes per file so nothing is deduplicated anywhere.
                (sub / f"{i:06d}.png").write_bytes(data + i.to_bytes(4, "big"))
            made = n
            cmd = [sys.executable, "-m", "fakescope_cli", "scan", "-q", "-f", "jsonl", "--no-cache",
                   "--backend", args.backend, str(folder)]
            rss, secs = peak_rss_mb(cmd)
            print(f"{n:7d} {rss:12.1f} {secs:8.1f} {n / secs:8.0f}")
    _ = resource, time


if __name__ == "__main__":
    main()
