"""`fakescope data build` and `fakescope train lmm` on tiny random checkpoints (tests/tiny_models.py).

The proof of learning: synthetic images whose fake half carries a faint period-4 grid. The base
model cannot tell the halves apart; after `data build` + `train lmm` (LoRA, CPU, seconds) the
checkpoint separates unseen images through `fakescope scan --backend hf`, and its GGUF conversion
gives the same verdicts through `--backend gguf`. Also: checkpoint/resume equivalence, QLoRA on
CPU, a 2-process DDP run (gloo), and the data format's contents.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FIXTURES, REPO, run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from fakescope_cli import metrics  # noqa: E402
from fakescope_cli.protocol import ASPECTS, DETECT_PROMPT, verdict_from_explanation  # noqa: E402
from tests.planted import IMG, make_planted, planted_image  # noqa: E402,F401
from tests.tiny_models import cached_build, session_models_dir  # noqa: E402

# One thread per process: these models are tiny, and on a shared machine OpenMP's extra threads
# make each step many times slower, not faster.
ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


# ---------------------------------------------------------------------------- synthetic data


def auc_of(records: list[dict[str, Any]]) -> float:
    labels = [1 if Path(r["path"]).parent.name == "fake" else 0 for r in records]
    # the detector's own score (the record's p_fake is capped below provenance's band, tying the surest)
    value = metrics.roc_auc(labels, [r["detector"]["p_fake"] for r in records])
    assert value is not None
    return float(value)


def jsonl(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = run_cli(*args, env=ENV, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
    return proc


@pytest.fixture(scope="module")
def llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_build(session_models_dir(tmp_path_factory), "llava")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("planted")
    return {"train": make_planted(root / "train", 96, seed=1), "test": make_planted(root / "test", 32, seed=2),
            "root": root}


@pytest.fixture(scope="module")
def train_jsonl(planted: dict[str, Path]) -> Path:
    out = planted["root"] / "train.jsonl"
    proc = cli("data", "build", str(planted["train"]), "-o", str(out), "--recipe", "tiny-cpu")
    assert proc.returncode == 0
    stats = json.loads(proc.stdout)
    assert stats["tasks"] == {"detect": 192} and stats["detect_labels"] == {"fake": 96, "real": 96}
    return out


@pytest.fixture(scope="module")
def trained(llava: Path, planted: dict[str, Path], train_jsonl: Path) -> Path:
    out = planted["root"] / "trained"
    proc = cli("train", "lmm", "--recipe", "tiny-cpu", "--base", str(llava), "--data", str(train_jsonl),
               "--output", str(out), "--seed", "0")
    assert proc.returncode == 0
    err = proc.stderr.decode()
    assert "world_size 1" in err and "step 480/480" in err
    return out


@pytest.fixture(scope="module")
def trained_records(planted: dict[str, Path], trained: Path) -> list[dict[str, Any]]:
    """`fakescope scan --backend hf --model OUTPUT` over the unseen split."""
    scan = cli("scan", str(planted["test"]), "--backend", "hf", "--model", str(trained), "-f", "jsonl", "-j", "1",
               "--no-cache")
    assert scan.returncode == 0
    return jsonl(scan.stdout)


# ---------------------------------------------------------------------------- proof of learning


@pytest.mark.slow
def test_planted_trace_is_learned_and_scanned_with_hf(llava: Path, planted: dict[str, Path], trained: Path,
                                                      trained_records: list[dict[str, Any]]) -> None:
    info = json.loads((trained / "training.json").read_text())
    assert info["steps"] == 480 and info["records"] == 192 and info["world_size"] == 1
    assert info["final_loss"] < 0.1  # label token and end-of-turn token both learned
    assert info["lora_scopes"] == ["text", "projector", "vision"]
    # The output is a plain checkpoint: merged safetensors, processor files, manifest, adapter.
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
                 "processor_config.json", "fakescope.json", "adapter/adapter_model.safetensors",
                 "adapter/adapter_config.json"):
        assert (trained / name).is_file(), name
    assert not (trained / "adapter_config.json").exists()  # transformers would load it as a bare adapter

    base = cli("eval", str(planted["test"]), "--backend", "hf", "--model", str(llava), "--json", "-", "-j", "1")
    assert base.returncode == 0
    base_auc = json.loads(base.stdout)["auc"]
    recs = trained_records
    assert len(recs) == 64
    trained_auc = auc_of(recs)
    print(f"planted trace AUC: base {base_auc:.3f}, trained {trained_auc:.3f}")
    assert base_auc <= 0.75
    assert trained_auc >= 0.9
    fakes = [r for r in recs if "/fake/" in r["path"]]
    reals = [r for r in recs if "/real/" in r["path"]]
    assert sum(r["verdict"] == "likely-ai" for r in fakes) >= 0.8 * len(fakes)
    assert sum(r["verdict"] == "likely-real" for r in reals) >= 0.8 * len(reals)
    assert recs[0]["detector"]["protocol"].startswith("fakescope-protocol/1+manifest.")


@pytest.mark.slow
def test_gguf_conversion_gives_the_same_verdicts(planted: dict[str, Path], trained: Path,
                                                trained_records: list[dict[str, Any]], tmp_path: Path) -> None:
    try:
        import gguf  # noqa: F401
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"GGUF check needs llama-cpp-python and gguf ({exc.name} missing)")
    from tests.tiny_models import convert_to_gguf

    model, mmproj = convert_to_gguf(trained, tmp_path / "gguf")
    shutil.copy(trained / "fakescope.json", tmp_path / "gguf" / "fakescope.json")  # same protocol beside it
    gg = cli("scan", str(planted["test"]), "--backend", "gguf", "--model", str(model), "--mmproj", str(mmproj),
             "-f", "jsonl", "-j", "1", "--no-cache")
    assert gg.returncode == 0
    a = {r["path"]: r for r in trained_records}
    b = {r["path"]: r for r in jsonl(gg.stdout)}
    assert a.keys() == b.keys() and len(a) == 64
    assert auc_of(list(b.values())) >= 0.9
    diffs = np.array([abs(a[k]["p_fake"] - b[k]["p_fake"]) for k in a])
    assert np.median(diffs) < 0.01  # same function; llama.cpp's f16 KV cache shifts a few large margins
    # The verdict is the score against two thresholds, so a score that sits on a threshold may land on
    # either side after conversion (once 1 of 64 flipped likely-real/uncertain): verdicts must agree
    # wherever the transformers score is clear of both thresholds by more than that f16 shift.
    from fakescope_cli.fusion import thresholds_from

    th = thresholds_from(next(iter(a.values()))["detector"], None)
    margin = 0.05
    clear = sorted(k for k in a if min(abs(a[k]["p_fake"] - th.low), abs(a[k]["p_fake"] - th.high)) > margin)
    assert len(clear) >= 40, f"only {len(clear)} of 64 scores are clear of the thresholds {th}"
    assert [a[k]["verdict"] for k in clear] == [b[k]["verdict"] for k in clear]
    assert b[next(iter(b))]["detector"]["protocol"] == a[next(iter(a))]["detector"]["protocol"]


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.slow
def test_checkpoints_and_resume_reproduce_an_uninterrupted_run(llava: Path, train_jsonl: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    args = ["train", "lmm", "--recipe", "tiny-cpu", "--base", str(llava), "--data", str(train_jsonl),
            "--max-steps", "8", "--save-every", "4", "--batch-size", "4", "--grad-accum", "2"]
    assert cli(*args, "--output", str(full)).returncode == 0
    assert sorted(p.name for p in (full / "checkpoints").iterdir()) == ["step-000004", "step-000008"]
    state = json.loads((full / "checkpoints" / "step-000004" / "state.json").read_text())
    assert state["global_step"] == 4 and state["step_in_epoch"] == 4

    # A run that died after its step-4 checkpoint: only that checkpoint is left.
    crashed = tmp_path / "crashed"
    (crashed / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "step-000004", crashed / "checkpoints" / "step-000004")
    refused = cli(*args, "--output", str(crashed))
    assert refused.returncode == 2 and b"--resume" in refused.stderr
    resumed = cli(*args, "--output", str(crashed), "--resume")
    assert resumed.returncode == 0
    assert b"resuming from" in resumed.stderr
    info = json.loads((crashed / "training.json").read_text())
    assert info["resumed_from"] == "step-000004" and info["steps"] == 8

    from safetensors.torch import load_file

    a = load_file(str(full / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(crashed / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    # ...and the adapter did move away from its zero-initialised B matrices.
    assert any(float(v.abs().max()) > 0 for k, v in a.items() if "lora_B" in k)


# ---------------------------------------------------------------------------- QLoRA, DDP


@pytest.mark.slow
def test_qlora_on_cpu_trains_and_the_output_loads(llava: Path, train_jsonl: Path, planted: dict[str, Path],
                                                  tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    from safetensors.torch import load_file

    out = tmp_path / "qlora"
    proc = cli("train", "lmm", "--recipe", "tiny-cpu", "--base", str(llava), "--data", str(train_jsonl),
               "--output", str(out), "--qlora", "--max-steps", "4")
    assert proc.returncode == 0
    info = json.loads((out / "training.json").read_text())
    assert info["method"] == "qlora-4bit-nf4"
    assert info["quantized_4bit_modules"] == 14  # 2 Llama layers x 7 projections; vision/projector kept
    merged = load_file(str(out / "model.safetensors"))
    before = load_file(str(llava / "model.safetensors"))
    key = next(k for k in merged if "layers.0" in k and "q_proj" in k and "language_model" in k)
    assert merged[key].dtype == torch.float32 and merged[key].shape == before[key].shape
    assert float((merged[key] - before[key]).abs().max()) > 0  # the adapter was merged in

    from fakescope_cli.detectors.hf import HFDetector
    from fakescope_cli.media import Media

    det = HFDetector(out, device="cpu")
    res = det.analyze(Media.open(next((planted["test"] / "fake").iterdir())))
    assert 0.0 <= res.p_fake <= 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_process_ddp_on_cpu(llava: Path, train_jsonl: Path, planted: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "fakescope_train.lmm", "--recipe", "tiny-cpu",
           "--base", str(llava), "--data", str(train_jsonl), "--output", str(out), "--max-steps", "4",
           "--log-every", "1"]
    proc = subprocess.run(cmd, capture_output=True, timeout=600, cwd=REPO, check=False,
                          env={**os.environ, **ENV, "CUDA_VISIBLE_DEVICES": ""})
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err[-4000:]
    assert "[rank 0/2]" in err and "world_size 2" in err and "backend gloo" in err
    assert "[rank 1/2]" in err and "rank 1 of 2: 96 records per epoch" in err
    info = json.loads((out / "training.json").read_text())
    assert info["world_size"] == 2
    # 4 steps x batch 8 on each rank, from disjoint halves of the data, weights identical at the end.
    assert [r["examples"] for r in info["ranks"]] == [32, 32]
    assert [r["distinct_records"] for r in info["ranks"]] == [32, 32]
    assert info["records_drawn_by_several_ranks"] == 0
    assert info["replicas_in_sync"] is True

    from fakescope_cli.detectors.hf import HFDetector
    from fakescope_cli.media import Media

    det = HFDetector(out, device="cpu")
    assert 0.0 <= det.analyze(Media.open(next((planted["test"] / "real").iterdir()))).p_fake <= 1.0


# ---------------------------------------------------------------------------- tokenisation


@pytest.mark.parametrize("kind", ["llava", "qwen2vl"])
def test_training_prompt_tokens_are_the_scan_prompt_tokens(kind: str, tmp_path_factory: pytest.TempPathFactory,
                                                          tmp_path: Path) -> None:
    """The loss must sit exactly where the hf backend reads p_fake: same ids before the answer, the
    first supervised token a label-word id, the same image-token count."""
    import transformers
    from fakescope_train.instruct import Conversation
    from fakescope_train.lmm import IGNORE, Encoder, family_of
    from PIL import Image

    from fakescope_cli.detectors.hf import HFDetector
    from fakescope_cli.media import Media

    model_dir = cached_build(session_models_dir(tmp_path_factory), kind)
    det = HFDetector(model_dir, device="cpu")
    cfg = transformers.AutoConfig.from_pretrained(model_dir)
    enc = Encoder(model_dir, family_of(cfg.model_type), cfg, 4096)
    img = tmp_path / "x.png"
    Image.fromarray(planted_image(np.random.default_rng(0), True)).resize((112, 112)).save(img)
    for answer, ids_of in (("fake", det.labels.fake), ("real", det.labels.real)):
        conv = Conversation(img, (("user", f"<image>\n{DETECT_PROMPT}"), ("assistant", answer)), "detect", 1)
        ids, labels = enc.text_ids(conv.turns)
        prompt = det.prompt_ids(DETECT_PROMPT)
        assert ids[: len(prompt)] == prompt
        assert all(x == IGNORE for x in labels[: len(prompt)])
        assert labels[len(prompt)] in [seq[0] for seq in ids_of]  # the first answer token starts a label word
        assert labels[len(prompt):] == ids[len(prompt):]  # the answer and the end of turn are trained
        item = enc.encode(conv)
        _, counts = det._vision_inputs([det.prepare_image(Media.open(img))])
        assert item["input_ids"].count(enc.image_token_id) == counts[0]


def test_multi_turn_conversations_train_every_answer(llava: Path, tmp_path: Path) -> None:
    import transformers
    from fakescope_train.lmm import IGNORE, Encoder

    enc = Encoder(llava, "llava", transformers.AutoConfig.from_pretrained(llava), 4096)
    turns = (("user", "<image>\nWhat is the authenticity of this image, fake or real?"), ("assistant", "fake"),
             ("user", "Judging only by its texture, is this image fake or real?"), ("assistant", "real"))
    ids, labels = enc.text_ids(turns)
    trained = enc.tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert trained.replace(" ", "") == "fake</s>real</s>"
    assert len(ids) == len(labels)


# ---------------------------------------------------------------------------- data build


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.slow
def test_data_build_from_csv_states_only_known_facts(tmp_path: Path) -> None:
    from fakescope_train.instruct import read_instruct

    a1111 = FIXTURES / "provenance" / "sd-parsers" / "automatic1111_cropped.png"
    canon = FIXTURES / "exif-samples" / "jpg" / "Canon_40D.jpg"
    plain = tmp_path / "imgs" / "plain.png"
    plain.parent.mkdir()
    from PIL import Image

    Image.fromarray(planted_image(np.random.default_rng(3), False)).save(plain)
    csv_path = tmp_path / "labels.csv"
    _write_csv(csv_path, [
        {"path": str(a1111), "label": "fake", "generator": "Stable Diffusion 1.5 (AUTOMATIC1111)",
         "notes": "cropped test file", "texture": "fake"},
        {"path": str(canon), "label": "real", "generator": "Canon EOS 40D", "notes": "", "texture": ""},
        {"path": "imgs/plain.png", "label": "real", "generator": "", "notes": "synthetic smooth image", "texture": "real"},
    ])
    out = tmp_path / "out" / "data.jsonl"
    proc = cli("data", "build", str(csv_path), "-o", str(out), "--attributes", "2", "--seed", "5")
    assert proc.returncode == 0
    stats = json.loads(proc.stdout)
    assert stats["images"] == 3 and stats["tasks"] == {"attribute": 6, "detect": 3, "explain": 3}
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    by = {(Path(r["image"]).name, r["task"], r.get("aspect")): r for r in recs}

    for r in recs:  # the LLaVA layout, relative paths, one-word answers except explanations
        conv = r["conversations"]
        assert [t["from"] for t in conv] == ["human", "gpt"] and conv[0]["value"].startswith("<image>\n")
        assert not os.path.isabs(r["image"]) and (out.parent / r["image"]).resolve().is_file()
        if r["task"] != "explain":
            assert conv[1]["value"] == r["label"]
    assert by[("automatic1111_cropped.png", "detect", None)]["conversations"][0]["value"].endswith(DETECT_PROMPT)
    # An annotated aspect is used first, with its annotation; the other one is the image's label.
    fake_attrs = [r for r in recs if r["task"] == "attribute" and r["image"].endswith("automatic1111_cropped.png")]
    basis = {r["aspect"]: r["label_basis"] for r in fake_attrs}
    assert basis.pop("texture") == "annotation" and list(basis.values()) == ["image"] and set(basis) <= set(ASPECTS)
    canon_attrs = [r for r in recs if r["task"] == "attribute" and r["image"].endswith("Canon_40D.jpg")]
    assert all(r["label_basis"] == "image" and r["conversations"][1]["value"] == "real" for r in canon_attrs)

    fake_expl = by[("automatic1111_cropped.png", "explain", None)]["conversations"][1]["value"]
    assert "generated by Stable Diffusion 1.5 (AUTOMATIC1111)" in fake_expl
    assert "AUTOMATIC1111 generation metadata" in fake_expl  # the evidence reader's own summary
    assert "cropped test file" in fake_expl
    assert verdict_from_explanation(fake_expl) == "fake" and fake_expl.endswith("this image is fake.")
    real_expl = by[("Canon_40D.jpg", "explain", None)]["conversations"][1]["value"]
    assert "its source is Canon EOS 40D" in real_expl and "EXIF names the camera Canon EOS 40D" in real_expl
    assert verdict_from_explanation(real_expl) == "real"
    plain_expl = by[("plain.png", "explain", None)]["conversations"][1]["value"]
    assert "no provenance record" in plain_expl and "synthetic smooth image" in plain_expl
    assert "generated by" not in plain_expl
    # Nothing visual is claimed: only the fixed sentence shapes and quoted facts.
    for text in (fake_expl, real_expl, plain_expl):
        for word in ("hands", "lighting is", "texture is", "looks", "appears"):
            assert word not in text

    # Same seed, same bytes; the trainer's reader accepts the file.
    again = tmp_path / "out" / "again.jsonl"
    assert cli("data", "build", str(csv_path), "-o", str(again), "--attributes", "2", "--seed", "5").returncode == 0
    assert again.read_bytes() == out.read_bytes()
    assert len(read_instruct(out)) == 12


@pytest.mark.slow
def test_data_build_mix_options_and_errors(tmp_path: Path) -> None:
    root = make_planted(tmp_path / "pool", 3, seed=4)
    out = tmp_path / "d.jsonl"
    proc = cli("data", "build", str(root), "-o", str(out), "--detect", "2", "--attributes", "0", "--no-explain",
               "--absolute-paths")
    assert proc.returncode == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 12 and {r["task"] for r in recs} == {"detect"}
    assert all(os.path.isabs(r["image"]) for r in recs)
    # A recipe's [data] table sets the mix, an option typed on the command line wins over it.
    proc = cli("data", "build", str(root), "-o", str(out), "--recipe", "tiny-cpu", "--attributes", "1")
    assert proc.returncode == 0 and json.loads(proc.stdout)["tasks"] == {"attribute": 6, "detect": 6}
    assert cli("data", "build", str(root), "-o", str(out), "--attributes", "15").returncode == 2
    assert cli("data", "build", str(root), "-o", str(out), "--detect", "0", "--attributes", "0",
               "--no-explain").returncode == 2
    missing = tmp_path / "missing.csv"
    _write_csv(missing, [{"path": "nowhere.png", "label": "fake"}])
    bad = cli("data", "build", str(missing), "-o", str(out))
    assert bad.returncode == 2 and b"not found" in bad.stderr


def test_read_instruct_rejects_malformed_records(tmp_path: Path) -> None:
    from fakescope_train.instruct import read_instruct

    from fakescope_cli.errors import UsageError

    img = make_planted(tmp_path / "p", 1, seed=0) / "real" / "real000.png"
    good = {"image": str(img), "conversations": [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "real"}]}
    cases = {
        "no image": {"conversations": good["conversations"]},
        "not found": {**good, "image": "nope.png"},
        "two images": {**good, "conversations": [{"from": "human", "value": "<image><image>Q"}, {"from": "gpt", "value": "a"}]},
        "ends with human": {**good, "conversations": [{"from": "human", "value": "<image>Q"}]},
        "bad role": {**good, "conversations": [{"from": "bot", "value": "<image>Q"}, {"from": "gpt", "value": "a"}]},
    }
    for why, rec in cases.items():
        f = tmp_path / "bad.jsonl"
        f.write_text(json.dumps(good) + "\n" + json.dumps(rec) + "\n")
        with pytest.raises(UsageError, match=r"bad\.jsonl:2"):
            read_instruct(f)
        assert why
    arr = tmp_path / "llava.json"  # LLaVA's own one-array files are read too
    arr.write_text(json.dumps([good, good]))
    assert len(read_instruct(arr)) == 2


# ---------------------------------------------------------------------------- CLI and recipes


@pytest.mark.slow
def test_recipes_load_and_usage_errors(llava: Path, tmp_path: Path) -> None:
    from fakescope_train.common import RECIPES_DIR
    from fakescope_train.lmm import make_config

    from fakescope_cli.errors import UsageError

    names = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
    assert {"tiny-cpu", "llava-7b-qlora", "llava-7b-lora", "qwen2vl-2b-lora"} <= set(names)
    for name in names:
        cfg = make_config(name, base="b", data="d", output="o")
        assert cfg.lora_r >= 1
    assert make_config("llava-7b-qlora", base="b", data="d", output="o").qlora is True
    assert make_config("tiny-cpu", base="b", data="d", output="o", lr=0.5).lr == 0.5  # options win
    bad = tmp_path / "bad.toml"
    bad.write_text("[lmm]\nlora_rank = 8\n")
    with pytest.raises(UsageError, match="unknown"):
        make_config(str(bad), base="b", data="d", output="o")
    with pytest.raises(UsageError, match="--base"):
        make_config(None, data="d", output="o")

    proc = cli("train", "lmm", "--data", "x.jsonl", "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and b"--base is required" in proc.stderr
    proc = cli("train", "lmm", "--recipe", "no-such-recipe", "--base", str(llava), "--data", "x", "--output", "o")
    assert proc.returncode == 2 and b"tiny-cpu" in proc.stderr  # lists the shipped recipes
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"model_type": "llava"}')
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    proc = cli("train", "lmm", "--recipe", "tiny-cpu", "--base", str(pickled), "--data", "x", "--output",
               str(tmp_path / "o2"))
    # refused, and without pointing to a --trust-pickle that train lmm does not have
    assert proc.returncode == 2 and b"safetensors only" in proc.stderr and b"--trust-pickle" not in proc.stderr


@pytest.mark.slow
def test_train_and_data_help_stay_light() -> None:
    probe = (
        "import sys\nfrom fakescope_cli.cli import app\n"
        "for argv in (['train', 'lmm', '--help'], ['data', 'build', '--help']):\n"
        "    try:\n        app(argv)\n    except SystemExit:\n        pass\n"
        "print('LOADED=' + ','.join(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'transformers', 'peft', 'bitsandbytes', 'fakescope_train'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "--lora-r" in out and "--attributes" in out
    assert out.rsplit("LOADED=", 1)[1].strip() == ""
