"""Issue #19 point 6: which multimodal layouts the hf backend reads, and the one it refuses with how
to convert it (original-LLaVA checkpoints such as FakeShield's)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytest.importorskip("transformers")


def _original_llava(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A llava-hf folder whose config.json is rewritten the way the original LLaVA repository writes it."""
    from tests.tiny_models import cached_build, session_models_dir

    folder = tmp_path / "original-llava"
    shutil.copytree(cached_build(session_models_dir(tmp_path_factory), "llava"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update({"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
                "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_projector_type": "mlp2x_gelu"})
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_original_llava_format_is_refused_with_how_to_convert(tmp_path: Path,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = _original_llava(tmp_path, tmp_path_factory)
    for args in (("models", "inspect", str(folder)), ("scan", str(folder / "config.json"), "--backend", "hf",
                                                       "--model", str(folder))):
        proc = run_cli(*args)
        err = proc.stderr.decode()
        assert proc.returncode == 4, err
        assert "original-LLaVA-format" in err and "convert_llava_weights_to_hf" in err
        assert "Traceback" not in err
