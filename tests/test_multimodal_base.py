"""One behaviour for hf, gguf and server where their copies had drifted (detectors/multimodal.py):

- a backend error while scoring fails one file, not its batch: the other images of the batch keep
  exactly the scores they get alone;
- a non-finite score fails its file before any explanation is generated (and no verdict is added).

Real tiny checkpoints (tests/tiny_models.py) and a real llama.cpp-replayed answer for the server.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("transformers")
pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from fakescope_cli.detectors.gguf import GGUFDetector  # noqa: E402
from fakescope_cli.detectors.hf import HFDetector  # noqa: E402
from fakescope_cli.detectors.multimodal import MultimodalDetector  # noqa: E402
from fakescope_cli.errors import InputError  # noqa: E402
from fakescope_cli.media import Media  # noqa: E402
from tests.tiny_models import cached_build, cached_gguf, convert_to_gguf, session_models_dir  # noqa: E402


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = session_models_dir(tmp_path_factory)
    return (cached_build(base, "qwen2vl"), *cached_gguf(base, "qwen2vl"))


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Media]:
    d = tmp_path_factory.mktemp("mm-base")
    Image.new("RGB", (64, 64), (40, 90, 160)).save(d / "a.png")
    Image.new("RGB", (56, 84), (200, 30, 10)).save(d / "b.png")
    # Qwen2-VL's processor refuses an aspect ratio over 200 (a ValueError in transformers); its
    # 400 image tokens overflow a 256-token llama.cpp context (an InputError from the gguf backend).
    Image.new("RGB", (900, 3), (5, 5, 5)).save(d / "sliver.png")
    Image.new("RGB", (560, 560), (5, 5, 5)).save(d / "large.png")
    return {p.stem: Media.open(p) for p in sorted(d.iterdir())}


def _count_generation(det: MultimodalDetector) -> list[str]:
    """Record the prompts `det` generates text for (the real generation still runs)."""
    prompts: list[str] = []
    real = det.generate

    def counted(image: Any, prompt: str, *args: Any) -> str:
        prompts.append(prompt)
        return real(image, prompt, *args)

    det.generate = counted  # type: ignore[method-assign]
    return prompts


@pytest.mark.parametrize("backend", ["hf", "gguf"])
def test_a_file_that_breaks_the_backend_fails_alone_in_its_batch(backend: str, qwen: tuple[Path, Path, Path],
                                                                pictures: dict[str, Media]) -> None:
    if backend == "hf":
        det: MultimodalDetector = HFDetector(qwen[0], device="cpu", batch_size=4)
        breaker = pictures["sliver"]
    else:
        det = GGUFDetector(qwen[1], qwen[2], n_threads=1, n_ctx=256, batch_size=4)
        breaker = pictures["large"]
    good = [pictures["a"], pictures["b"]]
    alone = [det.analyze(m).p_fake for m in good]
    out = det.analyze_batch([good[0], breaker, good[1]])
    assert isinstance(out[1], InputError) and out[1].code == "detector-error"
    assert [out[0].p_fake, out[2].p_fake] == pytest.approx(alone, abs=1e-6)  # type: ignore[union-attr]
    with pytest.raises(InputError):
        det.analyze(breaker)


@pytest.mark.parametrize("backend", ["hf", "gguf"])
def test_a_non_finite_score_fails_before_any_explanation(backend: str, qwen: tuple[Path, Path, Path],
                                                        pictures: dict[str, Media], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    nan_dir = tmp_path / "nanhead"
    shutil.copytree(qwen[0], nan_dir)
    tensors = load_file(nan_dir / "model.safetensors")
    head = next(k for k in tensors if k.endswith("lm_head.weight"))
    tensors[head] = torch.full_like(tensors[head], float("nan"))
    save_file(tensors, nan_dir / "model.safetensors", metadata={"format": "pt"})
    if backend == "hf":
        det: MultimodalDetector = HFDetector(nan_dir, device="cpu", explain=True, max_tokens=2)
    else:
        det = GGUFDetector(*convert_to_gguf(nan_dir, tmp_path / "nanhead-gguf"), n_threads=1, explain=True,
                           max_tokens=2)
    prompts = _count_generation(det)
    out = det.analyze_batch([pictures["a"], pictures["b"]])
    assert all(isinstance(r, InputError) and "NaN or infinite" in r.message for r in out)
    assert prompts == []  # no explanation generated for a file that has no score
    # The same detector explains a file once it has a score: what it skipped above was the NaN file.
    healthy = HFDetector(qwen[0], device="cpu", explain=True, max_tokens=2) if backend == "hf" else \
        GGUFDetector(qwen[1], qwen[2], n_threads=1, explain=True, max_tokens=2)
    prompts = _count_generation(healthy)
    res = healthy.analyze(pictures["a"])
    assert prompts == [healthy.protocol.explain_prompt] and "explanation_verdict" in res.raw
