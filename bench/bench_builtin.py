"""End-to-end throughput of `fakescope scan` (builtin backend) against the floor, on ~1 MP JPEGs.

    python bench/bench_builtin.py [--n 500] [--jobs N] [--content pool|camera] [--weights DIR]

Issue #3 point 6. Both sides run over the same files with the same number of worker processes,
each as a fresh subprocess timed by wall clock, so start-up (interpreter, imports, pool start,
model load) is INCLUDED for both:

* floor: `python bench_builtin.py --floor-run DIR --jobs N`: a multiprocessing pool of N workers,
  each file read, sha256'd and decoded to RGB by Pillow;
* scan:  `python -m fakescope_cli scan DIR --jobs N --format jsonl --no-cache -q -o FILE`.

Runs are interleaved (floor, scan, scan, floor) so background load hits both alike, and averaged.
A warm-up of each on N files first fills the page cache and import caches; its wall time is also
printed as the start-up cost, with a steady-state ratio that leaves it out. Peak RSS is sampled
from /proc for the whole process tree (VmHWM per process, VmRSS summed). Latency is given twice:
a one-file CLI scan (process start and model load included) and the detector alone in this process.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
TARGET_RATIO = 0.5
TARGET_RSS_MB = 400  # decimal megabytes, as the issue writes it


CAMERA = REPO.parent / "shared" / "fixtures" / "exif-samples" / "jpg"


def camera_photos() -> list[Path]:
    """Real camera JPEGs of at least 1024x1024 among the shared fixtures (decodable, RGB)."""
    found = []
    for p in sorted(CAMERA.rglob("*.jpg")):
        try:
            with Image.open(p) as im:
                im.load()
                if min(im.size) >= 1024 and im.mode == "RGB":
                    found.append(p)
        except Exception:  # the fixtures include deliberately broken files
            continue
    return found


def make_camera_files(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """~1 MP JPEGs (q90): 1024x1024 crops of real camera photos at native resolution (no resampling),
    so the files carry a photo's detail (mean 176 KiB against 107 KiB for upscaled pool images in
    bench/results: costlier to decode, which the floor measures)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    photos = camera_photos()
    if not photos:
        raise SystemExit(f"no camera photos of >= 1024 px under {CAMERA}")
    opened = {}
    paths = []
    for i in range(n):
        src = photos[i % len(photos)]
        if src not in opened:
            with Image.open(src) as im:
                opened[src] = im.convert("RGB")
        im = opened[src]
        x, y = int(rng.integers(0, im.size[0] - 1024 + 1)), int(rng.integers(0, im.size[1] - 1024 + 1))
        p = folder / f"img{i:04d}.jpg"
        im.crop((x, y, x + 1024, y + 1024)).save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def make_files(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """~1 MP JPEGs (q90) from pool images, upscaled and cropped; synthetic noise if the pool is absent."""
    import numpy as np

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


# --- floor: runs in its own process (`--floor-run`), so it pays interpreter and pool start-up too ---

def _floor_one(path: str) -> int:
    data = Path(path).read_bytes()
    hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # the decode; convert only when needed (a convert to the same mode is an extra copy)
        return (im if im.mode == "RGB" else im.convert("RGB")).size[0]


def floor_run(folder: Path, jobs: int) -> None:
    import multiprocessing as mp

    paths = sorted(str(p) for p in folder.iterdir() if p.suffix == ".jpg")
    with mp.get_context("fork").Pool(jobs) as pool:
        done = sum(1 for _ in pool.imap_unordered(_floor_one, paths, chunksize=4))
    assert done == len(paths)


# --- measuring a subprocess: wall time and the RSS of its whole process tree ---

def _proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return {}


def _kb(fields: dict[str, str], key: str) -> int:
    return int(fields[key].split()[0]) if key in fields else 0


class Run:
    """A finished subprocess: wall seconds, largest single-process peak and largest tree total (MiB)."""

    def __init__(self, cmd: list[str], out_file: Path | None = None) -> None:
        import psutil

        hwm: dict[int, int] = {}
        total_peak = 0
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root.pid] + [c.pid for c in root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            total = 0
            for pid in tree:
                st = _proc_status(pid)
                # VmHWM is the kernel's own high-water mark, so a short peak between samples still counts.
                hwm[pid] = max(hwm.get(pid, 0), _kb(st, "VmHWM"))
                total += _kb(st, "VmRSS")
            total_peak = max(total_peak, total)
            time.sleep(0.02)
        err = proc.communicate()[1]
        self.wall = time.perf_counter() - t0
        self.rc = proc.returncode
        self.max_one = max(hwm.values(), default=0) / 1024
        self.max_total = total_peak / 1024
        self.processes = len(hwm)
        if self.rc != 0:
            raise SystemExit(f"command failed ({self.rc}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
        if out_file is not None:
            with out_file.open(encoding="utf-8") as fh:
                records = [json.loads(line) for line in fh if line.strip()]
            self.records = len(records)
            self.errors = sum(1 for r in records if r["errors"])


def cli() -> list[str]:
    return [sys.executable, "-m", "fakescope_cli"]


def _shown(path: Path) -> str:
    """A path as printed in results: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def scan_cmd(folder: Path, jobs: int, out: Path) -> list[str]:
    return [*cli(), "scan", str(folder), "--jobs", str(jobs), "--format", "jsonl", "--no-cache", "-q", "-o", str(out)]


def floor_cmd(folder: Path, jobs: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--floor-run", str(folder), "--jobs", str(jobs)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes for both sides")
    ap.add_argument("--weights", type=Path, default=None, help="folder with builtin.onnx + builtin.json")
    ap.add_argument("--content", choices=("pool", "camera"), default="pool",
                    help="pool: pool images upscaled to 1 MP (smooth, ~110 KB files); camera: native-resolution "
                         "1 MP crops of the real camera photos among the shared fixtures")
    ap.add_argument("--floor-run", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.floor_run is not None:
        floor_run(a.floor_run, a.jobs)
        return

    from fakescope_cli.detectors.builtin import BuiltinDetector
    from fakescope_cli.media import Media

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, warm = root / "files", root / "warm"
        folder.mkdir()
        warm.mkdir()
        t0 = time.perf_counter()
        paths = (make_camera_files if a.content == "camera" else make_files)(folder, a.n)
        for p in paths[: a.jobs]:
            (warm / p.name).write_bytes(p.read_bytes())
        mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"made {len(paths)} files of 1024x1024 (JPEG q90, content: {a.content}, mean {mean_kb:.0f} KiB) in "
              f"{time.perf_counter() - t0:.1f}s; jobs {a.jobs} of {os.cpu_count()} cores")
        shown = ["python", *scan_cmd(Path("DIR"), a.jobs, Path("OUT"))[1:]]  # no machine paths in results
        print(f"scan command: {' '.join(shown)}")
        if a.weights is not None:
            # The builtin backend takes no weights option on the command line (`--model` is refused
            # for it), so the CLI side always runs the packaged weights.
            print(f"note: --weights {a.weights} applies to the in-process latency only; the CLI has no option for it")
        out = root / "out.jsonl"

        # An installed package carries its bytecode (pip compiles it at install time), but an editable
        # install under PYTHONDONTWRITEBYTECODE (set on some CI and sandbox machines) never writes any,
        # and every scan process would recompile the package's modules (~50 ms) while the floor's
        # imports (Pillow, hashlib) read theirs from site-packages. Compile it once, as an install does.
        import compileall

        import fakescope_cli

        compileall.compile_dir(Path(fakescope_cli.__file__).parent, quiet=1)

        # Warm-up on `jobs` files: one file per worker, so this is start-up plus one image.
        warm_floor = Run(floor_cmd(warm, a.jobs))
        warm_scan = Run(scan_cmd(warm, a.jobs, out), out)
        floors: list[Run] = []
        scans: list[Run] = []
        for side in ("floor", "scan", "scan", "floor"):
            if side == "floor":
                floors.append(Run(floor_cmd(folder, a.jobs)))
            else:
                scans.append(Run(scan_cmd(folder, a.jobs, out), out))
                if scans[-1].records != a.n or scans[-1].errors:
                    raise SystemExit(f"scan wrote {scans[-1].records} records, {scans[-1].errors} with errors")

        fl = statistics.mean(a.n / r.wall for r in floors)
        sc = statistics.mean(a.n / r.wall for r in scans)
        print(f"{'floor (read+sha256+decode)':34s} {fl:8.1f} images/s  (runs: "
              f"{', '.join(f'{r.wall:.2f}s' for r in floors)})")
        print(f"{'scan (fakescope scan, builtin)':34s} {sc:8.1f} images/s  (runs: "
              f"{', '.join(f'{r.wall:.2f}s' for r in scans)})")
        ratio = sc / fl
        print(f"ratio scan/floor, start-up included: {ratio:.2f} (target >= {TARGET_RATIO}: "
              f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'})")
        # Steady state: the warm-up (start-up + one image per worker) subtracted from both sides.
        fl_ss = statistics.mean((a.n - a.jobs) / max(1e-6, r.wall - warm_floor.wall) for r in floors)
        sc_ss = statistics.mean((a.n - a.jobs) / max(1e-6, r.wall - warm_scan.wall) for r in scans)
        print(f"start-up + 1 image/worker: floor {warm_floor.wall:.2f}s, scan {warm_scan.wall:.2f}s; "
              f"steady state: floor {fl_ss:.1f}, scan {sc_ss:.1f} images/s, ratio {sc_ss / fl_ss:.2f}")
        rss_one = max(r.max_one for r in scans)
        rss_all = max(r.max_total for r in scans)
        rss_ok = rss_one * 1.048576 <= TARGET_RSS_MB
        print(f"peak RSS of scan: largest process {rss_one:.0f} MiB ({rss_one * 1.048576:.0f} MB), "
              f"all {scans[0].processes} processes together {rss_all:.0f} MiB "
              f"(target <= {TARGET_RSS_MB} MB per process: {'PASS' if rss_ok else 'FAIL'}); "
              f"floor: {max(r.max_one for r in floors):.0f} / {max(r.max_total for r in floors):.0f} MiB")

        # Latency of one file through the whole CLI: interpreter start, imports, model load, one image.
        one = paths[0]
        cli_lat = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([*cli(), "scan", str(one), "--format", "json", "--no-cache", "-q"],
                           stdout=subprocess.DEVNULL, check=True)
            cli_lat.append((time.perf_counter() - t) * 1000)
        print(f"single-image latency, CLI (`fakescope scan ONE --format json`, start-up + model load): "
              f"median {statistics.median(cli_lat):.0f} ms of 5")

        m = Media.open(one)
        m.rgb()
        lat: dict[int | None, list[float]] = {}
        # Default threads (as `fakescope scan ONE` runs it), then 1 thread (as each scan worker runs it).
        for threads in (None, 1):
            det = BuiltinDetector(weights_dir=a.weights, threads=threads)
            det.analyze(m)  # loads the session, outside the timings
            lat[threads] = []
            for _ in range(30):
                t = time.perf_counter()
                det.analyze(m)
                lat[threads].append((time.perf_counter() - t) * 1000)
            print(f"single-image latency, detector in process (decoded image; tiling + onnx + calibration, "
                  f"{det.threads} thread(s), weights {_shown(det.weights_dir)}): median {statistics.median(lat[threads]):.1f} ms, "
                  f"p90 {sorted(lat[threads])[int(0.9 * 30)]:.1f} ms of 30")
    print(f"summary: n={a.n} jobs={a.jobs} content={a.content} floor {fl:.1f}/s scan {sc:.1f}/s ratio {ratio:.2f} "
          f"(>= {TARGET_RATIO} {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}), peak RSS {rss_one:.0f} MiB/process "
          f"({'PASS' if rss_ok else 'FAIL'}), latency CLI {statistics.median(cli_lat):.0f} ms, "
          f"detector {statistics.median(lat[None]):.1f} ms")


if __name__ == "__main__":
    main()
