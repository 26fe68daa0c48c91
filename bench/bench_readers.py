"""Per-file cost of the metadata readers, the figures tests used to assert (a loaded machine made them flaky).

Prints, for the shared camera samples (exif-samples), the best-of-N milliseconds per file of each
evidence reader on files already opened (header parsing is shared by all readers, so it is timed
apart), against the former test limits: exif 20 ms, generators 5 ms per file.

    python bench/bench_readers.py [--repeat N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO.parent / "shared" / "fixtures" / "exif-samples"
FORMER_LIMIT_MS = {"exif": 20.0, "generators": 5.0, "xmp": None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5, help="best of N passes")
    args = ap.parse_args()
    from fakescope_cli.evidence import exif, generators, xmp
    from fakescope_cli.media import Media

    paths = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg", ".tif", ".tiff"})
    t0 = time.perf_counter()
    medias = [Media.open(p, allow_pixels=False) for p in paths]
    for media in medias:
        _ = media.info
    opening = (time.perf_counter() - t0) / len(medias)
    print(f"{len(medias)} files from {SAMPLES}")
    print(f"{'reader':12s} {'ms/file':>8s} {'former limit':>13s}")
    print(f"{'open+header':12s} {opening * 1000:8.2f} {'-':>13s}")
    for name, reader in (("exif", exif.read), ("generators", generators.read), ("xmp", xmp.read)):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for media in medias:
                reader(media)
            best = min(best, (time.perf_counter() - start) / len(medias))
        limit = FORMER_LIMIT_MS[name]
        print(f"{name:12s} {best * 1000:8.2f} {('-' if limit is None else f'{limit:.0f} ms'):>13s}")


if __name__ == "__main__":
    main()
