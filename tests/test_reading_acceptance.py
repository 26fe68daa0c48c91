"""Issue #19's acceptance for reading where the answer is: a tiny LLaVA taught by `fakescope train
lmm` to answer in the public checkpoints' forms, then scanned on unseen planted-trace images.

One model learns three answer forms, one per prompt (one training run instead of three; the forms
do not share a prompt, so each is what its prompt was taught):
- FakeVLM's: raw prompt `<image>Does the image looks real/fake?` -> "This is a fake image. ...";
- reason-first (FakeReasoning's form): "... <CONCLUSION> This image is fake.</CONCLUSION>";
- OpenFakeVLM's: "<ANSWER>fake</ANSWER>".
Every answer opens with the same words whatever the label, so the model never says a label word at
the first answer token: read there, the label words hold a probability of about 1e-5, every image
falls on one side of 0.5 (decisions at chance) and the ranking's direction is arbitrary (measured
here: AUC 1.0, 0.94 and 0.002 for the three forms: the hidden state knows the class, the untrained
readout points either way). Read where the preset says, the label words hold nearly all the
probability and the classes separate.

The tiny vocabulary spells these answers in many tokens, and the loss is the mean over the answer,
so the label token gets a small share of each step: 1800 steps (about 110 s on one CPU thread, some
37 s per answer form) where label-only training needs 480.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tiny_models import cached_build, session_models_dir, write_manifest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from fakescope_cli import presets  # noqa: E402
from fakescope_cli.protocol import DETECT_PROMPT  # noqa: E402
from tests.test_train_lmm import auc_of, cli, jsonl, make_planted  # noqa: E402

FAKEVLM = presets.find("fakevlm")
REASONING = presets.find("fakereasoning")
ANSWER = presets.find("openfakevlm")
REASON_PROMPT = DETECT_PROMPT  # the FakeReasoning preset keeps the default detection prompt
ANSWER_PROMPT = ANSWER.manifest()["prompts"]["detect"]


def _answers(label: str) -> list[tuple[str, str]]:
    return [
        (FAKEVLM.manifest()["prompts"]["detect"], f"This is a {label} image."),
        (REASON_PROMPT, f"I look. {REASONING.reading['answer_marker']} {label}.</CONCLUSION>"),
        (ANSWER_PROMPT, f"<ANSWER>{label}</ANSWER>"),
    ]


@pytest.fixture(scope="module")
def taught(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reading")
    train, test = make_planted(root / "train", 96, seed=11), make_planted(root / "test", 24, seed=12)
    base = root / "base"
    shutil.copytree(cached_build(session_models_dir(tmp_path_factory), "llava"), base)
    write_manifest(base, {"prompt_format": "raw"})  # trained as FakeVLM was evaluated: no chat template
    data = root / "train.jsonl"
    with data.open("w") as fh:
        for label in ("fake", "real"):
            for img in sorted((train / label).iterdir()):
                for prompt, answer in _answers(label):
                    fh.write(json.dumps({"image": str(img), "conversations": [
                        {"from": "human", "value": f"<image>\n{prompt}"}, {"from": "gpt", "value": answer}]}) + "\n")
    out = root / "taught"
    t0 = time.perf_counter()
    proc = cli("train", "lmm", "--recipe", "tiny-cpu", "--base", str(base), "--data", str(data), "--output", str(out),
               "--seed", "0", "--epochs", "50", "--max-steps", "1800")
    assert proc.returncode == 0
    print(f"train lmm: {time.perf_counter() - t0:.1f} s")
    return {"model": out, "test": test, "root": root}


def _scan(taught: dict[str, Any], name: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    folder = taught["root"] / name
    shutil.copytree(taught["model"], folder)
    write_manifest(folder, manifest)
    t0 = time.perf_counter()
    proc = cli("scan", str(taught["test"]), "--backend", "hf", "--model", str(folder), "-f", "jsonl", "-j", "1",
               "--no-cache")
    assert proc.returncode in (0, 1)
    print(f"scan {name}: {time.perf_counter() - t0:.1f} s")
    return jsonl(proc.stdout)


def _balanced_accuracy(records: list[dict[str, Any]]) -> float:
    """The mean of the per-class accuracies of the decision p_fake >= 0.5."""
    by_class: dict[str, list[bool]] = {"fake": [], "real": []}
    for r in records:
        label = Path(r["path"]).parent.name
        by_class[label].append((r["p_fake"] >= 0.5) == (label == "fake"))
    return sum(sum(v) / len(v) for v in by_class.values()) / 2


def _label_mass(record: dict[str, Any]) -> float:
    """The probability the model gives all the label words together where the label is read."""
    raw = record["detector"]["raw"]
    return float(np.exp(raw["z_fake"]) + np.exp(raw["z_real"]))


def _without_reading(manifest: dict[str, Any]) -> dict[str, Any]:
    """The same manifest read at the first answer token (no answer prefix, no marker)."""
    return {k: v for k, v in manifest.items() if k not in ("answer_prefix", "answer_marker")}


CASES = {
    "fakevlm": FAKEVLM.manifest(),  # the preset as `models pull` writes it
    "marker": {**REASONING.manifest(), "prompt_format": "raw", "marker_max_tokens": 32},
    "answer": {**ANSWER.manifest(), "prompt_format": "raw"},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_read_where_taught_separates_first_token_is_near_chance(case: str, taught: dict[str, Any]) -> None:
    manifest = CASES[case]
    as_taught = _scan(taught, f"{case}-preset", manifest)
    first = _scan(taught, f"{case}-first-token", _without_reading(manifest))
    taught_auc, first_auc = auc_of(as_taught), auc_of(first)
    print(f"{case}: AUC read as taught {taught_auc:.3f} (balanced accuracy {_balanced_accuracy(as_taught):.3f}), "
          f"at the first answer token {first_auc:.3f} (balanced accuracy {_balanced_accuracy(first):.3f})")
    assert taught_auc >= 0.9 and _balanced_accuracy(as_taught) >= 0.9
    assert _balanced_accuracy(first) <= 0.6  # decisions at chance
    # Where the model was taught to say the label it says it; at the first token it never does.
    assert min(_label_mass(r) for r in as_taught) > 0.5
    assert max(_label_mass(r) for r in first) < 0.01


@pytest.mark.slow
def test_models_inspect_warns_about_first_token_reading(taught: dict[str, Any]) -> None:
    folder = taught["root"] / "inspect-first-token"
    shutil.copytree(taught["model"], folder)
    write_manifest(folder, {**_without_reading(FAKEVLM.manifest()), "source": {"preset": "fakevlm"}})
    proc = cli("models", "inspect", str(folder))
    info = json.loads(proc.stdout)
    assert any("answer_prefix" in w and "untrained" in w for w in info["preset_warnings"])
    write_manifest(folder, {**FAKEVLM.manifest(), "source": {"preset": "fakevlm"}})
    assert json.loads(cli("models", "inspect", str(folder)).stdout)["preset_warnings"] == []
