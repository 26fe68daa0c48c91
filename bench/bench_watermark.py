"""The default scan against the decode floor on real photographs, with the watermark screen and without.

    python bench/bench_watermark.py [--jobs 2] [--repeat 2] [--baseline-ref REF] [--skip-fp]

Issue #22 point 5. Two sets of real photos, copied into a temporary folder each:

* large: every decodable real photo of at least 2 MP among the shared fixtures (camera and phone JPEGs,
  HEIC), plus lossless PNG copies of three of them (the watermark is always read on lossless files);
* 1 MP: the pool's real images of about 1 MP (data/manifest.csv, label real), plus PNG copies of three.

For each set, interleaved and repeated, each a fresh subprocess timed by wall clock (start-up included):
floor (`--floor-run`: N worker processes, each file read, sha256'd and decoded to RGB by Pillow), the
default scan of this checkout (`python -m fakescope_cli scan DIR --jobs N --format jsonl --no-cache -q`),
and the same scan with the watermark reader of --baseline-ref (default: the commit before screening,
run from a copy of the package with only evidence/watermark.py swapped). Prints images/s and the ratio
scan/floor per set. Target: >= 0.5 on the large set; the 1-MP ratio no lower than the baseline's.

It also reads every real image of the pool (data/manifest.csv, label real) with the watermark reader and
prints how many report a mark (must be 0) and the largest screening z, unless --skip-fp.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures"
BASELINE_REF = "87837ec"  # the last commit before the watermark screen (and the float32 U plane)
TARGET_RATIO = 0.5
EXTS = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".tif", ".tiff", ".webp")


def _decodes(path: Path) -> tuple[int, int] | None:
    from fakescope_cli.media import Media

    try:
        media = Media.open(path)
        rgb = media.rgb()
        return rgb.size
    except Exception:  # the fixtures include deliberately broken files
        return None


def large_photos() -> list[Path]:
    found = []
    for p in sorted((FIXTURES / "exif-samples").rglob("*")) + sorted((FIXTURES / "peers").rglob("*")):
        if p.suffix.lower() in EXTS and "corrupt" not in p.name.lower():
            size = _decodes(p)
            if size and size[0] * size[1] >= 2_000_000 and "camera" in _kind(p):
                found.append(p)
    return found


def _kind(path: Path) -> str:
    """'camera' for a photo whose EXIF names a camera maker (real capture), else 'other'."""
    try:
        with Image.open(path) as im:
            return "camera" if im.getexif().get(0x010F) else "other"
    except Exception:
        return "other"


def one_mp_photos() -> list[Path]:
    with (DATA / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "real"]
    return [DATA / r["path"] for r in rows if int(r["width"]) * int(r["height"]) >= 900_000]


def fill(folder: Path, photos: list[Path], png_copies: int) -> None:
    folder.mkdir(parents=True)
    for i, p in enumerate(photos):
        shutil.copyfile(p, folder / f"{i:03d}-{p.name}")
    for i, p in enumerate(photos[:png_copies]):
        from fakescope_cli.media import Media

        Image.fromarray(__import__("numpy").asarray(Media.open(p).rgb())).save(folder / f"png{i:02d}-{p.stem}.png")


# --- floor: its own process, so it pays interpreter and pool start-up too --------------------------

def _floor_one(path: str) -> int:
    data = Path(path).read_bytes()
    hashlib.sha256(data).hexdigest()
    from fakescope_cli.imageops import to_rgb8

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return to_rgb8(im).size[0]


def floor_run(folder: Path, jobs: int) -> None:
    import multiprocessing as mp

    try:  # HEIC needs the same plugin the scan registers
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    paths = sorted(str(p) for p in folder.iterdir())
    with mp.get_context("fork").Pool(jobs) as pool:
        assert sum(1 for _ in pool.imap_unordered(_floor_one, paths, chunksize=1)) == len(paths)


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return wall


def baseline_package(ref: str, root: Path) -> Path:
    """A copy of this checkout's package with evidence/watermark.py as it was at `ref`."""
    target = root / "baseline"
    shutil.copytree(REPO / "fakescope_cli", target / "fakescope_cli")
    old = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:fakescope_cli/evidence/watermark.py"],
                         capture_output=True, check=True).stdout
    (target / "fakescope_cli" / "evidence" / "watermark.py").write_bytes(old)
    return target


def measure(folder: Path, jobs: int, repeat: int, baseline: Path, out: Path) -> dict[str, list[float]]:
    scan = ["scan", str(folder), "--jobs", str(jobs), "--format", "jsonl", "--no-cache", "-q", "-o", str(out)]
    runs = {
        "floor": ([sys.executable, str(Path(__file__).resolve()), "--floor-run", str(folder), "--jobs", str(jobs)], None),
        "scan": ([sys.executable, "-m", "fakescope_cli", *scan], REPO),
        "scan, baseline watermark": ([sys.executable, "-m", "fakescope_cli", *scan], baseline),
    }
    for cmd, cwd in runs.values():  # warm-up: page cache, bytecode
        timed(cmd, cwd)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeat):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for name in order:
            times[name].append(timed(*runs[name]))
    return times


def false_positives() -> str:
    import numpy as np

    from fakescope_cli.evidence import watermark as wm
    from fakescope_cli.media import Media

    with (DATA / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "real"]
    read = marked = screened_out = 0
    worst = (-1e9, "")
    t0 = time.perf_counter()
    for r in rows:
        media = Media.open(DATA / r["path"])
        if (media.width or 0) * (media.height or 0) < wm.MIN_PIXELS:
            continue
        read += 1
        marked += bool(wm.read(media))
        rgb = np.asarray(media.rgb())
        z = wm.screen_z(rgb)
        screened_out += wm._screen_applies(rgb) and z < wm.SCREEN_Z
        worst = max(worst, (z, r["path"]))
    return (f"pool real images: {len(rows)}; big enough to carry a mark (>= 256x256): {read}; reported as marked: "
            f"{marked}; largest screening z {worst[0]:.2f} ({worst[1]}; threshold {wm.SCREEN_Z}); "
            f"screened out without a full read: {screened_out} ({time.perf_counter() - t0:.0f}s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--baseline-ref", default=BASELINE_REF)
    ap.add_argument("--skip-fp", action="store_true")
    ap.add_argument("--floor-run", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.floor_run is not None:
        floor_run(a.floor_run, a.jobs)
        return
    print(f"jobs {a.jobs} of {os.cpu_count()} cores; baseline watermark reader from {a.baseline_ref}")
    if not a.skip_fp:
        print(false_positives())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline = baseline_package(a.baseline_ref, root)
        sets = {"large (>= 2 MP)": (large_photos(), 3), "1 MP": (one_mp_photos(), 3)}
        for name, (photos, pngs) in sets.items():
            folder = root / name.split()[0].replace("1", "one")
            fill(folder, photos, pngs)
            files = sorted(folder.iterdir())
            mp = [Image.open(f).size for f in files]
            megapixels = [w * h / 1e6 for w, h in mp]
            print(f"\nset {name}: {len(files)} files ({sum(f.suffix == '.png' for f in files)} PNG), "
                  f"{min(megapixels):.1f}-{max(megapixels):.1f} MP, {sum(megapixels):.0f} MP in all")
            times = measure(folder, a.jobs, a.repeat, baseline, root / "out.jsonl")
            floor = statistics.mean(times["floor"])
            for run, ts in times.items():
                mean = statistics.mean(ts)
                ratio = floor / mean
                flag = ""
                if run == "scan" and name.startswith("large"):
                    flag = f" (target >= {TARGET_RATIO}: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'})"
                print(f"  {run:28s} {len(files) / mean:7.2f} images/s  runs {', '.join(f'{t:.2f}s' for t in ts)}"
                      f"  ratio to floor {ratio:.2f}{flag}")


if __name__ == "__main__":
    main()
