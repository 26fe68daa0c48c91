"""`fakescope models pull` against a hub-compatible file server on 127.0.0.1 (tests/hub_server.py):
the pinned revision and sha256 in fakescope.json, a changed file refused at load, a download
interrupted mid-file resumed, no request at all when the checkpoint is already present, pickle
weights refused unless trusted, the token read from the environment only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.hub_server import LocalHub, Repo

pytest.importorskip("huggingface_hub")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.tiny_classifiers import build_classifier, make_planted  # noqa: E402

REPO_ID = "umm-maybe/AI-image-detector"  # the swin-ai-image-detector preset's repo, served by a stand-in


@pytest.fixture(scope="module")
def swin_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A tiny Swin with the preset's labels, as a hub repo's files (plus what pull must leave out)."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("swin-repo")
    build_classifier(folder, "swin", {0: "artificial", 1: "human"})
    # huggingface_hub resumes a dropped download from the last whole 10 MiB chunk it wrote: the
    # weights get an extra (unused) tensor so that the file spans more than one chunk.
    tensors = load_file(folder / "model.safetensors")
    tensors["fakescope_test_padding"] = torch.arange(3_300_000, dtype=torch.float32)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    files["README.md"] = b"# stand-in\n"
    files["training_args.bin"] = b"pickle that is never weights"
    files["checkpoint-10/config.json"] = files["config.json"]
    files["checkpoint-10/model.safetensors"] = files["model.safetensors"]
    return files


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_planted(tmp_path_factory.mktemp("pull-images"), 2, seed=5)


def env_for(hub_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    return {"HF_ENDPOINT": hub_url, "HF_HOME": str(tmp / "hf-home"), "FAKESCOPE_MODELS_DIR": str(tmp / "models"),
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "",
            "OMP_NUM_THREADS": "1", **extra}


def pull(env: dict[str, str], *args: str) -> Any:
    return run_cli("models", "pull", *args, env=env, timeout=300)


def scan(env: dict[str, str], model: Path, images: Path) -> Any:
    return run_cli("scan", str(images), "-b", "classifier", "-m", str(model), "-f", "jsonl", "-j", "1", "--no-cache",
                   "-q", env=env, timeout=300)


@pytest.mark.slow
def test_pull_pins_resumes_reuses_and_refuses_changed_weights(swin_files: dict[str, bytes], images: Path,
                                                              tmp_path: Path) -> None:
    repo = Repo(REPO_ID, swin_files, branches={"v1": ""})
    repo.branches["v1"] = repo.commit
    weights = swin_files["model.safetensors"]
    with LocalHub([repo]) as hub:
        env = env_for(hub.url, tmp_path)
        cut = 11 << 20  # past the first 10 MiB chunk
        assert len(weights) > cut
        hub.drop_once["model.safetensors"] = cut
        proc = pull(env, "swin-ai-image-detector", "--revision", "v1")
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        out = json.loads(proc.stdout)
        folder = tmp_path / "models" / "umm-maybe--AI-image-detector"
        assert Path(out["path"]) == folder and out["revision"] == repo.commit and out["preset"] == "swin-ai-image-detector"
        # Top-level configs and safetensors only: no trainer pickle, no sub-folder checkpoint, no README.
        assert sorted(out["files"]) == ["config.json", "model.safetensors", "preprocessor_config.json"]
        assert not (folder / "training_args.bin").exists() and not (folder / "checkpoint-10").exists()
        assert (folder / "model.safetensors").read_bytes() == weights

        # The interrupted file was resumed with a Range request from where it stopped, not restarted.
        gets = [r for r in hub.requests if r.method == "GET" and r.path.endswith("/model.safetensors")]
        assert len(gets) == 2 and gets[0].range is None
        assert gets[1].range is not None and 0 < int(gets[1].range.split("=")[1].rstrip("-")) <= cut
        assert all(r.authorization is None for r in hub.requests)  # no token in the environment: none sent

        manifest = json.loads((folder / "fakescope.json").read_text())
        digest = hashlib.sha256(weights).hexdigest()
        assert manifest["weights_sha256"] == digest
        assert manifest["source"]["revision"] == repo.commit and manifest["source"]["requested_revision"] == "v1"
        assert manifest["source"]["files_sha256"] == {"model.safetensors": digest}
        assert manifest["source"]["endpoint"] == hub.url
        assert manifest["label_words"] == {"fake": ["artificial"], "real": ["human"]}

        scanned = scan(env, folder, images)
        assert scanned.returncode == 0, scanned.stderr.decode()
        recs = [json.loads(line) for line in scanned.stdout.decode().splitlines()]
        assert len(recs) == 4 and {r["detector"]["weights_sha256"] for r in recs} == {digest}

        inspect = run_cli("models", "inspect", str(folder), env=env)
        assert inspect.returncode == 0
        info = json.loads(inspect.stdout)
        assert info["preset"] == {"name": "swin-ai-image-detector", "matched_by": "fakescope.json source.preset"}
        assert info["weights_pin"].startswith("ok")

        # Already present at that revision: not a single request, even with the hub gone.
        hub.requests.clear()
        again = pull(env, "swin-ai-image-detector", "--revision", "v1")
        assert again.returncode == 0 and json.loads(again.stdout)["already_present"] is True
        assert hub.requests == []
        # --refresh asks which commit the revision is now; the files of that commit are not fetched again.
        refreshed = pull(env, "swin-ai-image-detector", "--revision", "v1", "--refresh")
        assert refreshed.returncode == 0 and json.loads(refreshed.stdout)["already_present"] is False
        assert [r.path.split("?")[0] for r in hub.requests] == [f"/api/models/{REPO_ID}/revision/v1"]
    offline = pull(env_for("http://127.0.0.1:9", tmp_path), REPO_ID)
    assert offline.returncode == 0, offline.stderr.decode()
    assert json.loads(offline.stdout)["already_present"] is True

    # A changed weight file is refused at load (and by inspect), and a new pull repairs it.
    changed = bytearray(weights)
    changed[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(changed))
    refused = scan(env, folder, images)
    assert refused.returncode == 4 and "weights_sha256" in refused.stderr.decode()
    assert run_cli("models", "inspect", str(folder), env=env).returncode == 4
    with LocalHub([repo]) as hub:
        env = env_for(hub.url, tmp_path)
        repaired = pull(env, REPO_ID)
        assert repaired.returncode == 0, repaired.stderr.decode()[-2000:]
        assert json.loads(repaired.stdout)["already_present"] is False
        assert (folder / "model.safetensors").read_bytes() == weights
    assert scan(env, folder, images).returncode == 0


def test_pull_refusals_and_env_token(swin_files: dict[str, bytes], tmp_path: Path) -> None:
    pickle_only = Repo("someone/pickle-only", {"config.json": swin_files["config.json"],
                                               "pytorch_model.bin": b"\x80\x04pickle"})
    generic = Repo("someone/plain", {k: v for k, v in swin_files.items() if "/" not in k})
    with LocalHub([pickle_only, generic]) as hub:
        env = env_for(hub.url, tmp_path)
        refused = pull(env, "someone/pickle-only")
        assert refused.returncode == 4 and "--trust-pickle" in refused.stderr.decode()
        assert not any(r.path.endswith("pytorch_model.bin") for r in hub.requests)
        trusted = pull(env, "someone/pickle-only", "--trust-pickle", "--dir", str(tmp_path / "pk"))
        assert trusted.returncode == 0, trusted.stderr.decode()[-2000:]
        manifest = json.loads((tmp_path / "pk" / "fakescope.json").read_text())
        assert manifest["source"]["files_sha256"] == {
            "pytorch_model.bin": hashlib.sha256(b"\x80\x04pickle").hexdigest()}

        assert pull(env, "someone/absent").returncode == 4
        bad_rev = pull(env, "someone/plain", "--revision", "nope")
        assert bad_rev.returncode == 4 and "no revision" in bad_rev.stderr.decode()
        unknown = pull(env, "not-a-preset")
        assert unknown.returncode == 2 and "presets:" in unknown.stderr.decode()
        unreleased = pull(env, "aigi-holmes")
        assert unreleased.returncode == 2 and "no public weights" in unreleased.stderr.decode()

        # A token comes from $HF_TOKEN only: a stored login file is never read.
        (tmp_path / "hf-home").mkdir(exist_ok=True)
        (tmp_path / "hf-home" / "token").write_text("hf_stored_login")
        hub.requests.clear()
        assert pull(env, "someone/plain", "--dir", str(tmp_path / "plain")).returncode == 0
        assert hub.requests and all(r.authorization is None for r in hub.requests)
        hub.requests.clear()
        with_token = env_for(hub.url, tmp_path, HF_TOKEN="hf_from_env")
        assert pull(with_token, "someone/plain", "--dir", str(tmp_path / "plain2")).returncode == 0
        assert hub.requests and all(r.authorization == "Bearer hf_from_env" for r in hub.requests)
        plain = json.loads((tmp_path / "plain" / "fakescope.json").read_text())
        assert plain["source"]["preset"] is None and plain["source"]["backend"] == "classifier"


def test_fakevlm_takes_missing_processor_files_from_its_base(tmp_path: Path) -> None:
    """FakeVLM's weights repo lacks processor files (its evaluation loads llava-hf's): pull takes the
    missing ones from the preset's base repo, never its config or weights."""
    own_config = json.dumps({"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]}).encode()
    fakevlm = Repo("lingcco/fakeVLM", {"config.json": own_config, "model.safetensors": b"W" * 64})
    base = Repo("llava-hf/llava-1.5-7b-hf", {
        "config.json": b'{"model_type": "llava", "base": true}', "generation_config.json": b"{}",
        "tokenizer.json": b'{"tok": 1}', "tokenizer_config.json": b'{"chat_template": "x"}',
        "preprocessor_config.json": b'{"crop_size": 336}', "chat_template.json": b'{"chat_template": "y"}',
        "model-00001-of-00003.safetensors": b"B" * 64, "model.safetensors.index.json": b"{}"})
    with LocalHub([fakevlm, base]) as hub:
        proc = pull(env_for(hub.url, tmp_path), "fakevlm")
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        out = json.loads(proc.stdout)
    folder = Path(out["path"])
    assert (folder / "config.json").read_bytes() == own_config  # the checkpoint's own config is kept
    assert not (folder / "model-00001-of-00003.safetensors").exists()
    assert not (folder / "generation_config.json").exists()
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "chat_template.json"):
        assert (folder / name).read_bytes() == base.files[name]
    manifest = json.loads((folder / "fakescope.json").read_text())
    assert manifest["source"]["processor_from"] == {
        "repo_id": "llava-hf/llava-1.5-7b-hf", "revision": base.commit,
        "files": ["chat_template.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"]}
    assert manifest["source"]["files_sha256"] == {"model.safetensors": hashlib.sha256(b"W" * 64).hexdigest()}
    assert manifest["prompts"]["detect"] == "Does the image looks real/fake?"
    assert any("processor files" in n for n in out["notes"])
