"""Memory stays flat with the number of files: peak RSS of a scan over 2,000 / 5,000 / 20,000 files.

Prints the largest resident set of any fakescope process (main or worker) for each size. Flat
means the 20,000-file figure is within a few MB of the 2,000-file one.

    python bench/bench_memory.py [--backend none]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def _tree_rss_kb(root: int) -> dict[int, int]:
    """VmRSS (kB) of root and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields.get("PPid", "0").strip())
        if "VmRSS" in fields:
            rss[pid] = int(fields["VmRSS"].split()[0])
    family, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
    return {pid: rss.get(pid, 0) for pid in family}


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, float]:
    """Run cmd, sampling every process of its tree; (largest single process MB, largest total MB, s)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak_one = peak_total = 0
    while proc.poll() is None:
        sample = _tree_rss_kb(proc.pid)
        peak_one = max(peak_one, max(sample.values(), default=0))
        peak_total = max(peak_total, sum(sample.values()))
        time.sleep(0.05)
    return peak_one / 1024, peak_total / 1024, time.perf_counter() - t0


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
        print(f"{'files':>7s} {'max 1 proc MB':>14s} {'max all procs MB':>17s} {'seconds':>8s} {'files/s':>8s}")
        for n in sizes:
            for i in range(made, n):
                sub = folder / f"d{i // 1000:03d}"
                sub.mkdir(exist_ok=True)
                # Distinct bytes per file so nothing is deduplicated anywhere.
                (sub / f"{i:06d}.png").write_bytes(data + i.to_bytes(4, "big"))
            made = n
            cmd = [sys.executable, "-m", "fakescope_cli", "scan", "-q", "-f", "jsonl", "--no-cache",
                   "--backend", args.backend, str(folder)]
            one, total, secs = peak_rss_mb(cmd)
            print(f"{n:7d} {one:14.1f} {total:17.1f} {secs:8.1f} {n / secs:8.0f}")


if __name__ == "__main__":
    main()
