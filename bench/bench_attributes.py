"""Cost of the 14-aspect attribute breakdown relative to one detection pass (target <= 2.5x).

Runs in one process, against a baseline measured in the same process:
  - detection only (1 probe) vs detection + 14 aspects with the shared KV prefix (hf backend),
  - the same 15 probes as 15 full passes (no prefix reuse: the Auto-class path), for comparison,
  - optionally the gguf backend on a GGUF conversion of the same checkpoint (--gguf).

By default it builds a small random LLaVA (hidden 256, 4 layers, 224 px / patch 14 = 256 image
tokens, so the image dominates the prompt as it does in a real LLaVA). --model DIR uses a real one.

    PYTHONPATH=. python bench/bench_attributes.py [--model DIR] [--images 8] [--batch 4] [--gguf]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, help="a transformers checkpoint folder (default: a random small LLaVA)")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings")
    ap.add_argument("--gguf", action="store_true", help="also time the gguf backend (random model only)")
    ap.add_argument("--threads", type=int, default=None, help="torch / llama.cpp threads")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from fakescope_cli.detectors.hf import HFDetector
    from fakescope_cli.media import Media
    from tests.tiny_models import build_llava, convert_to_gguf, make_images

    with tempfile.TemporaryDirectory(prefix="fakescope-bench-attr-") as tmp:
        tmpd = Path(tmp)
        model = args.model
        if model is None:
            model = build_llava(tmpd / "llava", hidden=256, image_size=224, patch=14)
        medias = [Media.open(p) for p in make_images(tmpd / "img", n=args.images, size=(320, 240))]
        det = HFDetector(model, device="auto", batch_size=args.batch)
        det.analyze_batch(medias[:2])  # warm-up
        det.attributes = False
        t_det = timed(lambda: det.analyze_batch(medias), args.repeat)
        det.attributes = True
        det.analyze_batch(medias[:2])
        t_attr = timed(lambda: det.analyze_batch(medias), args.repeat)
        print(f"hf, {det.device}, batch {args.batch}, {args.images} images")
        print(f"  detection only:                 {t_det / args.images * 1000:8.1f} ms/image")
        print(f"  detection + 14 aspects (prefix): {t_attr / args.images * 1000:8.1f} ms/image   "
              f"ratio {t_attr / t_det:.2f}x (target <= 2.5x)")
        full = HFDetector(model, device="auto", batch_size=args.batch, family="auto", attributes=True)
        full.analyze_batch(medias[:1])
        t_full = timed(lambda: full.analyze_batch(medias), 1)
        print(f"  15 full passes (no reuse):       {t_full / args.images * 1000:8.1f} ms/image   "
              f"ratio {t_full / t_det:.2f}x")
        if args.gguf and args.model is None:
            from fakescope_cli.detectors.gguf import GGUFDetector

            mpath, mmproj = convert_to_gguf(model, tmpd / "gguf")
            g = GGUFDetector(mpath, mmproj, n_threads=args.threads)
            g.analyze_batch(medias[:1])
            g.attributes = False
            g_det = timed(lambda: g.analyze_batch(medias), args.repeat)
            g.attributes = True
            g_attr = timed(lambda: g.analyze_batch(medias), args.repeat)
            print(f"gguf, {args.images} images")
            print(f"  detection only:                 {g_det / args.images * 1000:8.1f} ms/image")
            print(f"  detection + 14 aspects (prefix): {g_attr / args.images * 1000:8.1f} ms/image   "
                  f"ratio {g_attr / g_det:.2f}x (target <= 2.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
