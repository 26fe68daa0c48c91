"""Build the TAEF2 reconstruction cache: python -m train.make_recon DATA OUT.npz [size] [per_image]."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from .data import build_recon_cache, load_pool

if __name__ == "__main__":
    torch.set_num_threads(1)
    items = load_pool(Path(sys.argv[1]))
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    per = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    taesd = Path(sys.argv[5]) if len(sys.argv) > 5 else Path(sys.argv[1]).parent / "models" / "taesd"
    build_recon_cache(items, taesd, Path(sys.argv[2]), size=size, per_image=per)
