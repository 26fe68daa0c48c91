"""The embedded builtin detector: shipped weights, calibration JSON, inputs, determinism, no torch,
honest behaviour on sources the shipped model never trained on, and the training entry point."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope_cli.detectors.builtin import CONFIG_NAME, ONNX_NAME, WEIGHTS_DIR, BuiltinDetector
from fakescope_cli.media import Media
from tests.conftest import DATA, REPO

CARD = WEIGHTS_DIR / "builtin-card.md"


@pytest.fixture(scope="module")
def det() -> BuiltinDetector:
    return BuiltinDetector()


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads((WEIGHTS_DIR / CONFIG_NAME).read_text())


def _photo(tmp_path: Path, name: str = "photo.png", size: tuple[int, int] = (320, 240)) -> Path:
    """A deterministic textured RGB image (smooth gradient plus seeded noise)."""
    rng = np.random.default_rng(7)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], axis=-1)
    arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return path


def test_shipped_weights_small_and_sha_matches_json_and_card(det: BuiltinDetector, config: dict) -> None:
    blob = (WEIGHTS_DIR / ONNX_NAME).read_bytes()
    assert len(blob) <= 20 * 1024 * 1024
    sha = hashlib.sha256(blob).hexdigest()
    assert det.weights_sha256 == sha == config["weights_sha256"]
    assert sha in CARD.read_text()
    low, high = det.thresholds
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    assert config["uncertain"]["low"] == low and config["uncertain"]["high"] == high


def test_tampered_weights_refused(tmp_path: Path) -> None:
    from fakescope_cli.errors import DetectorUnavailable

    (tmp_path / ONNX_NAME).write_bytes((WEIGHTS_DIR / ONNX_NAME).read_bytes() + b"\0")
    (tmp_path / CONFIG_NAME).write_text((WEIGHTS_DIR / CONFIG_NAME).read_text())
    with pytest.raises(DetectorUnavailable):
        BuiltinDetector(weights_dir=tmp_path).analyze(Media.open(_photo(tmp_path)))


def test_probability_regions_and_determinism(det: BuiltinDetector, config: dict, tmp_path: Path) -> None:
    path = _photo(tmp_path, size=(600, 450))
    r1 = det.analyze(Media.open(path))
    r2 = det.analyze(Media.open(path))
    assert r1.p_fake is not None and 0.0 <= r1.p_fake <= 1.0
    assert r1.p_fake == r2.p_fake and r1.regions == r2.regions
    reg = r1.regions
    assert reg is not None and reg["rows"] == 3 and reg["cols"] == 3 and reg["tile"] == round(config["tile"] * config.get("downscale", 1))
    assert len(reg["p_fake"]) == reg["rows"] and all(len(row) == reg["cols"] for row in reg["p_fake"])
    assert all(0.0 <= v <= 1.0 for row in reg["p_fake"] for v in row)
    assert r1.raw["band"] in {"fake", "real", "uncertain"}
    json.dumps(r1.to_dict())


def test_small_image_uses_one_smaller_tile(det: BuiltinDetector, tmp_path: Path) -> None:
    res = det.analyze(Media.open(_photo(tmp_path, size=(42, 70))))
    assert res.regions is not None and (res.regions["rows"], res.regions["cols"]) == (1, 1)
    assert res.regions["tile"] == 40 and 0.0 <= res.p_fake <= 1.0


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA", "P", "LA"])
def test_modes_through_media_rgb(det: BuiltinDetector, tmp_path: Path, mode: str) -> None:
    src = Image.open(_photo(tmp_path))
    if mode == "I;16":
        arr = np.asarray(src.convert("L"), dtype=np.uint16) * 257
        img = Image.new("I;16", src.size)
        img.frombytes(arr.astype("<u2").tobytes())
        ext = "png"
    else:
        img = src.convert(mode)
        ext = "tiff" if mode == "CMYK" else "png"
    path = tmp_path / f"m.{ext}"
    img.save(path)
    media = Media.open(path)
    assert media.pixels().mode == mode
    res = det.analyze(media)
    assert res.p_fake is not None and 0.0 <= res.p_fake <= 1.0


@pytest.mark.slow
def test_no_torch_imported_at_inference(tmp_path: Path) -> None:
    path = _photo(tmp_path)
    code = (
        "import sys\n"
        "from fakescope_cli.detectors.builtin import BuiltinDetector\n"
        "from fakescope_cli.media import Media\n"
        f"r = BuiltinDetector().analyze(Media.open({str(path)!r}))\n"
        "assert 0 <= r.p_fake <= 1\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


@pytest.mark.slow
def test_heldout_sources_give_the_figures_in_the_card(config: dict) -> None:
    """Sources left out of the shipped fit (never seen in training): AUC and format-flip AUC as recorded.

    This pins the card to the shipped weights; it is not a quality bar (the card says how weak it is).
    """
    check = config.get("holdout_check")
    if not check or not (DATA / "manifest.csv").is_file():
        pytest.skip("no held-out sources recorded, or the shared pool is absent")
    from train.ship import heldout_auc

    measured = heldout_auc(DATA, check["sources"], WEIGHTS_DIR)
    assert measured["n_fake"] == check["n_fake"] and measured["n_real"] == check["n_real"]
    assert abs(measured["auc"] - check["auc"]) <= check["tolerance"], measured
    assert abs(measured["format_flip_auc"] - check["format_flip_auc"]) <= check["tolerance"], measured


@pytest.fixture(scope="module")
def taef2():
    """The TAEF2 autoencoder from ../shared/models (torch, one thread)."""
    torch = pytest.importorskip("torch")
    taesd = DATA.parent / "models" / "taesd"
    if not (taesd / "taef2_decoder.pth").is_file():
        pytest.skip("TAEF2 weights absent")
    from train.taef2 import TAEF2

    torch.set_num_threads(1)
    return TAEF2(taesd)


@pytest.mark.slow
def test_aligned_pair_reconstruction_scores_higher(det: BuiltinDetector, config: dict, tmp_path: Path, taef2) -> None:
    """A real photo crop vs. the same crop through the TAEF2 autoencoder: p_fake must go up on average."""
    import torch

    ae = taef2
    held = set(config.get("holdout_sources") or [])
    rows = [r for r in csv.DictReader((DATA / "manifest.csv").open()) if r["label"] == "real"]
    rows = [r for r in rows if r["source"] in held] or rows
    ups = []
    for r in rows[:: max(1, len(rows) // 8)][:8]:
        arr = np.asarray(Image.open(DATA / r["path"]).convert("RGB"))
        s = min(192, arr.shape[0] // 8 * 8, arr.shape[1] // 8 * 8)
        crop = np.ascontiguousarray(arr[:s, :s])
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
        rec = (ae.reconstruct(x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(crop).save(tmp_path / "a.png")
        Image.fromarray(rec).save(tmp_path / "b.png")
        ups.append(det.analyze(Media.open(tmp_path / "b.png")).p_fake - det.analyze(Media.open(tmp_path / "a.png")).p_fake)
    assert np.mean(ups) > 0 and sum(u > 0 for u in ups) >= len(ups) // 2 + 1, ups


@pytest.mark.slow
def test_decoder_variants_differ_from_taef2_and_are_reproducible(taef2) -> None:
    """The tried decoder-family recipe: four decoders, the first TAEF2's own, each decoding differently."""
    import torch

    ae = taef2
    arr = np.asarray(Image.open(sorted((DATA / "real").rglob("*.jpg"))[0]).convert("RGB"))[:64, :64]
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255
    variants = ae.decoder_variants()
    assert variants[0] is ae.decoder and len(variants) == 4
    outs = [ae.reconstruct(x, d) for d in variants]
    psnr = [float(10 * torch.log10(1 / ((o - x) ** 2).mean())) for o in outs]
    assert all(p > 18 for p in psnr), psnr  # still reconstructions of the photo, not noise
    for i in range(4):
        for j in range(i):
            assert (outs[i] - outs[j]).abs().max() > 0.01, (i, j)
    again = [ae.reconstruct(x, d) for d in ae.decoder_variants()]
    assert all(torch.equal(a, b) for a, b in zip(outs, again, strict=True))


@pytest.mark.slow
def test_train_builtin_tiny_run_gives_loadable_weights(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    if not (DATA / "manifest.csv").is_file():
        pytest.skip("shared pool absent")
    from train.builtin import train_builtin

    meta = train_builtin(DATA, tmp_path, seed=3, epochs=1, mode="pool", steps_per_epoch=3, batch=8, crop=32,
                         cv_folds=0, limit_per_source=1, threads=1, log=lambda *a: None)
    assert (tmp_path / ONNX_NAME).is_file() and meta["recipe"]["steps"] == 3
    d = BuiltinDetector(weights_dir=tmp_path, threads=1)
    assert d.weights_sha256 == json.loads((tmp_path / CONFIG_NAME).read_text())["weights_sha256"]
    res = d.analyze(Media.open(_photo(tmp_path)))
    assert res.p_fake is not None and 0.0 <= res.p_fake <= 1.0


def test_train_builtin_command_defaults_are_the_shipped_recipe(config: dict) -> None:
    """The card says `fakescope train builtin --data … --out … --seed 0` retrains the shipped recipe: its
    option defaults must stay in step with the recipe recorded in builtin.json."""
    import inspect

    from fakescope_cli.cli_train import train_builtin_cmd

    defaults = {name: p.default for name, p in inspect.signature(train_builtin_cmd).parameters.items()}
    recipe = config["recipe"]
    assert (defaults["mode"], defaults["width"], defaults["tile"], defaults["grid"]) == (
        recipe["mode"], recipe["width"], recipe["tile"], recipe["grid"])
    assert (defaults["jpeg_quality"], defaults["lossless_quality"]) == (recipe["norm_q"], recipe["lossless_q"])
    assert defaults["steps_per_epoch"] * defaults["epochs"] == recipe["steps"]
    assert defaults["seed"] == config["seed"] and defaults["consistency"] == recipe["consistency"]
    assert (defaults["downscale"], defaults["batch"], defaults["views"]) == (
        recipe["downscale"], recipe["batch"], recipe["views"])


def test_tiles_sit_on_the_jpeg_grid_and_are_reencoded_once(tmp_path: Path) -> None:
    from fakescope_cli.detectors.tiling import extract_tiles, jpeg_roundtrip, tile_layout

    t, ys, xs = tile_layout(1000, 777, 64, 3)
    assert t == 64 and len(ys) == 3 and len(xs) == 3
    assert all(o % 16 == 0 and 0 <= o <= 1000 - 64 for o in ys) and all(o % 16 == 0 and o <= 777 - 64 for o in xs)
    arr = np.asarray(Image.open(_photo(tmp_path, size=(300, 200))).convert("RGB"))
    plain, rows, cols, _ = extract_tiles(arr, 64, 3, 0)
    coded, _, _, _ = extract_tiles(arr, 64, 3, 80)
    assert plain.shape == coded.shape == (rows * cols, 3, 64, 64)
    _, ys, xs = tile_layout(200, 300, 64, 3)
    first = arr[ys[0] : ys[0] + 64, xs[0] : xs[0] + 64]
    assert np.array_equal(plain[0], first.transpose(2, 0, 1))
    again = np.asarray(jpeg_roundtrip(Image.fromarray(first), 80)).transpose(2, 0, 1)
    assert np.array_equal(coded[0], again) and not np.array_equal(coded[0], plain[0])
    # a Pillow image and its array give the same tiles (inference crops the image, training the array)
    pil_tiles, _, _, _ = extract_tiles(Image.fromarray(arr), 64, 3, 80)
    assert np.array_equal(pil_tiles, coded)


def test_lossless_files_get_one_jpeg_pass_jpeg_files_none(config: dict, tmp_path: Path) -> None:
    """With lossless_jpeg_quality set, a PNG is scored like the JPEG it would become: format is no cue."""
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / ONNX_NAME).write_bytes((WEIGHTS_DIR / ONNX_NAME).read_bytes())
    cfg = dict(config, lossless_jpeg_quality=90, jpeg_quality=0)
    (weights / CONFIG_NAME).write_text(json.dumps(cfg))
    d = BuiltinDetector(weights_dir=weights, threads=1)
    photo = Image.open(DATA / "real/ffdnet_testsets/CBSD68__101085.png") \
        if (DATA / "real/ffdnet_testsets/CBSD68__101085.png").is_file() else Image.open(_photo(tmp_path))
    rgb = photo.convert("RGB")
    rgb.save(tmp_path / "a.png")
    rgb.save(tmp_path / "a.jpg", quality=90, subsampling=2)
    rgb.save(tmp_path / "a.webp", lossless=True)
    png, jpg, webp = (d.analyze(Media.open(tmp_path / n)) for n in ("a.png", "a.jpg", "a.webp"))
    assert png.raw["tile_jpeg_quality"] == 90 and webp.raw["tile_jpeg_quality"] == 90
    assert jpg.raw["tile_jpeg_quality"] == 0
    assert png.p_fake == webp.p_fake
    # same pixels after one q90 pass (only chroma upsampling at tile borders differs): the PNG now scores
    # much closer to its JPEG than it does without the pass
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ONNX_NAME).write_bytes((WEIGHTS_DIR / ONNX_NAME).read_bytes())
    (plain / CONFIG_NAME).write_text(json.dumps(dict(cfg, lossless_jpeg_quality=0)))
    raw_png = BuiltinDetector(weights_dir=plain, threads=1).analyze(Media.open(tmp_path / "a.png"))
    assert raw_png.raw["tile_jpeg_quality"] == 0
    assert abs(png.raw["logit"] - jpg.raw["logit"]) < 0.5 * abs(raw_png.raw["logit"] - jpg.raw["logit"])


@pytest.mark.slow
def test_zero_shot_recon_error_is_lower_for_an_autoencoder_output(taef2) -> None:
    """The premise of `train.explore recon`: TAEF2 reconstructs its own output better than a photo. Measured
    on these eight photos: always for the error of pixel differences, on average for the plain error."""
    import torch

    from train.explore import recon_errors

    photo_errs, decoded_errs = [], []
    for path in sorted((DATA / "real").rglob("*.jpg"))[:8]:
        arr = np.asarray(Image.open(path).convert("RGB"))
        crop = np.ascontiguousarray(arr[: arr.shape[0] // 8 * 8, : arr.shape[1] // 8 * 8][:128, :128])
        x = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255
        decoded = (taef2.reconstruct(x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        photo_errs.append(recon_errors(taef2, crop))
        decoded_errs.append(recon_errors(taef2, decoded))
    photo, decoded = np.array(photo_errs), np.array(decoded_errs)
    assert (decoded[:, 1] < photo[:, 1]).all(), (photo, decoded)
    assert decoded[:, 0].mean() < photo[:, 0].mean() - 0.2, (photo, decoded)
    # double reconstruction: a photo loses much more in the first pass than its reconstruction loses in
    # the second; for an autoencoder output the two passes lose about as much
    assert (decoded[:, 0] - decoded[:, 3]).mean() < (photo[:, 0] - photo[:, 3]).mean() - 0.2, (photo, decoded)
