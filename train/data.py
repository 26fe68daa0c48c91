"""Pool loading, source-grouped folds, the shared augmentation chain and the TAEF2 reconstruction cache."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


@dataclass
class Item:
    path: str
    label: int  # 1 fake, 0 real
    source: str
    generator: str
    fmt: str
    arr: np.ndarray  # H,W,3 uint8 at native resolution
    # the file's JPEG quantisation tables and chroma subsampling (None for other formats): lets the
    # aligned recipe give a reconstruction the same compression history as the photo it came from
    qtables: dict | None = None
    subsampling: int | None = None


def manifest_path(data: Path) -> Path:
    data = Path(data)
    return data if data.is_file() else data / "manifest.csv"


def load_pool(data: Path, limit_per_source: int | None = None, min_side: int = 64) -> list[Item]:
    man = manifest_path(data)
    root = man.parent
    items: list[Item] = []
    per: dict[tuple[str, str], int] = {}
    with man.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = (row["source"], row["label"])
            if limit_per_source is not None and per.get(key, 0) >= limit_per_source:
                continue
            with Image.open(root / row["path"]) as im:
                im.load()
                from fakescope_cli.imageops import to_rgb8

                arr = np.asarray(to_rgb8(im), dtype=np.uint8)
                qtables, subsampling = None, None
                if im.format == "JPEG" and getattr(im, "quantization", None):
                    from PIL import JpegImagePlugin

                    qtables = dict(im.quantization)
                    subsampling = JpegImagePlugin.get_sampling(im)
            if min(arr.shape[:2]) < min_side:
                continue
            per[key] = per.get(key, 0) + 1
            items.append(Item(row["path"], 1 if row["label"] == "fake" else 0, row["source"], row["generator"],
                              row["format"], arr, qtables, subsampling))
    return items


def grouped_folds(items: list[Item], k: int, seed: int = 0) -> list[int]:
    """Assign whole sources to k folds, balancing fake and real counts so each fold has both labels."""
    counts: dict[str, list[int]] = {}
    for it in items:
        counts.setdefault(it.source, [0, 0])[it.label] += 1
    rng = random.Random(seed)
    sources = sorted(counts)
    rng.shuffle(sources)
    sources.sort(key=lambda s: -(counts[s][0] + counts[s][1]))
    load = [[0, 0] for _ in range(k)]
    fold_of: dict[str, int] = {}
    tot = [sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())]
    for s in sources:
        c = counts[s]
        # put the source where it most reduces the worst relative deficit of either label
        best = min(range(k), key=lambda f: max((load[f][0] + c[0]) / tot[0], (load[f][1] + c[1]) / tot[1]))
        fold_of[s] = best
        load[best][0] += c[0]
        load[best][1] += c[1]
    return [fold_of[it.source] for it in items]


# ---------------------------------------------------------------- augmentation (both classes alike)

@dataclass
class AugParams:
    scale: float
    jpeg_q: int | None
    blur: float
    flip: bool
    rot: int
    offset: tuple[float, float]


def sample_aug(rng: random.Random, p_jpeg: float = 0.75, p_resize: float = 0.5, p_blur: float = 0.15) -> AugParams:
    scale = rng.uniform(0.5, 1.0) if rng.random() < p_resize else 1.0
    q = rng.randint(60, 100) if rng.random() < p_jpeg else None
    blur = rng.uniform(0.2, 0.8) if rng.random() < p_blur else 0.0
    return AugParams(scale, q, blur, rng.random() < 0.5, rng.randint(0, 3) if rng.random() < 0.3 else 0,
                     (rng.random(), rng.random()))


def apply_aug(arr: np.ndarray, crop: int, a: AugParams) -> np.ndarray:
    """Crop (at native resolution, optionally downscaled by a.scale) -> blur -> JPEG -> flips."""
    h, w = arr.shape[:2]
    need = int(np.ceil(crop / a.scale)) if a.scale < 1.0 else crop
    need = min(need, h, w)
    y = int(a.offset[0] * (h - need))
    x = int(a.offset[1] * (w - need))
    patch = arr[y : y + need, x : x + need]
    im = Image.fromarray(patch)
    if need != crop:
        im = im.resize((crop, crop), Image.BICUBIC if a.scale > 0.75 else Image.LANCZOS)
    if a.blur > 0:
        im = im.filter(ImageFilter.GaussianBlur(a.blur))
    if a.jpeg_q is not None:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=a.jpeg_q)
        buf.seek(0)
        im = Image.open(buf)
        im.load()
    out = np.asarray(im, dtype=np.uint8)
    if a.flip:
        out = out[:, ::-1]
    if a.rot:
        out = np.rot90(out, a.rot)
    return np.ascontiguousarray(out)


def jpeg_like(arr: np.ndarray, source: Item) -> np.ndarray:
    """arr encoded as JPEG with `source`'s own quantisation tables and chroma subsampling, decoded."""
    extra = {"subsampling": source.subsampling} if (source.subsampling or 0) >= 0 else {}
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, "JPEG", qtables=source.qtables, **extra)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)


# ---------------------------------------------------------------- TAEF2 reconstruction cache

def build_recon_cache(items: list[Item], taesd_dir: Path, out: Path, size: int = 128, per_image: int = 1,
                      seed: int = 0, log: bool = True, match_history: bool = True,
                      decoder_variants: bool = False) -> Path:
    """For every real: `per_image` native-resolution crops (multiple of 8) and their TAEF2 reconstructions.

    With `match_history`, crops start on the 16-px JPEG MCU grid and a reconstruction of a JPEG photo is
    re-encoded with that file's own quantisation tables and subsampling: the photo half of the pair
    carries its JPEG history, and without this the net learns "JPEG traces = real" (a format shortcut
    the format-flip check exposes) instead of decoder traces.
    With `decoder_variants`, successive reconstructions cycle through TAEF2.decoder_variants().
    Saved as npz {real: N,S,S,3 uint8, recon: N,S,S,3 uint8, idx: N (index into items)}.
    """
    import time

    import torch

    from .taef2 import TAEF2

    ae = TAEF2(Path(taesd_dir))
    decoders = ae.decoder_variants() if decoder_variants else [ae.decoder]
    rng = random.Random(seed)
    reals, recons, idx = [], [], []
    t0 = time.time()
    todo = [i for i, it in enumerate(items) if it.label == 0]
    for n, i in enumerate(todo):
        arr = items[i].arr
        h, w = arr.shape[:2]
        s = min(size, (h // 8) * 8, (w // 8) * 8)
        if s < 64:
            continue
        for _ in range(per_image):
            y = rng.randint(0, h - s)
            x = rng.randint(0, w - s)
            if match_history:
                y, x = y - y % 16, x - x % 16
            patch = arr[y : y + s, x : x + s]
            if s != size:  # small image: upscale is wrong (adds resampling), so pad by reflection instead
                patch = np.pad(patch, ((0, size - s), (0, size - s), (0, 0)), mode="reflect")
            t = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)[None].float() / 255.0
            r = ae.reconstruct(t, decoders[len(recons) % len(decoders)])[0].permute(1, 2, 0).mul(255.0).round().byte().numpy()
            if match_history and items[i].qtables:
                r = jpeg_like(r, items[i])
            reals.append(patch)
            recons.append(r)
            idx.append(i)
        if log and n % 50 == 0:
            print(f"recon {n}/{len(todo)} {time.time() - t0:.0f}s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, real=np.stack(reals), recon=np.stack(recons), idx=np.array(idx), matched=np.array(match_history),
             decoder_variants=np.array(decoder_variants))
    return out
