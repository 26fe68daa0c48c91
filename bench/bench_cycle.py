"""Throughput of the opt-in zero-shot `cycle` backend, beside the builtin default and the floor, in one run.

    python bench/bench_cycle.py [--n 100] [--jobs N] [--content camera|pool] [--model FILE.onnx]

The same files (about 1 MP JPEGs, as bench_builtin.py makes them) and the same number of worker processes
for all three, each a fresh subprocess timed by wall clock, start-up included: the floor (read, sha256,
decode), `fakescope scan --backend builtin`, `fakescope scan --backend cycle --model FILE`. Without --model
the ONNX file is exported first from ../shared/models/taesd (needs the train extra). The cycle backend has no
speed target of its own (it is the slow, opt-in mode); this prints what it costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_builtin import REPO, Run, floor_cmd, make_camera_files, make_files, scan_cmd  # noqa: E402

TAESD = REPO.parent / "shared" / "models" / "taesd"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--content", choices=("camera", "pool"), default="camera")
    ap.add_argument("--model", type=Path, default=None, help="the cycle ONNX file (default: export one now)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = a.model
        if model is None:
            sys.path.insert(0, str(REPO))
            from train.cycle import export

            model = root / "taef2-cycle.onnx"
            export(TAESD, model)
        folder = root / "files"
        folder.mkdir()
        paths = (make_camera_files if a.content == "camera" else make_files)(folder, a.n)
        print(f"{len(paths)} files of 1024x1024 (JPEG q90, content {a.content}); jobs {a.jobs} of {os.cpu_count()} cores")
        import compileall

        import fakescope_cli

        compileall.compile_dir(Path(fakescope_cli.__file__).parent, quiet=1)  # as an install would (bench_builtin.py)
        out = root / "out.jsonl"
        builtin_cmd = scan_cmd(folder, a.jobs, out)
        cycle_cmd = [*builtin_cmd, "--backend", "cycle", "--model", str(model)]
        Run(floor_cmd(folder, a.jobs))  # page cache and import caches
        runs: dict[str, list[Run]] = {"floor": [], "builtin": [], "cycle": []}
        for side in ("floor", "builtin", "cycle", "cycle", "builtin", "floor"):
            cmd = {"floor": floor_cmd(folder, a.jobs), "builtin": builtin_cmd, "cycle": cycle_cmd}[side]
            t = time.perf_counter()
            r = Run(cmd, None if side == "floor" else out)
            if side != "floor" and (r.records != a.n or r.errors):
                raise SystemExit(f"{side} scan wrote {r.records} records, {r.errors} with errors")
            runs[side].append(r)
            print(f"  {side:8s} {time.perf_counter() - t:7.2f}s", flush=True)
        rate = {k: statistics.mean(a.n / r.wall for r in v) for k, v in runs.items()}
        for k in runs:
            rss = max(r.max_one for r in runs[k])
            print(f"{k:8s} {rate[k]:8.1f} images/s  {1000 * a.jobs / rate[k]:7.1f} ms/image/worker  "
                  f"ratio to floor {rate[k] / rate['floor']:.3f}  peak RSS {rss:.0f} MiB/process")
        print(f"summary: n={a.n} jobs={a.jobs} content={a.content} cycle {rate['cycle']:.1f}/s = "
              f"{rate['cycle'] / rate['builtin']:.3f}x builtin, {rate['cycle'] / rate['floor']:.3f}x floor")


if __name__ == "__main__":
    main()
