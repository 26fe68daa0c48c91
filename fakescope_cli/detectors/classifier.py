"""The `classifier` backend: an image-classification checkpoint (transformers'
AutoModelForImageClassification: ViT, Swin, SwinV2, SigLIP/SigLIP2, ConvNeXt, BEiT, ...).

p_fake is the softmax probability mass of the classes on the AI side. Which classes those are comes
from the checkpoint's `fakescope.json` (`label_words`: {"fake": [...], "real": [...]}, matched
against config.json's id2label) or, without one, from a table of the spellings public detectors
use (artificial / human, ai / hum, FAKE / REAL, AI / Deepfake / Real, ...). A class that neither
names is refused rather than guessed: a `LABEL_0` / `LABEL_1` config says nothing about which
side is fake.

Only safetensors weights load unless --trust-pickle; a checkpoint's own Python code never runs.
torch / transformers are imported when a detector is built, never at module import.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakescope_cli.checkpoints import hf_weight_files, read_hf_config, weights_identity
from fakescope_cli.detectors.base import BatchedDetector, DetectorInfo, DetectorResult, finite_result
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError
from fakescope_cli.media import Media
from fakescope_cli.protocol import LABEL_WORDS, MANIFEST_NAME, load_protocol

INSTALL_HINT = "pip install 'fakescope[hf]'  (torch, transformers, safetensors)"
QUANTIZE_CHOICES = ("none", "4bit", "8bit")
DEVICE_CHOICES = ("auto", "cpu", "cuda")

# Class names public detectors use, normalised (lower case, '_' and '-' as spaces). A class is
# mapped only when its whole name is one of these: "ai art" or "LABEL_1" are refused, not guessed.
FAKE_SPELLINGS = frozenset({
    "fake", "ai", "artificial", "ai generated", "ai gen", "aigc", "generated", "synthetic", "full synthetic",
    "fully synthetic", "deepfake", "deep fake", "tampered", "manipulated", "machine generated", "sd", "gan",
})
REAL_SPELLINGS = frozenset({
    "real", "human", "hum", "authentic", "natural", "realism", "genuine", "original", "photo", "human made",
    "real image", "not ai", "nature",
})


def normalise_label(name: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", str(name)).lower().split())


def map_labels(id2label: dict[int, str], label_words: dict[str, Sequence[str]] | None) -> tuple[list[int], list[int]]:
    """(fake class indices, real class indices) for a classifier's id2label.

    `label_words` (from the manifest) names the classes of each side; matched after
    normalisation, and every class must be named. Without it, the spelling table decides. A class
    left on neither side, or a side with no class, is a UsageError (one line, exit 2) that says how
    to map it.
    """
    if label_words is not None:
        fake_names = {normalise_label(w) for w in label_words.get("fake", ())}
        real_names = {normalise_label(w) for w in label_words.get("real", ())}
        origin = f"the label_words of {MANIFEST_NAME}"
    else:
        fake_names, real_names = set(FAKE_SPELLINGS), set(REAL_SPELLINGS)
        origin = "fakescope's table of label spellings"
    fake = [i for i, n in sorted(id2label.items()) if normalise_label(n) in fake_names]
    real = [i for i, n in sorted(id2label.items()) if normalise_label(n) in real_names and i not in fake]
    unmapped = [id2label[i] for i in sorted(id2label) if i not in fake and i not in real]
    if unmapped or not fake or not real:
        shown = ", ".join(f"{i}: {id2label[i]}" for i in sorted(id2label))
        why = (f"class {', '.join(repr(u) for u in unmapped)} is on neither side" if unmapped
               else f"no class is on the {'fake' if not fake else 'real'} side")
        raise UsageError(
            f"the classifier's labels ({shown}) cannot be read as fake or real by {origin}: {why}; map them in "
            f'{MANIFEST_NAME} beside the weights, e.g. {{"label_words": {{"fake": ["..."], "real": ["..."]}}}}')
    return fake, real


def inspect_labels(model_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """For `models inspect`: how the classifier backend would read a folder's classes (or why it
    refuses them); None when config.json does not describe an image classifier."""
    folder = Path(model_dir)
    try:
        config = read_hf_config(folder)
    except DetectorUnavailable:
        return None
    archs = config.get("architectures")
    if not (isinstance(archs, list) and any(str(a).endswith("ForImageClassification") for a in archs)):
        return None
    raw = config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(int(config.get("num_labels") or 2))}
    id2label = {int(k): str(v) for k, v in raw.items()}
    try:
        fake, real = map_labels(id2label, _manifest_label_words(load_protocol(folder)))
    except UsageError as exc:
        return {"backend": "classifier", "id2label": id2label, "refused": str(exc)}
    return {"backend": "classifier", "id2label": id2label, "fake": [id2label[i] for i in fake],
            "real": [id2label[i] for i in real]}


def _manifest_label_words(protocol: Any) -> dict[str, Sequence[str]] | None:
    """The manifest's label_words, or None when the protocol carries the defaults (no mapping given)."""
    words = {k: tuple(v) for k, v in protocol.label_words.items()}
    return None if words == {k: tuple(v) for k, v in LABEL_WORDS.items()} else words


class ClassifierDetector(BatchedDetector):
    """Detector over an image-classification checkpoint folder; `analyze_batch` scores a batch per pass."""

    id = "classifier"
    # Capabilities (issue #18's interface): one model copy in the main process, batched passes.
    runs_in_process = True
    needs_modules = ("torch", "transformers")
    extra = "hf"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        quantize: str = "none",
        batch_size: int = 16,
        trust_pickle: bool = False,
        verbose: bool = False,
    ):
        if model is None:
            raise UsageError("--backend classifier needs --model DIR (an image-classification checkpoint folder)")
        if quantize not in QUANTIZE_CHOICES:
            raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize!r}")
        if device not in DEVICE_CHOICES:
            raise UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {device!r}")
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
        self.model_dir = Path(model)
        if not self.model_dir.exists():
            raise DetectorUnavailable(f"{self.model_dir}: no such model folder")
        self.weight_files, self.weights_format = hf_weight_files(self.model_dir, trust_pickle=trust_pickle)
        config = read_hf_config(self.model_dir)
        if config.get("auto_map"):
            raise DetectorUnavailable(f"{self.model_dir}: this checkpoint needs its own Python code (auto_map in "
                                      "config.json); the classifier backend never runs it")
        raw_labels = config.get("id2label")
        if raw_labels is None:  # transformers leaves the generic LABEL_0, LABEL_1, ... out of config.json
            count = config.get("num_labels") or config.get("_num_labels") or 2
            raw_labels = {str(i): f"LABEL_{i}" for i in range(int(count))} if isinstance(count, int) else None
        if not isinstance(raw_labels, dict) or len(raw_labels) < 2:
            raise DetectorUnavailable(f"{self.model_dir}: config.json has no id2label with two or more classes; "
                                      "not an image classifier")
        try:
            self.id2label = {int(k): str(v) for k, v in raw_labels.items()}
        except (TypeError, ValueError):
            raise DetectorUnavailable(f"{self.model_dir}: config.json id2label keys are not class numbers") from None
        self.protocol = load_protocol(self.model_dir)
        # Decided before torch loads: an unmapped label layout is one line, not minutes of loading.
        self.fake_ids, self.real_ids = map_labels(self.id2label, _manifest_label_words(self.protocol))
        if self.protocol.weights_sha256 is not None:  # pinned by the manifest (models pull): check first
            self.protocol.verify_weights(self.weights_sha256)
        self.model_type = str(config.get("model_type"))
        self.batch_size = batch_size
        self.quantize = quantize
        self._lock = threading.Lock()

        try:
            import torch
            import transformers
        except ImportError as exc:
            raise DetectorUnavailable(f"the classifier backend needs {exc.name}: {INSTALL_HINT}") from None
        self._torch = torch
        if not verbose:
            transformers.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise DetectorUnavailable("--device cuda: no CUDA device is visible to torch")
        self.device = device
        self.dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if device == "cuda" \
            else torch.float32
        qconfig = None
        if quantize == "4bit" and device != "cuda":
            # bitsandbytes' CPU 4-bit kernels come from a remote kernel repository (remote code).
            raise DetectorUnavailable("--quantize 4bit runs on CUDA; on the CPU use --quantize 8bit or none")
        if quantize != "none":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                raise DetectorUnavailable(f"--quantize {quantize} needs bitsandbytes: {INSTALL_HINT}") from None
            if not verbose:  # a notice per 8-bit matmul on every batch
                import logging
                import warnings

                logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
                warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
            # The classification head stays in full precision: it is tiny and p_fake comes from it.
            qconfig = transformers.BitsAndBytesConfig(
                load_in_4bit=quantize == "4bit", load_in_8bit=quantize == "8bit", bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=self.dtype, llm_int8_skip_modules=["classifier", "head"])
        try:
            self.model = transformers.AutoModelForImageClassification.from_pretrained(
                self.model_dir, dtype=self.dtype, device_map={"": device}, quantization_config=qconfig,
                use_safetensors=self.weights_format == "safetensors", trust_remote_code=False,
                local_files_only=True,
            ).eval()
            from transformers.models.auto.image_processing_auto import AutoImageProcessor

            self.processor = AutoImageProcessor.from_pretrained(self.model_dir, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - a missing file, a bad tensor, CUDA: all mean "cannot load"
            raise DetectorUnavailable(f"{self.model_dir}: cannot load the classifier: {_short(exc)}") from None
        n_out = int(getattr(self.model.config, "num_labels", len(self.id2label)))
        if n_out != len(self.id2label):
            raise DetectorUnavailable(f"{self.model_dir}: the model has {n_out} outputs but id2label names "
                                      f"{len(self.id2label)} classes")
        name = self.model_dir.resolve().name
        self.version = f"{self.model_type}:{name}" + ("" if quantize == "none" else f":{quantize}")

    @property
    def weights_sha256(self) -> str:
        return weights_identity(self.weight_files)

    # ------------------------------------------------------------------------------ scoring

    def analyze_batch(self, medias: Sequence[Media]) -> list[DetectorResult | InputError]:
        """Score many images, `batch_size` per forward pass; an undecodable file gives its
        InputError in its slot and the others are still scored."""
        images: list[Any] = []
        for m in medias:
            try:
                images.append(m.rgb())
            except InputError as exc:
                images.append(exc)
        ok = [i for i, x in enumerate(images) if not isinstance(x, InputError)]
        probs: dict[int, np.ndarray] = {}
        with self._lock:
            for c0 in range(0, len(ok), self.batch_size):
                idx = ok[c0: c0 + self.batch_size]
                try:
                    rows = self._probabilities([images[i] for i in idx])
                except (RuntimeError, ValueError) as exc:
                    raise DetectorUnavailable(f"classifier backend failed: {_short(exc)}") from None
                probs.update(zip(idx, rows, strict=True))
        out: list[DetectorResult | InputError] = []
        for i, x in enumerate(images):
            if isinstance(x, InputError):
                out.append(x)
                continue
            try:
                out.append(self._result(probs[i]))
            except InputError as exc:
                out.append(exc)
        return out

    def _probabilities(self, images: list[Any]) -> np.ndarray:
        torch = self._torch
        batch = self.processor(images=images, return_tensors="pt")
        pixels = batch["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            logits = self.model(pixel_values=pixels).logits.float()
        return torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)

    def _result(self, p: np.ndarray) -> DetectorResult:
        p_fake = float(p[self.fake_ids].sum()) if np.all(np.isfinite(p)) else float("nan")
        calibration = self.protocol.calibration
        raw_extra: dict[str, Any] = {}
        if calibration.method != "none" and 0.0 < p_fake < 1.0:
            # The manifest's Platt / temperature fit applies to the fake-vs-real log-odds.
            raw_extra = {"p_fake_raw": p_fake, "calibration": calibration.to_dict()}
            p_fake = float(calibration.apply(np.array([np.log(p_fake) - np.log1p(-p_fake)]))[0])
        raw: dict[str, Any] = {
            "backend": "classifier",
            "model_type": self.model_type,
            "device": self.device,
            "quantize": self.quantize,
            "class_probabilities": {self.id2label[i]: float(p[i]) for i in sorted(self.id2label)},
            "fake_classes": [self.id2label[i] for i in self.fake_ids],
            **raw_extra,
        }
        p_fake, _, raw = finite_result(p_fake, None, raw, why=f"the classifier's probabilities are not finite on "
                                                                f"{self.device} ({self.quantize})")
        return DetectorResult(p_fake=min(1.0, max(0.0, p_fake)), raw=raw)

    def describe(self) -> DetectorInfo:
        details = {
            "backend": "classifier",
            "model": str(self.model_dir),
            "model_type": self.model_type,
            "device": self.device,
            "dtype": str(self.dtype).replace("torch.", ""),
            "quantize": self.quantize,
            "weights_format": self.weights_format,
            "labels": {"fake": [self.id2label[i] for i in self.fake_ids],
                       "real": [self.id2label[i] for i in self.real_ids]},
            "protocol": self.protocol.version,
        }
        return DetectorInfo(self.id, self.version, self.weights_sha256, details=details)


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"
