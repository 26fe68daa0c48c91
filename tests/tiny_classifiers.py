"""Tiny, randomly initialised image classifiers (ViT, Swin, SigLIP) in the label layouts public
detectors use, trained here for a few steps on the planted trace of tests/planted.py
(fakes carry a faint period-4 grid). Nothing is downloaded; weights are saved as safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.planted import IMG, make_planted, planted_image  # noqa: F401 (re-exported to the tests)

# name -> (model_type, id2label, the class each planted half is taught)
LAYOUTS: dict[str, tuple[str, dict[int, str]]] = {
    "vit": ("vit", {0: "REAL", 1: "FAKE"}),
    "swin": ("swin", {0: "artificial", 1: "human"}),
    "siglip3": ("siglip", {0: "AI", 1: "Deepfake", 2: "Real"}),
}


def build_classifier(out: Path, model_type: str, id2label: dict[int, str], seed: int = 0) -> Any:
    """A tiny random AutoModelForImageClassification checkpoint with its image processor, saved."""
    import torch
    import transformers

    torch.manual_seed(seed)
    label2id = {v: k for k, v in id2label.items()}
    common = {"id2label": id2label, "label2id": label2id}
    if model_type == "vit":
        config = transformers.ViTConfig(image_size=IMG, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, **common)
        model = transformers.ViTForImageClassification(config)
        processor = transformers.ViTImageProcessor(size={"height": IMG, "width": IMG})
    elif model_type == "swin":
        config = transformers.SwinConfig(image_size=IMG, patch_size=2, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                         window_size=4, **common)
        model = transformers.SwinForImageClassification(config)
        processor = transformers.ViTImageProcessor(size={"height": IMG, "width": IMG})
    elif model_type == "siglip":
        config = transformers.SiglipConfig(
            text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "vocab_size": 64, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0},
            vision_config={"image_size": IMG, "patch_size": 4, "hidden_size": 32, "intermediate_size": 64,
                           "num_hidden_layers": 2, "num_attention_heads": 2},
            **common)
        model = transformers.SiglipForImageClassification(config)
        processor = transformers.SiglipImageProcessor(size={"height": IMG, "width": IMG})
    else:
        raise ValueError(model_type)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return model, processor


def train_on_planted(model: Any, processor: Any, train_dir: Path, target: dict[str, list[int]], out: Path,
                     steps: int = 120, seed: int = 0) -> None:
    """A few AdamW steps of cross-entropy on the planted images, then save (safetensors).

    `target` gives, per folder ("real", "fake"), the class ids its images are taught; a list of
    several splits the folder across them in turn (e.g. fakes as AI and as Deepfake)."""
    import torch
    from PIL import Image

    torch.manual_seed(seed)
    paths, labels = [], []
    for folder, ids in target.items():
        for i, p in enumerate(sorted((train_dir / folder).glob("*.png"))):
            paths.append(p)
            labels.append(ids[i % len(ids)])
    pixels = processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")["pixel_values"]
    y = torch.tensor(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (32,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(pixel_values=pixels[idx]).logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(out)


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return path
