"""Metadata-only scan speed: `fakescope scan --no-pixels` against `exiftool -j -r`, same files, one run.

Prints files/s for exiftool (the baseline) and fakescope at 1 and 2 workers, and the ratios.
Target: >= 1x exiftool; goal 2x. Needs Debian's libimage-exiftool-perl. The default runs metadata-only
scans in one process: per-file work (~0.5 ms) is about what shipping it to a worker costs, so -j2
is slower here (shown for the record).

    python bench/bench_metadata.py [--files N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def collect_files(limit: int) -> list[str]:
    files: list[str] = []
    for root in (SHARED / "data", SHARED / "fixtures"):
        for dirpath, _dirs, names in os.walk(root):
            for n in sorted(names):
                if n.lower().endswith((".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif", ".webp")):
                    files.append(os.path.join(dirpath, n))
    files.sort()
    return files[:limit]


def timed(cmd: list[str], stdin: bytes | None = None) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1, 3):
        sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd[:4])} …")
    return dt, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs each")
    args = ap.parse_args()
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        raise SystemExit("exiftool not found: apt-get install libimage-exiftool-perl")
    files = collect_files(args.files)
    n = len(files)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files.txt"
        listing.write_text("\n".join(files) + "\n")
        nul_list = "\0".join(files).encode() + b"\0"
        fakescope = [sys.executable, "-m", "fakescope_cli"]
        runs = {
            "exiftool -j (1 process)": ([exiftool, "-j", "-q", "-q", "-@", str(listing)], None),
            "fakescope --no-pixels (default)": ([*fakescope, "scan", "-", "-0", "--no-pixels", "-f", "jsonl", "-q", "--no-cache"], nul_list),
            "fakescope --no-pixels -j1": ([*fakescope, "scan", "-", "-0", "--no-pixels", "-f", "jsonl", "-q", "--no-cache", "-j", "1"], nul_list),
            "fakescope --no-pixels -j2": ([*fakescope, "scan", "-", "-0", "--no-pixels", "-f", "jsonl", "-q", "--no-cache", "-j", "2"], nul_list),
        }
        results: dict[str, float] = {}
        for name, (cmd, stdin) in runs.items():
            best = min(timed(cmd, stdin)[0] for _ in range(args.repeat))
            results[name] = best
        _, out = timed(runs["fakescope --no-pixels -j2"][0], nul_list)
        records = out.count(b"\n")
    base = n / results["exiftool -j (1 process)"]
    print(f"files: {n} (records emitted by fakescope: {records}); cores: {os.cpu_count()}")
    print(f"{'run':32s} {'seconds':>8s} {'files/s':>9s} {'vs exiftool':>12s}")
    for name, secs in results.items():
        rate = n / secs
        print(f"{name:32s} {secs:8.2f} {rate:9.0f} {rate / base:11.2f}x")


if __name__ == "__main__":
    main()
