"""Labelled input loading, the eval report, calibration files and the terminal rendering.

Images are real PNG/JPEG files written with Pillow into tmp trees; records are built with the
real `ScanRecord` (error records from the real `Media` errors). Scores are assigned per file, since
no detector runs here; the expected numbers are worked out in the comments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fakescope_cli import evaluate as ev
from fakescope_cli import threshold_file as tf
from fakescope_cli.errors import InputError, UsageError
from fakescope_cli.media import Media
from fakescope_cli.record import ScanRecord

WEIGHTS = "ab" * 32


def _image(path: Path, fmt: str, color: tuple[int, int, int] = (120, 40, 200)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), color).save(path, format=fmt)


def _record(path: str, p_fake: float | None, detector_id: str = "builtin",
            weights: str | None = WEIGHTS) -> dict[str, Any]:
    """A scan record the way scan builds one: open the file, error record on InputError."""
    rec = ScanRecord(path=path, detector_id=detector_id, weights_sha256=weights)
    try:
        media = Media.open(path)
        rec.format, rec.width, rec.height = media.format, media.width, media.height
        media.header  # noqa: B018 - raises InputError for a non-image, like the scan
    except InputError as exc:
        rec.add_error(exc.code, exc.message)
        return rec.to_dict()
    rec.p_fake = p_fake
    rec.verdict = "no-verdict" if p_fake is None else ("likely-ai" if p_fake >= 0.5 else "likely-real")
    return rec.to_dict()


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _image(root / "real" / "a.png", "PNG")
    _image(root / "real" / "c.jpg", "JPEG")
    _image(root / "real" / "camera" / "b.jpg", "JPEG")
    _image(root / "fake" / "midjourney" / "x.png", "PNG")
    _image(root / "fake" / "midjourney" / "deep" / "y.jpg", "JPEG")
    _image(root / "fake" / "sd" / "z.png", "PNG")
    _image(root / "fake" / "w.png", "PNG")
    # a PNG without an extension is an image by its bytes
    _image(root / "fake" / "sd" / "noext", "PNG")
    # a .jpg that is not an image reaches the scan (and becomes an error record)
    (root / "fake" / "sd" / "garbage.jpg").write_bytes(b"this is not a jpeg at all, just text" * 3)
    (root / "real" / "notes.txt").write_text("camera roll export\n")
    (root / "README").write_text("labelled set\n")
    return root


def _rel(root: Path, items: list[ev.LabelledItem]) -> list[tuple[str, int, str]]:
    return [(Path(i.path).relative_to(root).as_posix(), i.label, i.group) for i in items]


def test_load_folder_labels_groups_and_skips(tree: Path) -> None:
    skipped: list[str] = []
    items = ev.load_labelled(tree, skipped=skipped)
    # fake/ before real/ (sorted), files before subfolders inside each folder, all sorted
    assert _rel(tree, items) == [
        ("fake/w.png", 1, "fake"),
        ("fake/midjourney/x.png", 1, "midjourney"),
        ("fake/midjourney/deep/y.jpg", 1, "midjourney"),
        ("fake/sd/garbage.jpg", 1, "sd"),
        ("fake/sd/noext", 1, "sd"),
        ("fake/sd/z.png", 1, "sd"),
        ("real/a.png", 0, "real"),
        ("real/c.jpg", 0, "real"),
        ("real/camera/b.jpg", 0, "camera"),
    ]
    assert [Path(p).relative_to(tree).as_posix() for p in skipped] == ["real/notes.txt"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_load_folder_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    _image(tmp_path / "real" / "a.png", "PNG")
    os.mkfifo(tmp_path / "real" / "pipe")  # no extension: would be sniffed, must not be opened blocking
    skipped: list[str] = []
    items = ev.load_labelled(tmp_path, skipped=skipped)
    assert [Path(i.path).name for i in items] == ["a.png"]
    assert [Path(p).name for p in skipped] == ["pipe"]
    os.mkfifo(tmp_path / "cal.json")
    with pytest.raises(UsageError, match="not a regular file"):
        tf.load_threshold_file(tmp_path / "cal.json")


def test_load_folder_class_names_are_case_insensitive(tmp_path: Path) -> None:
    _image(tmp_path / "Real" / "a.png", "PNG")
    _image(tmp_path / "FAKE" / "dalle" / "b.jpg", "JPEG")
    items = ev.load_labelled(str(tmp_path))
    assert [(i.label, i.group) for i in items] == [(1, "dalle"), (0, "real")]


def test_load_folder_without_class_folders_is_a_usage_error(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.png", "PNG")
    with pytest.raises(UsageError, match="'real/' and/or 'fake/'"):
        ev.load_labelled(tmp_path)
    with pytest.raises(UsageError, match="no such folder or CSV"):
        ev.load_labelled(tmp_path / "missing")


def test_load_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sets = tmp_path / "sets"
    _image(sets / "img" / "one.png", "PNG")
    _image(sets / "img" / "two.jpg", "JPEG")
    elsewhere = tmp_path / "abs.png"
    _image(elsewhere, "PNG")
    # BOM and mixed-case header, as a spreadsheet writes it; labels in every accepted spelling
    (sets / "labels.csv").write_text(
        "\ufeffPath, Label ,Generator\n"
        "img/one.png,REAL,\n"
        "img/two.jpg,ai,flux\n"
        f"{elsewhere},Fake,sdxl\n"
        "img/missing.png,1,flux\n"
        "img/h.png,Human,phone\n"
        "img/z.png,0,\n"
        "\n"
        "img/two.jpg,fake,flux\n",  # an exact repeat is dropped, not counted twice
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the CSV's folder, not the cwd
    items = ev.load_labelled("sets/labels.csv")
    assert [(i.path, i.label, i.group) for i in items] == [
        (os.path.join("sets", "img/one.png"), 0, "real"),
        (os.path.join("sets", "img/two.jpg"), 1, "flux"),
        (str(elsewhere), 1, "sdxl"),
        (os.path.join("sets", "img/missing.png"), 1, "flux"),
        (os.path.join("sets", "img/h.png"), 0, "phone"),
        (os.path.join("sets", "img/z.png"), 0, "real"),
    ]
    assert os.path.isfile(items[0].path) and os.path.isfile(items[1].path)


def test_load_csv_group_from_source_column_and_tsv(tmp_path: Path) -> None:
    f = tmp_path / "l.tsv"
    f.write_text("source\tpath\tlabel\nweb\ta.png\treal\n", encoding="utf-8")
    assert ev.load_labelled(f) == [ev.LabelledItem(str(tmp_path / "a.png"), 0, "web")]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("file,label\na.png,real\n", "'path' and 'label'"),
        ("path,label\na.png,real\nb.png,synthetic\n", r"l\.csv:3: label 'synthetic'"),
        ("path,label\na.png\n", r"l\.csv:2: missing path or label"),
        ("path,label\n ,fake\n", "empty path"),
        ("path,label\na.png,real\na.png,fake\n", "labelled differently on line 2"),
    ],
)
def test_load_csv_rejects_malformed(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "l.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=match):
        ev.load_labelled(f)


def test_load_csv_rejects_non_utf8(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_bytes(b"path,label\n\xff\xfe\xfa.png,real\n")
    with pytest.raises(UsageError, match="UTF-8"):
        ev.load_labelled(f)


def test_parse_label() -> None:
    assert [ev.parse_label(t) for t in ("real", " HUMAN ", "0", "Fake", "AI", "1")] == [0, 0, 0, 1, 1, 1]
    with pytest.raises(UsageError):
        ev.parse_label("yes")


# Scores for the tree: the six scored items are the metrics tests' example A,
#   0.9 F (midjourney/x), 0.8 R (real/a), 0.7 F (midjourney/deep/y), 0.4 R (camera/b),
#   0.3 F (sd/z), 0.1 R (real/c)
# and three fakes are left out: sd/garbage.jpg (not an image -> error record), fake/w.png (null
# p_fake), sd/noext (no record at all).
TREE_SCORES = {
    "fake/midjourney/x.png": 0.9,
    "real/a.png": 0.8,
    "fake/midjourney/deep/y.jpg": 0.7,
    "real/camera/b.jpg": 0.4,
    "fake/sd/z.png": 0.3,
    "real/c.jpg": 0.1,
    "fake/w.png": None,
    "fake/sd/garbage.jpg": 0.99,  # never used: the record is an error
}


def _tree_records(tree: Path, items: list[ev.LabelledItem], absolute: bool = False) -> list[dict[str, Any]]:
    out = []
    for it in items:
        rel = Path(it.path).relative_to(tree).as_posix()
        if rel in TREE_SCORES:
            out.append(_record(os.path.abspath(it.path) if absolute else it.path, TREE_SCORES[rel]))
    return out


def test_evaluate_report_on_folder(tree: Path) -> None:
    items = ev.load_labelled(tree)
    report = ev.evaluate(items, _tree_records(tree, items), threshold=0.5)
    json.dumps(report, allow_nan=False)  # JSON-ready, no NaN

    assert (report["n"], report["n_scored"], report["n_unscored"]) == (9, 6, 3)
    assert report["unscored_by_reason"] == {"no-score": 1, "not-scanned": 1, "unsupported-format": 1}
    assert {e["reason"] for e in report["unscored_examples"]} == set(report["unscored_by_reason"])
    assert report["classes"] == {"real": {"n": 3, "n_scored": 3}, "fake": {"n": 6, "n_scored": 3}}
    # example A values (derived in test_metrics.py)
    assert report["auc"] == pytest.approx(2 / 3)
    assert report["ap"] == pytest.approx(34 / 45)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion"] == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    assert report["ece"] == pytest.approx(0.4)
    assert report["brier"] == pytest.approx(1.4 / 6)
    # 3 reals allow no false positive at 1 % or 5 %: threshold above the top real 0.8 -> 0.9,
    # which catches 1 of 3 fakes
    assert report["tpr_at_fpr"] == {"0.01": pytest.approx(1 / 3), "0.05": pytest.approx(1 / 3)}
    assert report["threshold_at_fpr"] == {"0.01": 0.9, "0.05": 0.9}
    assert any("no false positive" in n for n in report["notes"])
    assert any("3 item(s) could not be scored" in n for n in report["notes"])
    assert report["detectors"] == [{"detector_id": "builtin", "weights_sha256": WEIGHTS}]

    g = report["by_group"]
    assert list(g) == ["camera", "fake", "midjourney", "real", "sd"]
    # real/: a 0.8 (flagged, wrong), c 0.1 (right) -> accuracy 1/2, mean 0.45, one class -> no AUC
    assert g["real"] == {"n": 2, "n_scored": 2, "n_real": 2, "n_fake": 0, "auc": None,
                         "accuracy": pytest.approx(0.5), "mean_p_fake": pytest.approx(0.45)}
    assert g["midjourney"]["accuracy"] == 1.0 and g["midjourney"]["mean_p_fake"] == pytest.approx(0.8)
    # sd: z scored 0.3 (missed), garbage and noext unscored
    assert (g["sd"]["n"], g["sd"]["n_scored"], g["sd"]["accuracy"]) == (3, 1, 0.0)
    # fake/w.png alone, unscored: nothing to average
    assert g["fake"] == {"n": 1, "n_scored": 0, "n_real": 0, "n_fake": 0, "auc": None,
                         "accuracy": None, "mean_p_fake": None}
    assert g["camera"]["accuracy"] == 1.0


def test_evaluate_threshold_changes_the_confusion(tree: Path) -> None:
    items = ev.load_labelled(tree)
    report = ev.evaluate(items, _tree_records(tree, items), threshold=0.85)
    # only 0.9 is flagged: tp 1, fn 2, tn 3
    assert report["confusion"] == {"tp": 1, "fp": 0, "tn": 3, "fn": 2}
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["auc"] == pytest.approx(2 / 3)  # ranking metrics do not depend on it
    with pytest.raises(UsageError):
        ev.evaluate(items, [], threshold=float("nan"))


def test_evaluate_joins_records_by_normalised_path(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.parent)
    items = ev.load_labelled("data")  # relative item paths
    records = _tree_records(tree.parent / "data", [ev.LabelledItem(os.path.abspath(i.path), i.label, i.group)
                                                  for i in items], absolute=True)
    report = ev.evaluate(items, records)
    assert report["n_scored"] == 6 and report["auc"] == pytest.approx(2 / 3)


def test_evaluate_group_auc_with_both_classes(tmp_path: Path) -> None:
    for name in ("f1.png", "r1.png", "r2.png", "f2.png"):
        _image(tmp_path / name, "PNG")
    (tmp_path / "l.csv").write_text(
        "path,label,source\nf1.png,fake,web\nr1.png,real,web\nr2.png,real,web\nf2.png,fake,lab\n"
    )
    items = ev.load_labelled(tmp_path / "l.csv")
    scores = {"f1.png": 0.6, "r1.png": 0.2, "r2.png": 0.7, "f2.png": 0.95}
    records = [_record(i.path, scores[Path(i.path).name]) for i in items]
    report = ev.evaluate(items, records)
    # web: fake 0.6 vs reals 0.2 (right) and 0.7 (wrong) -> AUC 1/2
    assert report["by_group"]["web"]["auc"] == pytest.approx(0.5)
    assert report["by_group"]["lab"]["auc"] is None
    # overall: 0.95 beats both reals, 0.6 beats one -> 3/4
    assert report["auc"] == pytest.approx(0.75)


def test_evaluate_empty_and_single_class() -> None:
    report = ev.evaluate([], [])
    assert report["n"] == 0 and report["auc"] is None and report["accuracy"] is None
    assert report["tpr_at_fpr"] == {"0.01": None, "0.05": None}
    text = ev.render_eval_text(report)
    assert "0 images" in text and "n/a" in text

    items = [ev.LabelledItem("a.png", 1, "sd"), ev.LabelledItem("b.png", 1, "sd")]
    recs = [{"path": "a.png", "verdict": "likely-ai", "p_fake": 0.9},
            {"path": "b.png", "verdict": "uncertain", "p_fake": 0.4}]
    report = ev.evaluate(items, recs)
    assert report["auc"] is None and report["threshold_at_fpr"] == {"0.01": None, "0.05": None}
    assert any("only fake samples" in n for n in report["notes"])
    assert report["accuracy"] == pytest.approx(0.5)


def test_report_with_undecodable_file_names_is_utf8_json() -> None:
    odd = os.fsdecode(b"caf\xe9.png")  # Latin-1 name on a UTF-8 system: a surrogate escape
    items = [ev.LabelledItem(odd, 1, os.fsdecode(b"gen\xff")), ev.LabelledItem("b.png", 0, "real")]
    report = ev.evaluate(items, [{"path": "b.png", "p_fake": 0.2}])
    json.dumps(report, ensure_ascii=False).encode("utf-8")
    assert report["unscored_examples"] == [{"path": "caf\\xe9.png", "reason": "not-scanned"}]
    assert "gen\\xff" in report["by_group"]


def test_evaluate_rejects_out_of_range_scores_as_unscored() -> None:
    items = [ev.LabelledItem("a.png", 1, "g"), ev.LabelledItem("b.png", 0, "g"), ev.LabelledItem("c", 0, "g")]
    recs = [{"path": "a.png", "verdict": "likely-ai", "p_fake": 1.7},
            {"path": "b.png", "verdict": "likely-real", "p_fake": "0.1"},
            {"path": "c", "verdict": "error", "p_fake": 0.3, "errors": []}]
    report = ev.evaluate(items, recs)
    assert report["n_scored"] == 0
    assert report["unscored_by_reason"] == {"error": 1, "invalid-score": 2}


# ---------------------------------------------------------------- calibration


def test_calibration_on_the_tree(tree: Path, tmp_path: Path) -> None:
    items = ev.load_labelled(tree)
    cal = ev.threshold_file_from_eval(items, _tree_records(tree, items), target_fpr=0.34)
    # 3 reals, k = floor(0.34 * 3) = 1 false positive allowed: threshold above the second-highest
    # real 0.4 -> the next observed score 0.7; flags 0.9 F, 0.8 R, 0.7 F
    assert cal["threshold"] == 0.7
    assert cal["measured_fpr"] == pytest.approx(1 / 3) and cal["measured_tpr"] == pytest.approx(2 / 3)
    assert (cal["n_real"], cal["n_fake"]) == (3, 3)
    assert (cal["detector_id"], cal["weights_sha256"]) == ("builtin", WEIGHTS)
    assert cal["format"] == "fakescope-calibration/1" and cal["created_at"].endswith("Z")
    assert any("left out" in w for w in cal["warnings"])
    out = tmp_path / "cal.json"
    out.write_text(json.dumps(cal, allow_nan=False))
    assert tf.load_threshold_file(out) == cal


def test_calibration_threshold_meets_the_target_fpr() -> None:
    rng = np.random.default_rng(3)
    n_real, n_fake = 400, 150
    real_p = np.clip(rng.beta(2, 5, n_real), 0, 1)
    fake_p = np.clip(rng.beta(5, 2, n_fake), 0, 1)
    items = [ev.LabelledItem(f"r{i}.png", 0, "real") for i in range(n_real)]
    items += [ev.LabelledItem(f"f{i}.png", 1, "gen") for i in range(n_fake)]
    recs = [{"path": it.path, "verdict": "uncertain", "p_fake": float(p)}
            for it, p in zip(items, np.r_[real_p, fake_p], strict=True)]
    for target in (0.01, 0.05, 0.2):
        cal = ev.threshold_file_from_eval(items, recs, target)
        t = cal["threshold"]
        flagged_real = int(np.count_nonzero(real_p >= t))
        assert flagged_real / n_real <= target
        assert cal["measured_fpr"] == flagged_real / n_real
        assert cal["measured_tpr"] == np.count_nonzero(fake_p >= t) / n_fake
        # smallest: the next lower observed score would exceed the target
        scores = np.r_[real_p, fake_p]
        lower = scores[scores < t]
        assert np.count_nonzero(real_p >= lower.max()) / n_real > target
        assert cal["warnings"] == []
        # the eval report at that threshold agrees
        report = ev.evaluate(items, recs, threshold=t)
        assert report["confusion"]["fp"] == flagged_real


def test_calibration_errors_and_warnings() -> None:
    fakes = [ev.LabelledItem("a", 1, "g")]
    with pytest.raises(UsageError, match="scored real images"):
        ev.threshold_file_from_eval(fakes, [{"path": "a", "verdict": "likely-ai", "p_fake": 0.9}], 0.05)
    items = [ev.LabelledItem("a", 0, "g"), ev.LabelledItem("b", 0, "g")]
    mixed = [_rec_with("a", 0.2, "builtin"), _rec_with("b", 0.3, "hf")]
    with pytest.raises(UsageError, match="more than one detector"):
        ev.threshold_file_from_eval(items, mixed, 0.05)
    with pytest.raises(UsageError, match="between 0 and 1"):
        ev.threshold_file_from_eval(items, mixed, 5)
    # a real at 1.0 and FPR 0: nothing in [0, 1] works; no fakes: measured_tpr is null
    same = [_rec_with("a", 1.0, "builtin"), _rec_with("b", 0.3, "builtin")]
    cal = ev.threshold_file_from_eval(items, same, 0.0)
    assert cal["threshold"] > 1.0 and cal["measured_fpr"] == 0.0 and cal["measured_tpr"] is None
    assert any("scored 1.0" in w for w in cal["warnings"])
    assert any("cannot resolve" in w for w in cal["warnings"])
    tf.validate_threshold_file(cal)  # still a loadable file


def _rec_with(path: str, p: float, detector_id: str) -> dict[str, Any]:
    return ScanRecord(path=path, p_fake=p, verdict="uncertain", detector_id=detector_id).to_dict()


def _valid_cal() -> dict[str, Any]:
    return {"format": "fakescope-calibration/1", "threshold": 0.83, "target_fpr": 0.01,
            "measured_fpr": 0.008, "measured_tpr": 0.71, "n_real": 500, "n_fake": 300,
            "detector_id": "builtin", "weights_sha256": WEIGHTS, "created_at": "2025-01-01T00:00:00.000Z"}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "fakescope-calibration/2"}, "'format'"),
        ({"threshold": "0.8"}, "'threshold'"),
        ({"threshold": 1.5}, "'threshold'"),
        ({"threshold": True}, "'threshold'"),
        ({"threshold": None}, "'threshold'"),
        ({"target_fpr": -0.1}, "'target_fpr'"),
        ({"measured_fpr": None}, "'measured_fpr'"),
        ({"measured_tpr": 2}, "'measured_tpr'"),
        ({"n_real": 0}, "'n_real'"),
        ({"n_fake": 3.0}, "'n_fake'"),
        ({"weights_sha256": "ABC"}, "'weights_sha256'"),
        ({"detector_id": 7}, "'detector_id'"),
        ({"created_at": None}, "'created_at'"),
    ],
)
def test_load_calibration_rejects_bad_fields(tmp_path: Path, change: dict[str, Any], match: str) -> None:
    data = _valid_cal() | change
    f = tmp_path / "cal.json"
    f.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=match):
        tf.load_threshold_file(f)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "empty file"),
        (b"{threshold: 0.5}", "not JSON"),
        (b"[0.5]", "JSON object"),
        (b'{"format": "fakescope-calibration/1", "threshold": NaN}', "'threshold'"),
        (b"\xff\xfe{}", "not JSON"),
        (b" " * (tf.MAX_THRESHOLD_FILE_BYTES + 1), "byte limit"),
    ],
)
def test_load_calibration_rejects_malformed_files(tmp_path: Path, raw: bytes, match: str) -> None:
    f = tmp_path / "cal.json"
    f.write_bytes(raw)
    with pytest.raises(UsageError, match=match):
        tf.load_threshold_file(f)


def test_load_calibration_valid_and_missing(tmp_path: Path) -> None:
    f = tmp_path / "cal.json"
    f.write_text(json.dumps(_valid_cal()))
    assert tf.load_threshold_file(f)["threshold"] == 0.83
    with pytest.raises(UsageError, match="cannot read threshold file"):
        tf.load_threshold_file(tmp_path / "nope.json")
    # both a usage error (exit 2) and a ValueError, whichever a caller catches
    f.write_text("{}")
    with pytest.raises(ValueError, match="'format'"):
        tf.load_threshold_file(f)


def test_calibration_mismatch() -> None:
    cal = _valid_cal()
    assert tf.threshold_file_mismatch(cal, "builtin", WEIGHTS) is None
    assert tf.threshold_file_mismatch(cal, "builtin", None) is None  # unknown weights: nothing to compare
    assert "detector 'builtin'" in (tf.threshold_file_mismatch(cal, "hf", WEIGHTS) or "")
    assert "other weights" in (tf.threshold_file_mismatch(cal, "builtin", "cd" * 32) or "")


# ---------------------------------------------------------------- rendering


def test_render_eval_text(tree: Path) -> None:
    items = ev.load_labelled(tree)
    items.append(ev.LabelledItem(str(tree / "fake" / "odd.png"), 1, "a\x1b[31mvery-long-generator-name-" + "x" * 60))
    report = ev.evaluate(items, _tree_records(tree, items))
    text = ev.render_eval_text(report)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b" not in text  # a folder name cannot drive the terminal
    assert lines[0] == "fakescope eval: 10 images, 6 scored, 4 unscored"
    assert "0.6667" in text and "0.7556" in text  # AUC 2/3, AP 34/45
    assert any(line.split() == ["at", "threshold", "0.9000", "at", "threshold", "0.9000"] for line in lines)
    assert "not-scanned 2" in text and "unsupported-format 1" in text
    row = next(line for line in lines if line.strip().startswith("midjourney"))
    assert row.split() == ["midjourney", "2", "2", "n/a", "1.000", "0.800"]
    assert any(line.strip().startswith("a?[31mvery-long") and line.rstrip().endswith("n/a") for line in lines)


@pytest.mark.slow
def test_metrics_and_evaluate_import_without_scikit_learn() -> None:
    # run time must not need scikit-learn: block it and compute a report in a fresh interpreter
    code = (
        "import sys; sys.modules['sklearn'] = None; sys.modules['scipy'] = None\n"
        "from fakescope_cli import evaluate as ev\n"
        "items = [ev.LabelledItem('a', 1, 'g'), ev.LabelledItem('b', 0, 'g')]\n"
        "recs = [{'path': 'a', 'p_fake': 0.9}, {'path': 'b', 'p_fake': 0.2}]\n"
        "print(ev.evaluate(items, recs)['auc'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1.0"
