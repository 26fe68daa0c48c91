"""`fakescope data import`: small files written here in each public dataset's layout (FakeClue,
MMFR, OpenFake, SID_Set) become the instruction records `train lmm` reads; every label is checked
one by one against the dataset's own coding."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fakescope_cli.errors import UsageError
from fakescope_cli.protocol import DETECT_PROMPT
from tests.conftest import run_cli


def png(seed: int, size: int = 16) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def conv(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]


def write_images(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(png(i))


def test_fakeclue_labels_mapped_0_fake_1_real(tmp_path: Path) -> None:
    from fakescope_train.instruct import read_instruct

    root = tmp_path / "fakeclue"
    write_images(root, ["genimage/fake/a.png", "genimage/real/b.png", "ff++/fake/c.png", "doc/real/d.png"])
    q = "<image>Does the image looks real/fake?"
    rows = [
        {"image": "genimage/fake/a.png", "label": 0, "cate": "general",
         "conversations": conv(q, "This is a fake image. The texture of the fur is unnaturally smooth.")},
        {"image": "genimage/real/b.png", "label": 1, "cate": "general",
         "conversations": conv(q, "This is a real image. Lighting is consistent.")},
        {"image": "ff++/fake/c.png", "label": 0, "cate": "deepfake",
         "conversations": conv(q, "This is a real image.")},                   # contradicts its label
        {"image": "doc/real/d.png", "label": 2, "cate": "doc", "conversations": conv(q, "This is a real image.")},
        {"image": "missing.png", "label": 1, "cate": "general", "conversations": conv(q, "This is a real image.")},
    ]
    (root / "train.json").write_text(json.dumps(rows))
    out = tmp_path / "out" / "fakeclue.jsonl"
    proc = run_cli("data", "import", str(root / "train.json"), "--layout", "fakeclue", "-o", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    stats = json.loads(proc.stdout)
    assert stats["records"] == 2 and stats["labels"] == {"fake": 1, "real": 1}
    assert stats["skipped"] == {"image file not found": 1, "label not 0 (fake) or 1 (real): 2": 1,
                                "the answer text contradicts the label": 1}
    recs = jsonl(out)
    assert [(Path(r["image"]).name, r["label"], r["meta"]["source_label"], r["meta"]["cate"]) for r in recs] == [
        ("a.png", "fake", 0, "general"), ("b.png", "real", 1, "general")]
    for r in recs:  # the FakeScope detection record: the protocol's prompt, answered with the label word
        assert r["conversations"] == [{"from": "human", "value": f"<image>\n{DETECT_PROMPT}"},
                                      {"from": "gpt", "value": r["label"]}]
        assert (out.parent / r["image"]).resolve() == (root / r["image"].split("fakeclue/", 1)[1]).resolve()
    assert len(read_instruct(out)) == 2

    original = tmp_path / "out" / "fakeclue-original.jsonl"
    proc = run_cli("data", "import", str(root / "train.json"), "--layout", "fakeclue", "--answer", "original",
                   "-o", str(original))
    assert proc.returncode == 0
    recs = jsonl(original)
    assert recs[0]["conversations"] == [{"from": "human", "value": "<image>\nDoes the image looks real/fake?"},
                                        {"from": "gpt", "value": rows[0]["conversations"][1]["value"]}]
    assert [r["label"] for r in recs] == ["fake", "real"]
    assert len(read_instruct(original)) == 2

    # FakeClue keeps its JSON in data_json/ and the images elsewhere: --image-root says where.
    (tmp_path / "data_json").mkdir()
    moved = tmp_path / "data_json" / "train.json"
    moved.write_text(json.dumps(rows))
    elsewhere = tmp_path / "out" / "moved.jsonl"
    proc = run_cli("data", "import", str(moved), "--layout", "fakeclue", "--image-root", str(root),
                   "--absolute-paths", "--limit", "1", "-o", str(elsewhere))
    assert proc.returncode == 0, proc.stderr.decode()
    (only,) = jsonl(elsewhere)
    assert only["image"] == str((root / "genimage/fake/a.png").resolve()) and only["label"] == "fake"


def test_mmfr_label_is_the_conclusion(tmp_path: Path) -> None:
    from fakescope_train.importers import import_dataset

    root = tmp_path / "mmfr"
    write_images(root, ["diffusiondb/part-000001/x.png", "laion/00000/y.jpg", "laion/00000/z.jpg", "w.png"])
    q = "<image>\nIs this image real or fake? Reason about its forgery attributes first."
    rows = [
        {"image": "diffusiondb/part-000001/x.png",
         "conversations": conv(q, "The hands have six fingers. <CONCLUSION>This image is fake.</CONCLUSION>")},
        {"image": "laion/00000/y.jpg",
         "conversations": conv(q, "Reflections agree with the light. <CONCLUSION> This image is real. </CONCLUSION>")},
        {"image": "laion/00000/z.jpg", "conversations": conv(q, "No verdict given.")},
        {"image": "w.png", "conversations": conv(q, "<CONCLUSION>Real or fake, unclear.</CONCLUSION>")},
    ]
    (root / "forgery_reasoning_cot.json").write_text(json.dumps(rows))
    out = tmp_path / "mmfr.jsonl"
    stats = import_dataset("mmfr", root / "forgery_reasoning_cot.json", out, answer="original")
    assert stats["labels"] == {"fake": 1, "real": 1}
    assert stats["skipped"] == {"no <CONCLUSION>...</CONCLUSION> in the answer": 1,
                                "the conclusion names neither fake nor real": 1}
    recs = jsonl(out)
    assert [(Path(r["image"]).name, r["label"], r["meta"]["conclusion"]) for r in recs] == [
        ("x.png", "fake", "This image is fake."), ("y.jpg", "real", "This image is real.")]
    assert recs[0]["conversations"][1]["value"].endswith("<CONCLUSION>This image is fake.</CONCLUSION>")
    assert recs[0]["conversations"][0]["value"].count("<image>") == 1


def _parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_openfake_parquet_real_fake_strings(tmp_path: Path) -> None:
    from fakescope_train.importers import import_dataset

    rows = [
        {"image": {"bytes": png(1), "path": "a.png"}, "prompt": "a red car", "label": "fake", "model": "flux-1.1-pro"},
        {"image": {"bytes": png(2), "path": "b.jpg"}, "prompt": "a street", "label": "real", "model": "real"},
        {"image": {"bytes": png(3), "path": None}, "prompt": "", "label": "Fake", "model": "sd-3.5"},
        {"image": {"bytes": png(4), "path": "d.png"}, "prompt": "", "label": "unknown", "model": "x"},
        {"image": {"bytes": None, "path": "e.png"}, "prompt": "", "label": "real", "model": "real"},
    ]
    src = _parquet(tmp_path / "openfake-train-00000.parquet", rows)
    out = tmp_path / "of" / "openfake.jsonl"
    stats = import_dataset("openfake", src, out)
    assert stats["records"] == 3 and stats["skipped"] == {"label not 'real' or 'fake': 'unknown'": 1,
                                                          "no image bytes": 1}
    recs = jsonl(out)
    assert [(r["label"], r["meta"]["source_label"], r["meta"]["generator"]) for r in recs] == [
        ("fake", "fake", "flux-1.1-pro"), ("real", "real", "real"), ("fake", "Fake", "sd-3.5")]
    for r, seed in zip(recs, (1, 2, 3), strict=True):
        assert (out.parent / r["image"]).read_bytes() == png(seed)  # bytes written as they were
    assert Path(recs[2]["image"]).suffix == ".png"  # no name: the format is sniffed
    with pytest.raises(UsageError, match="no answer text"):
        import_dataset("openfake", src, out, answer="original")


def test_sid_set_three_classes_and_masks(tmp_path: Path) -> None:
    from fakescope_train.importers import import_dataset

    rows = [
        {"img_id": "9f2c2560a72d603c", "image": {"bytes": png(10), "path": None}, "mask": None,
         "width": 16, "height": 16, "label": 0},
        {"img_id": "full_synthetic_063970", "image": {"bytes": png(11), "path": None}, "mask": None,
         "width": 16, "height": 16, "label": 1},
        {"img_id": "tampered_29551", "image": {"bytes": png(12), "path": None},
         "mask": {"bytes": png(13), "path": None}, "width": 16, "height": 16, "label": 2},
        {"img_id": "odd", "image": {"bytes": png(14), "path": None}, "mask": None, "width": 16, "height": 16,
         "label": 3},
    ]
    src = _parquet(tmp_path / "sid_set.parquet", rows)
    out = tmp_path / "sid.jsonl"
    stats = import_dataset("sid_set", src, out)
    assert stats["labels"] == {"fake": 2, "real": 1}
    assert stats["classes"] == {"full synthetic": 1, "real": 1, "tampered": 1}
    assert stats["skipped"] == {"label not 0 (real), 1 (full synthetic) or 2 (tampered): 3": 1}
    recs = jsonl(out)
    assert [(r["id"].rsplit("-", 1)[1], r["label"], r["meta"]["class"], r["meta"]["source_label"]) for r in recs] == [
        ("9f2c2560a72d603c", "real", "real", 0), ("full_synthetic_063970", "fake", "full synthetic", 1),
        ("tampered_29551", "fake", "tampered", 2)]
    assert "mask" not in recs[0]["meta"] and (out.parent / recs[2]["meta"]["mask"]).read_bytes() == png(13)


def test_bad_layout_and_empty_import_are_usage_errors(tmp_path: Path) -> None:
    src = tmp_path / "empty.json"
    src.write_text("[]")
    assert run_cli("data", "import", str(src), "--layout", "nope", "-o", str(tmp_path / "o.jsonl")).returncode == 2
    proc = run_cli("data", "import", str(src), "--layout", "fakeclue", "-o", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2 and "no record could be imported" in proc.stderr.decode()
    assert not (tmp_path / "o.jsonl").exists()
