"""The checkpoint-file library: which weight files a model is, whether fakescope will load them, and
their identity (sha256).

Shared by the hf and gguf backends (before anything is loaded), `models inspect` and training:
safetensors / GGUF only, pickle refused unless explicitly trusted; transformers config.json and GGUF
headers read without importing torch or llama_cpp; one weights_sha256 rule for what scan records
and a manifest pins.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from fakescope_cli.errors import DetectorUnavailable

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
GGUF_MAGIC = b"GGUF"

# config.json model_type -> (family, transformers class). Other types go through the Auto classes.
KNOWN_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "llava": ("llava", "LlavaForConditionalGeneration"),
    "qwen2_vl": ("qwen2_vl", "Qwen2VLForConditionalGeneration"),
    "qwen2_5_vl": ("qwen2_vl", "Qwen2_5_VLForConditionalGeneration"),
    # Issue #19 point 6: read through the same fast path (M-RoPE and image grid as Qwen2-VL; any-
    # resolution tiles whose token count the LLaVA-NeXT processor computes). Not trained by train lmm.
    "qwen3_vl": ("qwen2_vl", "Qwen3VLForConditionalGeneration"),
    "llava_next": ("llava_next", "LlavaNextForConditionalGeneration"),
}
TRAINABLE_MODEL_TYPES = ("llava", "qwen2_vl", "qwen2_5_vl")  # what fakescope train lmm was tested on


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _cache_file() -> Path | None:
    base = os.environ.get("FAKESCOPE_CACHE_DIR")
    if not base:
        try:
            import platformdirs

            base = platformdirs.user_cache_dir("fakescope")
        except ImportError:
            return None
    return Path(base) / "weights-sha256.json"


def cached_sha256(path: Path) -> str:
    """sha256 of a (possibly multi-GB) weights file, remembered by (real path, size, mtime)."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = _cache_file()
    table: dict[str, str] = {}
    if cache is not None and cache.is_file():
        try:
            loaded = json.loads(cache.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                table = {str(k): str(v) for k, v in loaded.items()}
        except (OSError, ValueError):
            table = {}
    if key in table and len(table[key]) == 64:
        return table[key]
    digest = sha256_file(path)
    if cache is not None:
        table[key] = digest
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps(table), encoding="utf-8")
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only cache only costs time
    return digest


def combined_sha256(files: list[Path]) -> str:
    """One digest for a set of weight files: the file's own sha256 when there is one file, else the
    sha256 of the sorted 'name<TAB>sha256' lines (so shards hash to one stable id)."""
    if len(files) == 1:
        return cached_sha256(files[0])
    lines = "".join(f"{f.name}\t{cached_sha256(f)}\n" for f in sorted(files, key=lambda p: p.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def read_hf_config(model_dir: Path) -> dict[str, Any]:
    """A checkpoint's config.json as a dict. A file that is not a JSON object is a broken checkpoint:
    DetectorUnavailable naming the file (as a bad fakescope.json is), never a parser traceback."""
    path = model_dir / "config.json"
    try:
        cfg = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise DetectorUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DetectorUnavailable(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise DetectorUnavailable(f"{path}: not a JSON object (a transformers config is one)")
    return cfg


ORIGINAL_LLAVA_KEYS = ("mm_vision_tower", "mm_projector_type", "mm_hidden_size")


def refuse_original_llava(model_dir: Path) -> None:
    """DetectorUnavailable for a checkpoint in the original LLaVA repository's layout (LlavaLlamaForCausalLM,
    `mm_vision_tower` in config.json; FakeShield ships so): transformers cannot load it as it is, and
    llava-hf's conversion script turns it into the layout fakescope reads."""
    path = model_dir / "config.json"
    if not path.is_file():
        return
    cfg = read_hf_config(model_dir)
    archs = cfg.get("architectures") if isinstance(cfg.get("architectures"), list) else []
    if any(k in cfg for k in ORIGINAL_LLAVA_KEYS) or "LlavaLlamaForCausalLM" in archs:
        raise DetectorUnavailable(
            f"{model_dir}: an original-LLaVA-format checkpoint ({', '.join(archs) or cfg.get('model_type')}, "
            "mm_vision_tower in config.json); convert it to the llava-hf layout first with transformers' "
            "src/transformers/models/llava/convert_llava_weights_to_hf.py (--text_model_id, --vision_model_id, "
            "--output_hub_path, --old_state_dict_id)"
        )


def hf_weight_files(model_dir: Path, *, trust_pickle: bool = False) -> tuple[list[Path], str]:
    """The weight files transformers will read from `model_dir`, and their format.

    Raises DetectorUnavailable for a folder without weights, or with pickle weights only while
    `trust_pickle` is False (pickle can run code when loaded).
    """
    if not model_dir.is_dir():
        raise DetectorUnavailable(f"{model_dir}: not a folder with a transformers checkpoint")
    if not (model_dir / "config.json").is_file():
        raise DetectorUnavailable(f"{model_dir}: no config.json, so not a transformers checkpoint")
    st = sorted(model_dir.glob("*.safetensors"))
    if st:
        return st, "safetensors"
    pickles = sorted(p for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles:
        if not trust_pickle:
            raise DetectorUnavailable(
                f"{model_dir}: only pickle weights ({', '.join(p.name for p in pickles[:3])}); pickle can run "
                "arbitrary code when loaded. Convert them to safetensors, or pass --trust-pickle if you "
                "trust their source"
            )
        return pickles, "pickle"
    ggufs = sorted(model_dir.glob("*.gguf"))
    if ggufs:
        raise DetectorUnavailable(f"{model_dir}: holds GGUF files; use --backend gguf --model {ggufs[0]}")
    raise DetectorUnavailable(f"{model_dir}: no weights (*.safetensors) found")


def read_gguf_header(path: Path) -> dict[str, Any]:
    """Check that `path` is a GGUF file and read its metadata (not the tensors) with the gguf package
    when installed, else just the version and counts from the fixed header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError as exc:
        raise DetectorUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(head) < 24 or head[:4] != GGUF_MAGIC:
        raise DetectorUnavailable(f"{path}: not a GGUF file (no GGUF magic bytes)")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    info: dict[str, Any] = {"gguf_version": version, "tensor_count": n_tensors, "metadata_count": n_kv}
    try:
        from gguf import GGUFReader
    except ImportError:
        return info
    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # the gguf package raises assorted errors on corrupt files
        raise DetectorUnavailable(f"{path}: GGUF header cannot be parsed: {exc}") from None
    meta: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key not in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
            continue  # vocabularies are large and say nothing a user needs here
        try:
            val = fld.contents()
        except Exception:
            continue
        if isinstance(val, str) and len(val) > 200:
            val = val[:200] + "…"
        if isinstance(val, list) and len(val) > 16:
            val = f"[{len(val)} values]"
        meta[key] = val
    types: dict[str, int] = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    info["metadata"] = meta
    info["tensor_types"] = types
    return info


def mmproj_candidates(model: Path) -> list[Path]:
    """Projectors beside a GGUF model that `--mmproj` may be left out for: `*mmproj*.gguf` in its
    folder, the model itself excluded (a model file whose name holds "mmproj" is not its own projector)."""
    here = model.resolve()
    return sorted(p for p in model.parent.glob("*mmproj*.gguf") if p.resolve() != here)


def resolve_mmproj(model: Path, mmproj: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The projector the gguf backend uses with `model`, and how it was chosen: the one given, else
    the only candidate beside the model; (None, why) when there is none or more than one. The one
    rule for `scan` and `models inspect`, so that both hash the same files."""
    if mmproj is not None:
        return Path(mmproj), "--mmproj"
    found = mmproj_candidates(model)
    if len(found) == 1:
        return found[0], "found beside the model"
    if not found:
        return None, "none given and none found beside the model (*mmproj*.gguf)"
    return None, f"several beside the model ({', '.join(p.name for p in found)}); choose one with --mmproj"


def weights_identity(files: list[Path]) -> str:
    """The weights_sha256 that `scan` records and a manifest pins, for the resolved weight files:
    the transformers weight files of a checkpoint, or a GGUF model plus its projector."""
    return combined_sha256(files)


def is_gguf(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False
