"""Throughput of `--backend server` at --jobs 1, 4 and 16, and the speed-up over --jobs 1 measured
in the same run.

By default it builds the tiny random LLaVA of tests/tiny_models.py, converts it to GGUF and starts
llama-cpp-python's OpenAI-compatible server on 127.0.0.1 (`python -m llama_cpp.server`, the
`server` extra). --url points it at any running server instead (vLLM, SGLang, llama-server).

Each point is a full in-process scan (inputs, media, evidence, PNG encoding, HTTP, scoring, JSONL
rendering to /dev/null), best of --repeat runs, the result cache off.

    PYTHONPATH=. python bench/bench_server.py [--images 48] [--jobs 1,4,16] [--threads 1]
    PYTHONPATH=. python bench/bench_server.py --url http://gpu-host:8000 --model llava-hf/llava-1.5-7b-hf --images 256
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scan_once(folder: Path, url: str, model: str | None, jobs: int, top_logprobs: int, attributes: bool) -> tuple[float, int]:
    from fakescope_cli.analyze import ScanConfig
    from fakescope_cli.scan import RunOptions, run_scan

    options: dict[str, object] = {"url": url, "top_logprobs": top_logprobs, "attributes": attributes}
    if model:
        options["model"] = model
    config = ScanConfig(backend="server", backend_options=options, cache_dir=None)
    opts = RunOptions(paths=[str(folder)], config=config, fmt="jsonl", output=os.devnull, jobs=jobs, quiet=True)
    t = time.perf_counter()
    result = run_scan(opts)
    elapsed = time.perf_counter() - t
    if result.counts.get("errors"):
        raise SystemExit(f"{result.counts['errors']} file(s) failed at --jobs {jobs}: check --top-logprobs / the server")
    return elapsed, result.counts["files"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", help="a running server (default: start llama-cpp-python's with the tiny LLaVA)")
    ap.add_argument("--model", help="served model name (default: the only one the server lists)")
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size", default="256x192", help="image size WxH")
    ap.add_argument("--jobs", default="1,4,16")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per point")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the local server")
    ap.add_argument("--top-logprobs", type=int, default=None,
                    help="default: 1000 for the tiny model (random weights: the labels are far down), else 20")
    ap.add_argument("--attributes", action="store_true", help="15 probes per image instead of 1")
    args = ap.parse_args()
    jobs_list = [int(j) for j in args.jobs.split(",")]
    w, h = (int(v) for v in args.size.lower().split("x"))
    top = args.top_logprobs or (1000 if args.url is None else 20)

    from tests.server_harness import LlamaServer
    from tests.tiny_models import cached_gguf, make_images

    with tempfile.TemporaryDirectory(prefix="fakescope-bench-server-") as tmp:
        tmpd = Path(tmp)
        folder = tmpd / "images"
        make_images(folder, n=args.images, size=(w, h))
        server = None
        url = args.url
        try:
            if url is None:
                model_path, mmproj = cached_gguf(tmpd / "models", "llava")
                server = LlamaServer(model_path, mmproj, tmpd / "server.log", threads=args.threads).start()
                url = server.url
                what = (f"llama-cpp-python server (tiny random LLaVA GGUF, F32, {args.threads} thread(s)); it runs "
                        "one request at a time (a global lock, no parallel slots)")
            else:
                what = f"server at {url}"
            scan_once(folder, url, args.model, 1, top, args.attributes)  # warm-up (imports, connections)
            results: dict[int, float] = {}
            for jobs in jobs_list:
                best = min(scan_once(folder, url, args.model, jobs, top, args.attributes)[0] for _ in range(args.repeat))
                results[jobs] = best
        finally:
            if server is not None:
                server.stop()

    n = args.images
    probes = 15 if args.attributes else 1
    print(f"fakescope --backend server throughput: {n} images of {w}x{h}, {probes} probe(s) per image, "
          f"best of {args.repeat}")
    print(f"server: {what}")
    print(f"client: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
          f"top_logprobs={top}")
    base = results.get(1) or results[jobs_list[0]]
    base_jobs = 1 if 1 in results else jobs_list[0]
    print(f"{'jobs':>5} {'seconds':>8} {'images/s':>9} {'speed-up':>9}")
    for jobs in jobs_list:
        t = results[jobs]
        print(f"{jobs:>5} {t:>8.3f} {n / t:>9.1f} {base / t:>8.2f}x")
    print(f"(speed-up relative to --jobs {base_jobs} in this run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
