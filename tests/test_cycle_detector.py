"""The opt-in zero-shot `cycle` detector: export from the real TAEF2 weights, the detector's own graph
against the torch reference, its calibration file, the scan record, and its refusals."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope_cli.detectors.builtin import WEIGHTS_DIR
from fakescope_cli.detectors.cycle import CONFIG_NAME, LatentCycleDetector
from fakescope_cli.media import Media
from tests.conftest import DATA, FIXTURES, REPO, jsonl_records, run_cli

TAESD = DATA.parent / "models" / "taesd"
CONFIG = json.loads((WEIGHTS_DIR / CONFIG_NAME).read_text())


@pytest.fixture(scope="module")
def cycle_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX file, made by the real command from ../shared's TAEF2 weights."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    if not (TAESD / "taef2_decoder.pth").is_file():
        pytest.skip("TAEF2 weights absent")
    out = tmp_path_factory.mktemp("cycle") / "taef2-cycle.onnx"
    proc = run_cli("train", "cycle", "--taesd", str(TAESD), "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    assert out.is_file() and not out.with_name(out.name + ".part").exists()
    return out


@pytest.mark.slow
def test_graph_matches_the_torch_reference_and_the_shipped_calibration(cycle_model: Path) -> None:
    import onnxruntime as ort
    import torch

    from train.taef2 import TAEF2

    sess = ort.InferenceSession(str(cycle_model), providers=["CPUExecutionProvider"])
    # the calibration that ships was fitted on these very weights
    assert sess.get_modelmeta().custom_metadata_map["fakescope.taef2_sha256"] == CONFIG["taef2_sha256"]
    tiles = np.random.default_rng(0).integers(0, 256, (3, 3, 64, 48)).astype(np.float32)
    got = sess.run(None, {"tiles": tiles})[0]
    ae = TAEF2(TAESD)
    with torch.no_grad():
        x = torch.from_numpy(tiles) / 255
        z1 = ae.encoder(x)
        z2 = ae.encoder(ae.decoder(z1).clamp(0, 1))
    want = np.stack([np.log(((z2 - z1) ** 2).flatten(1).mean(1).numpy() + 1e-9),
                     np.log(z1.flatten(1).var(1).numpy() + 1e-9)], 1)
    np.testing.assert_allclose(got, want, atol=2e-3)


@pytest.mark.slow
def test_autoencoder_output_scores_higher_than_the_photo(cycle_model: Path, tmp_path: Path) -> None:
    """The premise the detector started from, at native scale (downscale 1), on camera JPEGs and pool photos:
    the same crop decoded by TAEF2 gets a higher p_fake than the photo itself."""
    import torch

    from train.taef2 import TAEF2

    ae = TAEF2(TAESD)
    photos = [FIXTURES / "exif-samples" / "jpg" / n for n in ("Canon_PowerShot_S40.jpg", "Reconyx_HC500_Hyperfire.jpg")]
    photos += sorted((DATA / "real").rglob("*.jpg"))[:: 97][:6]
    native = tmp_path / "native.json"
    native.write_text(json.dumps({**CONFIG, "downscale": 1.0}))
    det = LatentCycleDetector(model=cycle_model, threads=1, config=native)
    ups = []
    for i, path in enumerate(photos):
        arr = np.asarray(Image.open(path).convert("RGB"))
        s = min(192, arr.shape[0] // 8 * 8, arr.shape[1] // 8 * 8)
        crop = np.ascontiguousarray(arr[:s, :s])
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
        rec = (ae.reconstruct(x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(crop).save(tmp_path / f"photo{i}.png")
        Image.fromarray(rec).save(tmp_path / f"decoded{i}.png")
        ups.append(det.analyze(Media.open(tmp_path / f"decoded{i}.png")).p_fake
                   - det.analyze(Media.open(tmp_path / f"photo{i}.png")).p_fake)
    assert sum(u > 0 for u in ups) >= 7, ups


@pytest.mark.slow
def test_matched_pairs_within_a_source_rank_as_recorded(cycle_model: Path) -> None:
    """ml72_playground: 50 generated and 50 real images, all 512 x 512 JPEG, so neither size nor format can
    separate them. The shipped settings rank them as the card says (and well above chance)."""
    import csv

    from train.builtin import auc

    if not (DATA / "manifest.csv").is_file():
        pytest.skip("shared pool absent")
    rows = [r for r in csv.DictReader((DATA / "manifest.csv").open()) if r["source"] == "ml72_playground"]
    det = LatentCycleDetector(model=cycle_model, threads=2)
    scores = [det.analyze(Media.open(DATA / r["path"])).raw["cycle_score"] for r in rows]
    labels = np.array([r["label"] == "fake" for r in rows], dtype=int)
    measured = auc(np.array(scores), labels)
    recorded = CONFIG["validation"]["per_source"]["ml72_playground"]["auc_within"]
    assert abs(measured - recorded) <= 0.02 and measured > 0.7, (measured, recorded)


@pytest.mark.slow
def test_too_small_an_image_is_skipped_not_scored(cycle_model: Path, tmp_path: Path) -> None:
    side = int(8 * CONFIG.get("downscale", 1.0)) - 1
    Image.new("RGB", (side, 40), (120, 80, 40)).save(tmp_path / "thin.png")
    res = LatentCycleDetector(model=cycle_model, threads=1).analyze(Media.open(tmp_path / "thin.png"))
    assert res.p_fake is None and "smaller than" in res.raw["skipped"]


@pytest.mark.slow
def test_scan_record_names_the_model_and_maps_the_tiles(cycle_model: Path) -> None:
    photo = FIXTURES / "exif-samples" / "jpg" / "Reconyx_HC500_Hyperfire.jpg"
    before = hashlib.sha256(photo.read_bytes()).hexdigest()
    proc = run_cli("scan", str(photo), "--backend", "cycle", "--model", str(cycle_model), "-f", "jsonl", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    (rec,) = jsonl_records(proc.stdout)
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == before
    custody = rec["custody"]
    assert custody["detector_id"] == "cycle" and custody["detector_version"] == CONFIG["version"]
    assert custody["weights_sha256"] == hashlib.sha256(cycle_model.read_bytes()).hexdigest()
    det = rec["detector"]
    assert 0.0 < det["p_fake"] < 1.0
    regions = det["regions"]
    assert regions["rows"] == regions["cols"] == 3 and regions["tile"] == round(64 * CONFIG.get("downscale", 1.0))
    assert all(0.0 < p < 1.0 for row in regions["p_fake"] for p in row)
    # the image's p is the calibrated mean tile score, consistent with the raw score it reports
    a, b = CONFIG["calibration"]["a"], CONFIG["calibration"]["b"]
    assert det["p_fake"] == pytest.approx(1 / (1 + np.exp(-(a * det["raw"]["cycle_score"] + b))), abs=1e-6)


@pytest.mark.slow
def test_missing_model_is_a_detector_error_with_the_fix(tmp_path: Path) -> None:
    photo = FIXTURES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"
    proc = run_cli("scan", str(photo), "--backend", "cycle", "--model", str(tmp_path / "absent.onnx"), "-q")
    assert proc.returncode == 4
    assert "fakescope train cycle" in proc.stderr.decode()
    assert proc.stdout == b""  # refused before any output was started
    report = tmp_path / "report.sarif"
    proc = run_cli("scan", str(photo), "--backend", "cycle", "--model", str(tmp_path / "absent.onnx"), "-q",
                   "-f", "sarif", "-o", str(report))
    assert proc.returncode == 4 and not report.exists()


@pytest.mark.slow
def test_unloadable_model_stops_the_scan_and_says_so(tmp_path: Path) -> None:
    photo = FIXTURES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    proc = run_cli("scan", str(photo), "--backend", "cycle", "--model", str(broken), "-q", "--no-cache")
    assert proc.returncode == 4
    assert "cannot load the latent-cycle model" in proc.stderr.decode()
    assert "stopped after 0 file(s)" not in proc.stderr.decode()
    # the table's footer and SARIF's notification say the detector stopped it, not a Ctrl-C
    assert b"stopped early" in proc.stdout and b"interrupted" not in proc.stdout
    sarif = run_cli("scan", str(photo), "--backend", "cycle", "--model", str(broken), "-q", "--no-cache",
                    "-f", "sarif")
    invocation = json.loads(sarif.stdout)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    texts = [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
    assert any(t.startswith("The scan stopped early, its detector lost (cannot load") for t in texts), texts


@pytest.mark.slow
def test_model_from_other_weights_is_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not (TAESD / "taef2_decoder.pth").is_file():
        pytest.skip("TAEF2 weights absent")
    other = tmp_path / "taesd"
    other.mkdir()
    (other / "taef2_encoder.pth").write_bytes((TAESD / "taef2_encoder.pth").read_bytes())
    dec = torch.load(TAESD / "taef2_decoder.pth", map_location="cpu", weights_only=True)
    first = next(iter(dec))
    dec[first] = dec[first] * 1.01
    torch.save(dec, other / "taef2_decoder.pth")
    from train.cycle import export

    model = tmp_path / "other.onnx"
    export(other, model)
    photo = FIXTURES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"
    proc = run_cli("scan", str(photo), "--backend", "cycle", "--model", str(model), "-q")
    assert proc.returncode == 4
    assert "not exported from the TAEF2 weights" in proc.stderr.decode()


@pytest.mark.slow
def test_no_torch_imported_at_inference(cycle_model: Path) -> None:
    photo = FIXTURES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"
    code = (
        "import sys\n"
        "from fakescope_cli.detectors.cycle import LatentCycleDetector\n"
        "from fakescope_cli.media import Media\n"
        f"r = LatentCycleDetector(model={str(cycle_model)!r}).analyze(Media.open({str(photo)!r}))\n"
        "assert 0 < r.p_fake < 1\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


@pytest.mark.slow
def test_validate_writes_a_config_the_detector_reads(cycle_model: Path, tmp_path: Path) -> None:
    """`python -m train.cycle validate` on a few images per source: figures, calibration and a config file
    that the detector then uses (the shipped cycle.json is this command's output on the whole pool)."""
    if not (DATA / "manifest.csv").is_file():
        pytest.skip("shared pool absent")
    from train.cycle import validate

    cfg = tmp_path / "cycle.json"
    res = validate(DATA, cycle_model, tmp_path / "v.json", threads=2, write_config=cfg, limit_per_source=2,
                   downscale=CONFIG.get("downscale", 1.0), log=lambda *a: None)
    written = json.loads(cfg.read_text())
    assert written["taef2_sha256"] == CONFIG["taef2_sha256"] and written["version"] == CONFIG["version"]
    assert 0.0 <= res["pooled_auc"] <= 1.0 and len(res["scores"]) == res["n_images"] == len(res["flip_scores"])
    # reals are not re-encoded in the format flip; every fake is
    labels = np.array(res["labels"])
    same = np.isclose(res["scores"], res["flip_scores"])
    assert same[labels == 0].all() and not same[labels == 1].all()
    det = LatentCycleDetector(model=cycle_model, threads=1, config=cfg)
    r = det.analyze(Media.open(FIXTURES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"))
    a, b = written["calibration"]["a"], written["calibration"]["b"]
    assert r.p_fake == pytest.approx(1 / (1 + np.exp(-(a * r.raw["cycle_score"] + b))))


def test_shipped_config_matches_its_validation_run() -> None:
    """cycle.json's figures are the whole-pool run of the command it names (build/cycle_validate.json)."""
    v = CONFIG["validation"]
    assert v["n_images"] > 1500 and CONFIG["tile"] == 64 and CONFIG["max_grid"] == 3 and CONFIG["downscale"] == 2
    assert 0.5 < v["mean_source_auc"] < 1.0 and abs(v["format_flip_delta"]) < 0.1
    card = (WEIGHTS_DIR / "cycle-card.md").read_text()
    for key in ("pooled_auc", "mean_source_auc", "mean_within_source_auc"):
        assert f"{v[key]:.3f}" in card, key
    assert f"{v['format_flip_delta']:+.3f}".replace("-", "−") in card


@pytest.mark.slow
def test_model_found_through_the_environment_and_listed(cycle_model: Path, tmp_path: Path) -> None:
    absent = run_cli("models", "list", env={"FAKESCOPE_CYCLE_MODEL": str(tmp_path / "absent.onnx")})
    line = next(ln for ln in absent.stdout.decode().splitlines() if ln.startswith("cycle"))
    assert "fakescope train cycle" in line and "absent.onnx" in line
    present = run_cli("models", "list", env={"FAKESCOPE_CYCLE_MODEL": str(cycle_model)})
    line = next(ln for ln in present.stdout.decode().splitlines() if ln.startswith("cycle"))
    assert line.split()[1] == "available"
    photo = FIXTURES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"
    proc = run_cli("scan", str(photo), "-b", "cycle", "-f", "jsonl", "-q", env={"FAKESCOPE_CYCLE_MODEL": str(cycle_model)})
    assert proc.returncode == 0, proc.stderr.decode()
    assert jsonl_records(proc.stdout)[0]["custody"]["detector_id"] == "cycle"


def test_band_side_stays_open_only_if_it_holds_across_source_groups() -> None:
    from train.cycle import checked_band

    rng = np.random.default_rng(0)
    sources, labels, scores = [], [], []
    for g in range(8):  # eight sources with both labels; fakes score higher
        for y in (0, 1):
            sources += [f"s{g}"] * 60
            labels += [y] * 60
            scores += list(rng.normal(2.0 * y, 1.0, 60))
    labels_a, scores_a = np.array(labels), np.array(scores)

    def band_of(sc: np.ndarray) -> dict:
        from train.builtin import fit_platt

        a, b = fit_platt(sc, labels_a)
        return checked_band(1 / (1 + np.exp(-(a * sc + b))), sc, labels_a, sources)

    consistent = band_of(scores_a)
    assert consistent["high"] < 1.0 and consistent["low"] > 0.0 and "closed_high" not in consistent
    assert consistent["crossfit_precision"]["high"] >= 0.85
    # one source whose scores sit 3 higher for both labels (its images are, say, all small): fitted on the
    # whole pool the AI side opens above that source's reals, but refitted without it, the threshold falls
    # where that source's reals lie, as happened on the shared pool
    shifted = scores_a + np.array([3.0 if s == "s0" else 0.0 for s in sources])
    band = band_of(shifted)
    assert band["fitted"]["high"] < 1.0  # it did open on the whole pool
    assert band["high"] == 1.0 and band["crossfit_precision"]["high"] < 0.85
