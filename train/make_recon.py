"""Build the TAEF2 reconstruction cache.

    python -m train.make_recon DATA OUT.npz [size] [per_image] [taesd_dir] [--decoder-variants]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from .data import build_recon_cache, load_pool

if __name__ == "__main__":
    torch.set_num_threads(1)
    variants = "--decoder-variants" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--decoder-variants"]
    items = load_pool(Path(args[0]))
    size = int(args[2]) if len(args) > 2 else 128
    per = int(args[3]) if len(args) > 3 else 1
    taesd = Path(args[4]) if len(args) > 4 else Path(args[0]).parent / "models" / "taesd"
    build_recon_cache(items, taesd, Path(args[1]), size=size, per_image=per, decoder_variants=variants)
