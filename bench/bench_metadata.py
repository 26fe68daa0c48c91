"""Metadata-only scan speed against exiftool, measured in the same run on the same files.

(a) `fakescope scan --no-pixels` over ../shared/fixtures (peers included) vs `exiftool -j -r` on the
    same folder: files/s and the ratio (target >= 2x exiftool).
(b) one-file invocation wall time, `fakescope scan --no-pixels FILE` vs `exiftool -j FILE`, on a
    C2PA file (target: no slower than exiftool). Best of --repeat runs each.

Needs Debian's libimage-exiftool-perl (apt-get install -y libimage-exiftool-perl); without it the
bench says so and exits 0 (CI does not run it).

    python bench/bench_metadata.py [--repeat N] [--one-file PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
# A C2PA file (the c2pa library's own import is ~90 ms of it) and a camera JPEG without C2PA.
ONE_FILES = (FIXTURES / "peers/c2pa-rs/sdk/tests/fixtures/ocsp.jpg", FIXTURES / "exif-samples/jpg/Canon_40D.jpg")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif", ".webp", ".gif", ".avif")


def count_images(root: Path) -> int:
    return sum(1 for _d, _s, names in os.walk(root) for n in names if n.lower().endswith(IMAGE_EXTS))


def best_of(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1, 3):
            sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd[:5])} …")
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs each")
    ap.add_argument("--one-file", type=Path, action="append", help="default: ocsp.jpg and Canon_40D.jpg")
    args = ap.parse_args()
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        print("exiftool not found (apt-get install -y libimage-exiftool-perl): nothing to compare against; skipped")
        return
    fakescope = [sys.executable, "-m", "fakescope_cli", "scan", "--no-pixels", "-f", "jsonl", "-q", "--no-cache"]
    n = count_images(FIXTURES)
    folder_exif = best_of([exiftool, "-j", "-r", "-q", "-q", str(FIXTURES)], args.repeat)
    folder_fake = best_of([*fakescope, str(FIXTURES)], args.repeat)
    one_files = args.one_file or list(ONE_FILES)
    one = [(f, best_of([exiftool, "-j", str(f)], args.repeat * 2), best_of([*fakescope, str(f)], args.repeat * 2))
           for f in one_files]
    print(f"cores: {os.cpu_count()}; load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"best of {args.repeat} (folder), {args.repeat * 2} (one file)")
    print(f"(a) folder {FIXTURES} ({n} images):")
    print(f"    exiftool -j -r          {folder_exif:7.2f} s  {n / folder_exif:8.0f} files/s")
    print(f"    fakescope --no-pixels   {folder_fake:7.2f} s  {n / folder_fake:8.0f} files/s"
          f"   {folder_exif / folder_fake:5.2f}x exiftool (target >= 2x)")
    for path, one_exif, one_fake in one:
        print(f"(b) one file {path.name}:")
        print(f"    exiftool -j             {one_exif:7.3f} s")
        print(f"    fakescope --no-pixels   {one_fake:7.3f} s   {one_exif / one_fake:5.2f}x exiftool's speed "
              "(target >= 1x)")


if __name__ == "__main__":
    main()
