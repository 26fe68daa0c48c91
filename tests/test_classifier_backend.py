"""`--backend classifier`: image-classification checkpoints (ViT, Swin, SigLIP) in the label layouts
public detectors use, built tiny and random here (tests/tiny_classifiers.py), trained a few steps on
the planted trace and scanned through the real CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from fakescope_cli.errors import UsageError
from tests.conftest import run_cli

ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


# ---------------------------------------------------------------------------- label mapping (no torch)


@pytest.mark.parametrize(("id2label", "fake", "real"), [
    ({0: "artificial", 1: "human"}, [0], [1]),          # Swin (umm-maybe, Organika)
    ({0: "artificial", 1: "real"}, [0], [1]),           # SwinV2 (haywoodsloan)
    ({0: "ai", 1: "hum"}, [0], [1]),                    # SigLIP (Ateeqq)
    ({0: "REAL", 1: "FAKE"}, [1], [0]),                 # ViT, real first
    ({0: "fake", 1: "real"}, [0], [1]),                 # ViT, fake first
    ({0: "AI", 1: "Deepfake", 2: "Real"}, [0, 1], [2]),  # SigLIP2, 3 classes
    ({0: "real", 1: "full_synthetic", 2: "tampered"}, [1, 2], [0]),  # SID_Set's classes
    ({0: "Realism", 1: "Deepfake"}, [1], [0]),
])
def test_label_spellings_map_to_sides(id2label: dict[int, str], fake: list[int], real: list[int]) -> None:
    from fakescope_cli.detectors.classifier import map_labels

    assert map_labels(id2label, None) == (fake, real)


def test_generic_or_partial_labels_are_refused_unless_mapped() -> None:
    from fakescope_cli.detectors.classifier import map_labels

    with pytest.raises(UsageError) as err:
        map_labels({0: "LABEL_0", 1: "LABEL_1"}, None)
    assert "LABEL_0" in str(err.value) and "label_words" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UsageError, match="'cat' is on neither side"):
        map_labels({0: "fake", 1: "real", 2: "cat"}, None)
    with pytest.raises(UsageError, match="no class is on the real side"):
        map_labels({0: "fake", 1: "deepfake"}, None)
    assert map_labels({0: "LABEL_0", 1: "LABEL_1"}, {"fake": ["LABEL_1"], "real": ["LABEL_0"]}) == ([1], [0])
    with pytest.raises(UsageError, match="'LABEL_2' is on neither side"):
        map_labels({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, {"fake": ["LABEL_1"], "real": ["LABEL_0"]})


# ---------------------------------------------------------------------------- real checkpoints

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.tiny_classifiers import (  # noqa: E402
    LAYOUTS,
    build_classifier,
    make_planted,
    train_on_planted,
    write_json,
)

# The class(es) each planted half is taught, per layout.
TARGETS = {
    "vit": {"real": ["REAL"], "fake": ["FAKE"]},
    "swin": {"real": ["human"], "fake": ["artificial"]},
    "siglip3": {"real": ["Real"], "fake": ["AI", "Deepfake"]},
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("planted-classifiers")
    return {"train": make_planted(root / "train", 96, seed=1), "test": make_planted(root / "test", 32, seed=2),
            "root": root}


@pytest.fixture(scope="module")
def classifiers(planted: dict[str, Path]) -> dict[str, Path]:
    """name -> trained checkpoint folder; name + '-untrained' -> the same model before training."""
    import torch

    torch.set_num_threads(1)
    out: dict[str, Path] = {}
    for name, (model_type, id2label) in LAYOUTS.items():
        folder = planted["root"] / name
        model, processor = build_classifier(folder, model_type, id2label)
        shutil.copytree(folder, planted["root"] / f"{name}-untrained")
        inv = {v: k for k, v in id2label.items()}
        target = {side: [inv[c] for c in classes] for side, classes in TARGETS[name].items()}
        train_on_planted(model, processor, planted["train"], target, folder)
        out[name] = folder
        out[f"{name}-untrained"] = planted["root"] / f"{name}-untrained"
    return out


def scan(folder: Path, model: Path, *extra: str) -> Any:
    return run_cli("scan", str(folder), "-b", "classifier", "-m", str(model), "-f", "jsonl", "-j", "1", "--no-cache",
                   "-q", *extra, env=ENV, timeout=600)


def auc(records: list[dict[str, Any]]) -> float:
    from fakescope_cli import metrics

    # the detector's own score: the record's p_fake is capped below provenance's band (fusion), which ties
    # the most confident images
    value = metrics.roc_auc([1 if "/fake/" in r["path"] else 0 for r in records],
                            [r["detector"]["p_fake"] for r in records])
    assert value is not None
    return float(value)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_planted_trace_is_read_through_the_classifier_backend(name: str, classifiers: dict[str, Path],
                                                              planted: dict[str, Path]) -> None:
    proc = scan(planted["test"], classifiers[name], "--batch-size", "8")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(records) == 64 and all(r["errors"] == [] for r in records)
    _, id2label = LAYOUTS[name]
    fake_classes = TARGETS[name]["fake"]
    for r in records:
        det = r["detector"]
        assert det["id"] == "classifier" and det["labels"]["fake"] == fake_classes
        probs = det["raw"]["class_probabilities"]
        assert list(probs) == [id2label[i] for i in sorted(id2label)]
        assert det["p_fake"] == pytest.approx(sum(probs[c] for c in fake_classes), abs=1e-6)
        assert r["p_fake"] == pytest.approx(min(det["p_fake"], 0.95), abs=1e-6)
    trained = auc(records)
    base = scan(planted["test"], classifiers[f"{name}-untrained"])
    assert base.returncode == 0
    untrained = auc([json.loads(line) for line in base.stdout.decode().splitlines()])
    print(f"{name}: planted-trace AUC untrained {untrained:.3f}, trained {trained:.3f}")
    assert trained >= 0.9
    assert untrained < 0.9  # the separation comes from the training, not from the layout


@pytest.mark.slow
def test_8bit_quantisation_on_the_cpu_keeps_the_ranking(classifiers: dict[str, Path], planted: dict[str, Path]) -> None:
    pytest.importorskip("bitsandbytes")
    proc = scan(planted["test"], classifiers["swin"], "--quantize", "8bit")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert "MatMul8bitLt" not in proc.stderr.decode()
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert records[0]["detector"]["version"].endswith(":8bit") and records[0]["detector"]["quantize"] == "8bit"
    assert auc(records) >= 0.9
    refused = scan(planted["test"], classifiers["swin"], "--quantize", "4bit", "--device", "cpu")
    assert refused.returncode == 4 and "runs on CUDA" in refused.stderr.decode()


@pytest.mark.slow
def test_batches_give_the_scores_of_single_images_and_keep_bad_files_apart(classifiers: dict[str, Path],
                                                                          planted: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    from fakescope_cli.detectors import load_detector
    from fakescope_cli.errors import InputError
    from fakescope_cli.media import Media

    detector = load_detector("classifier", {"model": str(classifiers["swin"]), "batch_size": 4})
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    paths = sorted((planted["test"] / "fake").glob("*.png"))[:3] + [broken] + sorted((planted["test"] / "real").glob("*.png"))[:3]
    medias = []
    for p in paths:
        medias.append(Media.open(str(p)))
    batch = detector.analyze_batch(medias)
    assert isinstance(batch[3], InputError)
    for i, p in enumerate(paths):
        if i == 3:
            continue
        single = detector.analyze(Media.open(str(p)))
        assert batch[i].p_fake == pytest.approx(single.p_fake, abs=1e-5)


def _generic(folder: Path) -> Path:
    build_classifier(folder, "vit", {0: "LABEL_0", 1: "LABEL_1"}, seed=3)
    return folder


def test_generic_label_config_is_refused_with_one_line_then_mapped(tmp_path: Path, planted: dict[str, Path]) -> None:
    model = _generic(tmp_path / "generic")
    image = sorted((planted["test"] / "fake").glob("*.png"))[0]
    proc = scan(image, model)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and "LABEL_0" in err and "label_words" in err
    write_json(model / "fakescope.json", {"label_words": {"fake": ["LABEL_1"], "real": ["LABEL_0"]}})
    proc = scan(image, model)
    assert proc.returncode == 0, proc.stderr.decode()
    rec = json.loads(proc.stdout)
    probs = rec["detector"]["raw"]["class_probabilities"]
    assert rec["detector"]["p_fake"] == pytest.approx(probs["LABEL_1"], abs=1e-6)
    assert rec["detector"]["protocol"].startswith("fakescope-protocol/1+manifest.")
    # The manifest's calibration applies to the fake-vs-real log-odds.
    write_json(model / "fakescope.json", {"label_words": {"fake": ["LABEL_1"], "real": ["LABEL_0"]},
                                          "calibration": {"method": "platt", "a": 2.0, "b": 0.5}})
    calibrated = json.loads(scan(image, model).stdout)
    raw_p = calibrated["detector"]["raw"]["p_fake_raw"]
    assert raw_p == pytest.approx(probs["LABEL_1"], abs=1e-6)
    logit = math.log(raw_p) - math.log1p(-raw_p)
    assert calibrated["detector"]["p_fake"] == pytest.approx(1 / (1 + math.exp(-(2.0 * logit + 0.5))), abs=1e-6)


def test_pickle_remote_code_and_changed_weights_are_refused(tmp_path: Path, planted: dict[str, Path]) -> None:
    image = sorted((planted["test"] / "real").glob("*.png"))[0]
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "vit", "id2label": {"0": "fake", "1": "real"}}))
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    proc = scan(image, pickled)
    assert proc.returncode == 4 and "--trust-pickle" in proc.stderr.decode()

    remote = _generic(tmp_path / "remote")
    cfg = json.loads((remote / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForImageClassification": "modeling.Net"}
    cfg["id2label"] = {"0": "real", "1": "fake"}
    write_json(remote / "config.json", cfg)
    proc = scan(image, remote)
    assert proc.returncode == 4 and "never runs it" in proc.stderr.decode()
    proc = scan(image, remote, "--trust-remote-code")
    assert proc.returncode == 2 and "does not take --trust-remote-code" in proc.stderr.decode()

    pinned = _generic(tmp_path / "pinned")
    write_json(pinned / "fakescope.json", {"label_words": {"fake": ["LABEL_1"], "real": ["LABEL_0"]},
                                           "weights_sha256": "0" * 64})
    proc = scan(image, pinned)
    assert proc.returncode == 4 and "weights_sha256" in proc.stderr.decode()
