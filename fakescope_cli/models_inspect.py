"""What `fakescope models inspect PATH` prints: architecture, quantisation, the protocol that will be
used (manifest or defaults), and the weights' files with their sha256.

Reads headers and config files only (through the checkpoint-file library, checkpoints.py); never
imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fakescope_cli.checkpoints import (
    KNOWN_ARCHITECTURES,
    cached_sha256,
    hf_weight_files,
    is_gguf,
    read_gguf_header,
    read_hf_config,
    refuse_original_llava,
    resolve_mmproj,
    weights_identity,
)
from fakescope_cli.errors import DetectorUnavailable
from fakescope_cli.protocol import MANIFEST_NAME, PromptProtocol, find_manifest, load_protocol


def inspect_model(path: str | os.PathLike[str], *, mmproj: str | os.PathLike[str] | None = None,
                  trust_pickle: bool = False, hash_weights: bool = True) -> dict[str, Any]:
    """Everything `models inspect` shows, as a JSON-ready dict. Raises DetectorUnavailable for a path
    that is neither a transformers checkpoint folder nor a GGUF file."""
    p = Path(path)
    protocol = load_protocol(p)
    out: dict[str, Any] = {"path": str(p)}
    complete = True  # False: scan cannot run on this as given, so there is no identity to show
    if p.is_file() and p.suffix.lower() == ".gguf" or (p.is_file() and is_gguf(p)):
        out["backend"] = "gguf"
        header = read_gguf_header(p)
        meta = header.get("metadata", {})
        out["architecture"] = meta.get("general.architecture")
        out["quantization"] = _gguf_quant(meta, header.get("tensor_types", {}))
        out["gguf"] = header
        files = [p]
        mp, how = resolve_mmproj(p, mmproj)
        if mp is not None:
            mh = read_gguf_header(mp)
            mmeta = mh.get("metadata", {})
            out["mmproj"] = {"path": str(mp), "chosen": how, "architecture": mmeta.get("general.architecture"),
                             "projector_type": mmeta.get("clip.projector_type"),
                             "tensor_types": mh.get("tensor_types")}
            files.append(mp)
        else:
            complete = False
            out["mmproj"] = {"path": None, "chosen": f"{how}: scan needs --mmproj PROJECTOR.gguf"}
        fmt = "gguf"
    else:
        refuse_original_llava(p)
        files, fmt = hf_weight_files(p, trust_pickle=trust_pickle)
        cfg = read_hf_config(p)
        mtype = cfg.get("model_type")
        family, cls = KNOWN_ARCHITECTURES.get(mtype if isinstance(mtype, str) else "",
                                              ("auto", "AutoModelForImageTextToText"))
        out["backend"] = "hf"
        out["architecture"] = {
            "model_type": mtype, "architectures": cfg.get("architectures"), "family": family,
            "class": cls, "custom_code": bool(cfg.get("auto_map")),
        }
        qc = cfg.get("quantization_config")
        out["quantization"] = qc if qc else "none (quantise at load with --quantize 4bit|8bit)"
        text = cfg.get("text_config")
        text = text if isinstance(text, dict) else {}
        out["text_model"] = {k: text.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers",
                                                       "vocab_size") if k in text}
        has_template = any((p / n).is_file() for n in ("chat_template.jinja", "chat_template.json"))
        if not has_template and (p / "tokenizer_config.json").is_file():
            has_template = "chat_template" in (p / "tokenizer_config.json").read_text(encoding="utf-8", errors="replace")
        out["chat_template"] = "manifest" if protocol.chat_template else ("checkpoint" if has_template else "missing")
    out["weights_format"] = fmt
    out["weights"] = [
        {"file": f.name, "size": f.stat().st_size, **({"sha256": cached_sha256(f)} if hash_weights else {})}
        for f in files
    ]
    if hash_weights:
        # What scan records (and a manifest pins): the same files, the same function. Without a
        # projector scan refuses the model, so a model-only digest would only mislead a pin.
        out["weights_sha256"] = weights_identity(files) if complete else None
    out["weights_pin"] = _check_pin(protocol, out.get("weights_sha256"), hash_weights, complete)
    out["manifest"] = str(find_manifest(p)) if find_manifest(p) else f"none (no {MANIFEST_NAME}; defaults apply)"
    out["protocol"] = protocol.describe()
    return out


def _check_pin(protocol: PromptProtocol, actual: str | None, hashed: bool, complete: bool) -> str:
    """The manifest's weights_sha256 pin as scan applies it. A mismatch raises (exit 4, as scan
    refuses the checkpoint) rather than printing a report of weights scan would not use."""
    pin = protocol.weights_sha256
    if pin is None:
        return f"none (no weights_sha256 in {MANIFEST_NAME})"
    if not hashed:
        return "not checked (--no-hash)"
    if not complete:
        return "not checked (no projector: scan cannot run as given)"
    try:
        protocol.verify_weights(actual)
    except DetectorUnavailable as exc:
        raise DetectorUnavailable(f"weights pin fails, so scan refuses this checkpoint: {exc}") from None
    return "ok (the weights match the manifest's weights_sha256)"


# GGUF general.file_type values (llama.cpp's llama_ftype enum), the common ones.
_GGUF_FTYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
                11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
                17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def _gguf_quant(meta: dict[str, Any], types: dict[str, int]) -> str:
    ft = meta.get("general.file_type")
    if isinstance(ft, int) and ft in _GGUF_FTYPES:
        return _GGUF_FTYPES[ft]
    if types:
        return max(types.items(), key=lambda kv: kv[1])[0]
    return "unknown"
