"""The FakeScope protocol: prompts, label words, arithmetic and the fakescope.json manifest.

No torch here: protocol.py is pure numpy, and these tests check it against hand computations.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fakescope_cli.errors import DetectorUnavailable
from fakescope_cli.protocol import (
    ASPECTS,
    ATTRIBUTE_TEMPLATE,
    DETECT_PROMPT,
    LABEL_WORDS,
    Calibration,
    LabelIds,
    ManifestError,
    PromptProtocol,
    find_manifest,
    load_protocol,
    logsumexp,
    longest_common_prefix,
    protocol_from_manifest,
    resolve_label_ids,
    score_label_logits,
    score_logits,
    verdict_from_explanation,
)
from fakescope_cli.record import PROTOCOL_VERSION


def test_defaults_follow_design() -> None:
    assert DETECT_PROMPT == "What is the authenticity of this image, fake or real?"
    assert len(ASPECTS) == 14 and len(set(ASPECTS)) == 14
    assert ASPECTS[0] == "texture" and ASPECTS[3] == "light and shadow" and ASPECTS[-1] == "overall tone"
    assert LABEL_WORDS["fake"] == ("fake", " fake", "Fake", " Fake")
    assert LABEL_WORDS["real"] == ("real", " real", "Real", " Real")
    p = PromptProtocol()
    probes = p.probes(attributes=True)
    assert probes[0] == ("detect", DETECT_PROMPT)
    assert [k for k, _ in probes[1:]] == list(ASPECTS)
    assert probes[1][1] == "Judging only by its texture, is this image fake or real?"
    assert p.probes(attributes=False) == [("detect", DETECT_PROMPT)]
    assert p.version == PROTOCOL_VERSION


def _hand_p(logits: list[float], fake: list[int], real: list[int]) -> float:
    ef = sum(math.exp(logits[i]) for i in fake)
    er = sum(math.exp(logits[i]) for i in real)
    return ef / (ef + er)


def test_score_logits_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (5, 50))
    labels = LabelIds(fake=(3, 7, 11), real=(4, 20))
    sc = score_logits(logits, labels)
    for row in range(5):
        want = _hand_p(list(logits[row]), [3, 7, 11], [4, 20])
        assert sc.p_fake[row] == pytest.approx(want, abs=1e-12)
        assert sc.z_fake[row] == pytest.approx(math.log(sum(math.exp(logits[row, i]) for i in (3, 7, 11))))
    # Other vocabulary entries do not matter: the two-way softmax only sees the label ids.
    logits2 = logits.copy()
    logits2[:, 0] += 100.0
    assert np.allclose(score_logits(logits2, labels).p_fake, sc.p_fake)


def test_score_is_stable_for_extreme_logits() -> None:
    sc = score_label_logits(np.array([[1000.0, 999.0]]), np.array([[-1000.0]]))
    assert sc.p_fake[0] == 1.0 and np.isfinite(sc.z_fake[0])
    sc = score_label_logits(np.array([[-800.0]]), np.array([[800.0]]))
    assert 0.0 <= sc.p_fake[0] < 1e-300 or sc.p_fake[0] == 0.0
    sc = score_label_logits(np.array([[5.0]]), np.array([[5.0]]))
    assert sc.p_fake[0] == 0.5
    assert logsumexp(np.array([-np.inf, 0.0])) == pytest.approx(0.0)


def test_calibration_platt_and_temperature() -> None:
    zf, zr = np.array([[2.0]]), np.array([[0.5]])
    margin = 1.5
    platt = Calibration("platt", 2.0, -0.5)
    sc = score_label_logits(zf, zr, platt)
    assert sc.p_fake_raw[0] == pytest.approx(1 / (1 + math.exp(-margin)))
    assert sc.p_fake[0] == pytest.approx(1 / (1 + math.exp(-(2.0 * margin - 0.5))))
    temp = protocol_from_manifest({"calibration": {"method": "temperature", "temperature": 2.0}}).calibration
    assert score_label_logits(zf, zr, temp).p_fake[0] == pytest.approx(1 / (1 + math.exp(-margin / 2)))


class _Vocab:
    """A toy tokenizer: whole words in the vocabulary, anything else split into characters."""

    def __init__(self, words: list[str]):
        self.ids = {w: i for i, w in enumerate(words)}
        self.unk = len(words)

    def encode(self, text: str) -> list[int]:
        if text in self.ids:
            return [self.ids[text]]
        return [self.ids.get(c, self.unk) for c in text]


def test_resolve_label_ids_ignores_missing_and_split_variants() -> None:
    v = _Vocab(["fake", " fake", "real", "R", "e", "a", "l", " "])
    labels = resolve_label_ids(LABEL_WORDS, v.encode, unk_id=v.unk)
    assert labels.fake == (0, 1)
    assert labels.real == (2,)
    # 'Fake', ' Fake' split into unknown characters; 'Real' splits into 4 known pieces: ignored,
    # never mapped to the unknown token or to a first piece.
    assert set(labels.ignored) == {"Fake", " Fake", " real", "Real", " Real"}
    assert v.unk not in labels.all


def test_resolve_label_ids_single_unknown_token_is_ignored() -> None:
    def enc(text: str) -> list[int]:
        return {"fake": [5], "real": [6]}.get(text, [99])  # 99 plays the unknown token

    labels = resolve_label_ids(LABEL_WORDS, enc, unk_id=99)
    assert labels.fake == (5,) and labels.real == (6,)
    assert len(labels.ignored) == 6


def test_resolve_label_ids_dedupes_and_fails_clearly() -> None:
    def spm(text: str) -> list[int]:  # SentencePiece-like: 'fake' and ' fake' are the same piece
        return {"fake": [7], " fake": [7], "real": [8], " real": [8]}.get(text.strip() and text, [1, 2])

    labels = resolve_label_ids(LABEL_WORDS, spm)
    assert labels.fake == (7,) and labels.real == (8,)
    with pytest.raises(DetectorUnavailable, match="'real'"):
        resolve_label_ids(LABEL_WORDS, lambda t: [1] if "fake" in t.lower() else [1, 2])
    with pytest.raises(DetectorUnavailable, match="share token ids"):
        resolve_label_ids({"fake": ["a"], "real": ["b"]}, lambda t: [3])
    with pytest.raises(DetectorUnavailable):  # out of the model's vocabulary
        resolve_label_ids({"fake": ["a"], "real": ["b"]}, lambda t: [500 if t == "a" else 3], vocab_size=100)


def test_manifest_overrides(tmp_path: Path) -> None:
    man = {
        "schema": "fakescope-manifest/1",
        "prompts": {"detect": "Is this picture AI-made? Answer Fake or Real.",
                    "attribute": "Look at the {aspect}. Fake or Real?", "system": "Be terse."},
        "label_words": {"fake": ["Fake", " Fake"], "real": ["Real", " Real"]},
        "attributes": ["texture", "lighting"],
        "calibration": {"method": "platt", "a": 1.5, "b": -0.25},
        "max_image_pixels": 200000,
    }
    (tmp_path / "fakescope.json").write_text(json.dumps(man))
    p = load_protocol(tmp_path)
    assert p.detect_prompt.startswith("Is this picture")
    assert p.attributes == (("texture", "Look at the texture. Fake or Real?"),
                            ("lighting", "Look at the lighting. Fake or Real?"))
    assert p.label_words == {"fake": ("Fake", " Fake"), "real": ("Real", " Real")}
    assert p.calibration == Calibration("platt", 1.5, -0.25)
    assert p.system_prompt == "Be terse." and p.max_image_pixels == 200000
    assert p.manifest_path == str(tmp_path / "fakescope.json") and len(p.manifest_sha256 or "") == 64
    assert p.version.startswith(PROTOCOL_VERSION + "+manifest.")
    assert p.explain_prompt == PromptProtocol().explain_prompt  # untouched keys keep their defaults
    # A mapping of aspect -> full prompt.
    p2 = protocol_from_manifest({"attributes": {"hands": "Are the hands right? fake or real?"}})
    assert p2.attributes == (("hands", "Are the hands right? fake or real?"),)


def test_manifest_beside_a_gguf_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert find_manifest(gguf) is None
    (tmp_path / "fakescope.json").write_text(json.dumps({"prompts": {"detect": "Real or fake?"}}))
    assert find_manifest(gguf) == tmp_path / "fakescope.json"
    assert load_protocol(gguf).detect_prompt == "Real or fake?"
    assert load_protocol(None) == PromptProtocol()


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"promts": {}}, "unknown keys"),
        ({"prompts": {"detct": "x"}}, "unknown keys"),
        ({"prompts": {"attribute": "Is it fake?"}}, "{aspect}"),
        ({"prompts": {"detect": ""}}, "non-empty"),
        ({"label_words": {"fake": ["fake"]}}, "exactly the keys"),
        ({"label_words": {"fake": ["x"], "real": ["x"]}}, "both"),
        ({"label_words": {"fake": [], "real": ["real"]}}, "1 to 64"),
        ({"attributes": ["a", "a"]}, "unique"),
        ({"attributes": "texture"}, "list of aspect names"),
        ({"calibration": {"method": "isotonic"}}, "method"),
        ({"calibration": {"method": "platt", "a": 1}}, "finite number"),
        ({"calibration": {"method": "temperature", "temperature": 0}}, "> 0"),
        ({"schema": "fakescope-manifest/9"}, "not supported"),
        ({"max_image_pixels": 10}, "between"),
        ([1, 2], "JSON object"),
    ],
)
def test_manifest_errors_name_the_field(manifest: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message.replace("{", r"\{").replace("}", r"\}")):
        protocol_from_manifest(manifest, source="x/fakescope.json")


def test_manifest_bad_json_is_a_detector_error(tmp_path: Path) -> None:
    (tmp_path / "fakescope.json").write_text("{not json")
    with pytest.raises(DetectorUnavailable, match="not valid JSON"):
        load_protocol(tmp_path)
    assert ManifestError("x").code == "detector-unavailable"


def test_manifest_attribute_template_default() -> None:
    p = protocol_from_manifest({"attributes": ["hands"]})
    assert p.attributes == (("hands", ATTRIBUTE_TEMPLATE.format(aspect="hands")),)


def test_verdict_from_explanation() -> None:
    assert verdict_from_explanation("The shadows disagree... so this image is fake.") == "fake"
    assert verdict_from_explanation("Lighting is consistent. This image is REAL") == "real"
    assert verdict_from_explanation("this image is real? No: this image is fake") == "fake"
    assert verdict_from_explanation("I cannot tell.") is None


def test_longest_common_prefix() -> None:
    assert longest_common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert longest_common_prefix([[1, 2], [1, 2]]) == 2
    assert longest_common_prefix([[9], [1]]) == 0
    assert longest_common_prefix([]) == 0


@pytest.mark.slow
def test_protocol_module_does_not_import_torch() -> None:
    code = ("import sys, fakescope_cli.protocol, fakescope_cli.models_inspect, fakescope_cli.detectors.hf, "
            "fakescope_cli.detectors.gguf; "
            "bad = [m for m in ('torch', 'transformers', 'llama_cpp') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
