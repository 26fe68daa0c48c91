"""The `hf` backend: a multimodal checkpoint run in process with transformers.

LLaVA-1.5 (llava-hf layout), LLaVA-NeXT, Qwen2-VL / Qwen2.5-VL and Qwen3-VL get the full treatment:
the prompts are tokenised once, the image placeholder is expanded to the image's token count (what their
processors do), and with `attributes=True` the detection prompt and the 14 aspect probes share one
KV-cache prefix per image: the vision tower runs once per image and the prefix (template head +
image tokens) is prefilled once, then each probe's few remaining tokens run against a copy of that
cache. Other image-text-to-text checkpoints go through the Auto classes with one full pass per
(image, prompt).

torch / transformers / bitsandbytes are imported when a detector is built, never at module import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakescope_cli.checkpoints import (
    KNOWN_ARCHITECTURES,
    hf_weight_files,
    read_hf_config,
    refuse_original_llava,
)
from fakescope_cli.detectors.base import StreamCallback
from fakescope_cli.detectors.multimodal import ImageScores, MultimodalDetector, check_device, short_error
from fakescope_cli.errors import DetectorUnavailable, UsageError
from fakescope_cli.protocol import (
    LabelTokens,
    label_z,
    load_protocol,
    longest_common_prefix,
    resolve_label_tokens,
)

HF_INSTALL_HINT = "pip install 'fakescope[hf]'  (torch, transformers, accelerate, safetensors, bitsandbytes)"
QUANTIZE_CHOICES = ("none", "4bit", "8bit")


def _import_stack(quantize: str) -> tuple[Any, Any]:
    import logging

    # bitsandbytes logs CPU-kernel and dtype-cast notices at import and on every 8-bit matmul.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DetectorUnavailable(
            f"the hf backend needs packages that are not installed ({exc.name}): {HF_INSTALL_HINT}"
        ) from None
    if quantize != "none":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise DetectorUnavailable(
                f"--quantize {quantize} needs bitsandbytes: pip install 'fakescope[hf]' (or pip install bitsandbytes)"
            ) from None
    return torch, transformers


class _Streamer:
    """transformers streamer interface (put/end): decodes new tokens and hands text deltas on.

    Holds back text ending in U+FFFD (a UTF-8 sequence split across tokens) until it completes.
    """

    def __init__(self, tokenizer: Any, callback: StreamCallback | None):
        self.tokenizer = tokenizer
        self.callback = callback
        self.tokens: list[int] = []
        self.sent = 0
        self.skip_prompt = True

    def put(self, value: Any) -> None:
        if self.skip_prompt:  # the first call carries the prompt
            self.skip_prompt = False
            return
        self.tokens.extend(int(t) for t in value.reshape(-1).tolist())
        self._flush(final=False)

    def end(self) -> None:
        self._flush(final=True)

    def _flush(self, final: bool) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return
        if len(text) > self.sent and self.callback is not None:
            self.callback(text[self.sent:])
        self.sent = max(self.sent, len(text))


class HFDetector(MultimodalDetector):
    """The FakeScope protocol over a transformers checkpoint folder.

    Construction loads the model (minutes for a 7B checkpoint) and raises DetectorUnavailable with
    what to install or which file is wrong. `score_images` runs `batch_size` images per forward pass.
    """

    id = "hf"
    extra = "hf"
    needs_modules = ("torch", "transformers")

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        mmproj: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        quantize: str = "none",
        batch_size: int = 8,
        attributes: bool = False,
        explain: bool = False,
        max_tokens: int = 256,
        trust_pickle: bool = False,
        trust_remote_code: bool = False,
        verbose: bool = False,
        family: str | None = None,
    ):
        if model is None:
            raise UsageError("--backend hf needs --model DIR (a transformers checkpoint folder)")
        # Option values that are wrong whatever the checkpoint: the command line's fault (exit 2).
        if mmproj is not None:
            raise UsageError("--mmproj is for --backend gguf; a transformers checkpoint holds its vision tower")
        if quantize not in QUANTIZE_CHOICES:
            raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize!r}")
        check_device(device)
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
        self.model_dir = Path(model)
        if self.model_dir.is_file():
            if self.model_dir.suffix.lower() == ".gguf":
                raise DetectorUnavailable(
                    f"{self.model_dir} is a GGUF file: use --backend gguf --model {self.model_dir} --mmproj PROJECTOR.gguf"
                )
            raise DetectorUnavailable(f"{self.model_dir}: --backend hf needs a checkpoint folder, not a file")
        if not self.model_dir.exists():
            raise DetectorUnavailable(f"{self.model_dir}: no such model folder")
        refuse_original_llava(self.model_dir)
        self.weight_files, self.weights_format = hf_weight_files(self.model_dir, trust_pickle=trust_pickle)
        # Parsed before torch is imported: a broken config.json is a one-line error, not a traceback.
        cfg_raw = read_hf_config(self.model_dir)
        self.setup_protocol(load_protocol(self.model_dir), attributes=attributes, explain=explain,
                            max_tokens=max_tokens)
        self.batch_size = batch_size
        self.quantize = quantize
        self.verbose = verbose

        torch, transformers = _import_stack(quantize)
        self._torch = torch
        if not verbose:
            transformers.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()

        if cfg_raw.get("auto_map") and not trust_remote_code:
            raise DetectorUnavailable(
                f"{self.model_dir}: this checkpoint needs its own Python code (auto_map in config.json); "
                "pass --trust-remote-code only if you trust its source"
            )
        self.model_type = str(cfg_raw.get("model_type"))
        known = KNOWN_ARCHITECTURES.get(self.model_type)
        self.family = family or (known[0] if known else "auto")
        self.dynamic_resolution = self.family == "qwen2_vl"

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise DetectorUnavailable("--device cuda: no CUDA device is visible to torch (is this a CPU-only torch build?)")
        self.device = device
        on_cuda = device == "cuda"
        if on_cuda:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            self.dtype = torch.float32

        qconfig = None
        if quantize == "4bit":
            qconfig = transformers.BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=self.dtype,
            )
        elif quantize == "8bit":
            qconfig = transformers.BitsAndBytesConfig(load_in_8bit=True)

        model_cls = self._model_class(transformers, known)
        try:
            self.model = model_cls.from_pretrained(
                self.model_dir,
                dtype=self.dtype,
                device_map={"": device},
                quantization_config=qconfig,
                use_safetensors=self.weights_format == "safetensors",
                trust_remote_code=trust_remote_code,
                local_files_only=True,
            ).eval()
        except Exception as exc:  # noqa: BLE001 - safetensors, bitsandbytes, CUDA: all mean "cannot load"
            raise DetectorUnavailable(f"{self.model_dir}: cannot load the model: {short_error(exc)}") from None
        self.config = self.model.config
        self._load_processing(transformers, trust_remote_code)
        self.labels: LabelTokens = resolve_label_tokens(
            self.protocol.label_words,
            lambda s: self.tokenizer.encode(s, add_special_tokens=False),
            unk_id=self.tokenizer.unk_token_id,
            vocab_size=int(self.model.get_output_embeddings().weight.shape[0]),
        )
        self._label_index = torch.tensor(self.labels.columns, dtype=torch.long, device=device)
        self._template_cache: dict[tuple[str, str], list[int]] = {}
        self._hook_vision()
        name = self.model_dir.resolve().name
        self.version = f"{self.model_type}:{name}" + ("" if quantize == "none" else f":{quantize}")

    # ------------------------------------------------------------------------------ loading

    def _model_class(self, transformers: Any, known: tuple[str, str] | None) -> Any:
        if known is not None and hasattr(transformers, known[1]):
            return getattr(transformers, known[1])
        for name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
            if hasattr(transformers, name):
                return getattr(transformers, name)
        raise DetectorUnavailable(f"this transformers ({transformers.__version__}) has no image-text-to-text models")

    def _load_processing(self, transformers: Any, trust_remote_code: bool) -> None:
        """Tokenizer, image processor and chat template. The Qwen2-VL processor class also wants a
        video processor (torchvision); fakescope needs only the parts, so it falls back to them."""
        kw = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        self.processor = None
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(self.model_dir, **kw)
        except Exception:  # noqa: BLE001 - any failure here just means "load the parts"
            self.processor = None
        tok = getattr(self.processor, "tokenizer", None)
        improc = getattr(self.processor, "image_processor", None)
        try:
            if tok is None:
                tok = transformers.AutoTokenizer.from_pretrained(self.model_dir, **kw)
            if improc is None:
                # The module path, not `transformers.AutoImageProcessor`: without torchvision the
                # top-level name is a placeholder, while the class itself falls back to Pillow.
                from transformers.models.auto.image_processing_auto import AutoImageProcessor

                improc = AutoImageProcessor.from_pretrained(self.model_dir, **kw)
        except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
            raise DetectorUnavailable(f"{self.model_dir}: cannot load the tokenizer / image processor: {short_error(exc)}") from None
        self.tokenizer = tok
        self.image_processor = improc
        template = self.protocol.chat_template or getattr(self.processor, "chat_template", None) or getattr(
            tok, "chat_template", None
        )
        if not template:
            jinja = self.model_dir / "chat_template.jinja"
            if jinja.is_file():
                template = jinja.read_text(encoding="utf-8")
        if not template and self.protocol.prompt_format == "chat":
            raise DetectorUnavailable(
                f"{self.model_dir}: no chat template (tokenizer_config.json / chat_template.jinja); add one, "
                "or give chat_template in fakescope.json"
            )
        self.chat_template = template
        if self.family == "llava_next" and not hasattr(self.processor, "_get_number_of_features"):
            raise DetectorUnavailable(f"{self.model_dir}: LLaVA-NeXT needs its processor files (processor_config.json), "
                                      "which did not load")
        if self.family == "auto" and self.processor is None:
            raise DetectorUnavailable(f"{self.model_dir}: model type {self.model_type!r} needs its processor, which did not load")
        itok = getattr(self.config, "image_token_id", None)
        if itok is None:
            itok = getattr(self.config, "image_token_index", None)
        self.image_token_id = int(itok) if itok is not None else None
        if self.family != "auto" and self.image_token_id is None:
            raise DetectorUnavailable(f"{self.model_dir}: config.json has no image_token_id")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _hook_vision(self) -> None:
        inner = getattr(self.model, "model", self.model)
        tower = getattr(inner, "vision_tower", None) or getattr(inner, "visual", None)
        if tower is None:
            return

        def count(_mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            self.stats["vision_calls"] += 1
            grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
            if grid is not None:
                self.stats["vision_images"] += int(grid.shape[0])
            else:
                pv = args[0] if args else kwargs.get("pixel_values")
                self.stats["vision_images"] += int(pv.shape[0]) if pv is not None else 0

        tower.register_forward_pre_hook(count, with_kwargs=True)

    # ------------------------------------------------------------------------------ prompts

    def render(self, prompt: str, *, probe: bool = False) -> str:
        """The text for one image + prompt: the chat template with the generation prompt appended, or
        the raw format; for a probe, the manifest's answer prefix after it."""
        if self.protocol.prompt_format == "raw":
            text = self._raw_image_text() + prompt
        else:
            text = self.tokenizer.apply_chat_template(
                self.chat_messages(prompt, {"type": "image"}), chat_template=self.chat_template, tokenize=False,
                add_generation_prompt=True)
        return text + self.answer_prefix(probe)

    def _raw_image_text(self) -> str:
        """The image placeholder as the model's own processor writes it in a prompt without a template."""
        if self.family == "auto" or self.image_token_id is None:
            raise DetectorUnavailable(f"prompt_format raw: model type {self.model_type!r} has no known image placeholder")
        token = self.tokenizer.convert_ids_to_tokens(self.image_token_id)
        return f"<|vision_start|>{token}<|vision_end|>" if self.family == "qwen2_vl" else token

    def _encode_text(self, text: str) -> list[int]:
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))  # the template already wrote BOS
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def prompt_ids(self, prompt: str, *, probe: bool = False) -> list[int]:
        """Token ids of the rendered prompt with ONE image placeholder (expanded per image later)."""
        key = (prompt, self.answer_prefix(probe))
        cached = self._template_cache.get(key)
        if cached is None:
            cached = self._encode_text(self.render(prompt, probe=probe))
            n = cached.count(self.image_token_id) if self.image_token_id is not None else 1
            if n != 1:
                raise DetectorUnavailable(
                    f"the chat template places {n} image placeholders (token id {self.image_token_id}); expected one"
                )
            if self._reasoning is None:  # a marker-mode answer is the image's own: not kept
                self._template_cache[key] = cached
        return cached

    def _expand(self, ids: Sequence[int], n_image_tokens: int) -> list[int]:
        i = list(ids).index(self.image_token_id)
        return list(ids[:i]) + [self.image_token_id] * n_image_tokens + list(ids[i + 1:])

    # ------------------------------------------------------------------------------ images

    def _vision_inputs(self, images: list[Any]) -> tuple[dict[str, Any], list[int]]:
        """Pixel tensors for a batch of images and the number of placeholder tokens of each."""
        out = self.image_processor(images=images, return_tensors="pt")
        if self.family == "qwen2_vl":
            grid = out["image_grid_thw"]
            merge = int(self.config.vision_config.spatial_merge_size)
            counts = [int(g.prod()) // (merge * merge) for g in grid]
            inputs = {"pixel_values": out["pixel_values"].to(self.device, self.dtype), "image_grid_thw": grid.to(self.device)}
            return inputs, counts
        pv = out["pixel_values"]
        if self.family == "llava_next":
            # Any-resolution tiles plus image-newline tokens: the count is the processor's arithmetic.
            crop = pv.shape[-2:]
            drop_cls = getattr(self.processor, "vision_feature_select_strategy", "default") == "default"
            counts = [int(self.processor._get_number_of_features(int(h), int(w), int(crop[0]), int(crop[1]))) - drop_cls
                      for h, w in out["image_sizes"].tolist()]
            return {"pixel_values": pv.to(self.device, self.dtype), "image_sizes": out["image_sizes"].to(self.device)}, counts
        patch = int(self.config.vision_config.patch_size)
        n = (pv.shape[-2] // patch) * (pv.shape[-1] // patch)
        if getattr(self.config, "vision_feature_select_strategy", "default") == "full":
            n += 1
        return {"pixel_values": pv.to(self.device, self.dtype)}, [n] * len(images)

    def _positions(self, seq: list[int], image_index: int, grid: Any) -> Any:
        """Position ids of one unpadded sequence (on the CPU): (L,) for 1-D RoPE, (3, L) for M-RoPE."""
        torch = self._torch
        if self.family != "qwen2_vl":
            return torch.arange(len(seq))
        ids = torch.tensor([seq], dtype=torch.long)
        ttype = (ids == self.image_token_id).int()
        pos, _ = self.model.model.get_rope_index(
            ids, mm_token_type_ids=ttype, image_grid_thw=grid[image_index: image_index + 1]
        )
        return pos[:, 0, :]

    # ------------------------------------------------------------------------------ scoring

    def _pad_left(self, rows: list[list[int]], positions: list[Any]) -> tuple[Any, Any, Any]:
        """Left-padded ids, 0/1 mask and position ids, built on the CPU and moved once."""
        torch = self._torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), int(self.tokenizer.pad_token_id), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        p0 = positions[0]
        pos = torch.zeros((len(rows), width) if p0.dim() == 1 else (p0.shape[0], len(rows), width), dtype=torch.long)
        for i, (r, p) in enumerate(zip(rows, positions, strict=True)):
            n = len(r)
            ids[i, width - n:] = torch.tensor(r, dtype=torch.long)
            mask[i, width - n:] = 1
            pos[..., i, width - n:] = p
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _forward(self, keep: Any = 1, **kw: Any) -> tuple[Any, Any]:
        """One forward pass; the label tokens' log-probabilities (log-softmax over the whole
        vocabulary, float32) at the kept positions, and the cache."""
        self.stats["forward_passes"] += 1
        out = self.model(**kw, logits_to_keep=keep, return_dict=True)
        logp = self._torch.log_softmax(out.logits.float(), dim=-1)
        return logp.index_select(-1, self._label_index), getattr(out, "past_key_values", None)

    def _segments(self, probe_ids: list[list[int]]) -> list[tuple[int, tuple[int, ...], list[int]]]:
        """(probe, continuation, tokens) of every sequence to run: each probe as it is (its answer
        position gives every one-token label word), and each probe followed by all but the last token
        of each multi-token label word (whose positions give that word's later tokens)."""
        out = []
        for k, ids in enumerate(probe_ids):
            out.append((k, (), ids))
            out.extend((k, c, ids + list(c[:-1])) for c in self.labels.continuations)
        return out

    def _z_of(self, rows: list[Any], segments: list[tuple[int, tuple[int, ...], list[int]]],
              n_probes: int) -> list[tuple[float, float]]:
        """(z_fake, z_real) per probe from each segment's kept rows (its last max(1, len(c)) positions)."""
        first: dict[int, Any] = {}
        continued: dict[int, dict[tuple[int, ...], Any]] = {k: {} for k in range(n_probes)}
        for (k, c, _), r in zip(segments, rows, strict=True):
            if c:
                continued[k][c] = r
            else:
                first[k] = r[-1]
        return [label_z(first[k], continued[k], self.labels) for k in range(n_probes)]

    def score_images(self, images: list[Any], probes: list[tuple[str, str]]) -> list[ImageScores]:
        return [ImageScores(list(z)) for z in self._score_images(images, probes)]

    def _score_images(self, images: list[Any], probes: list[tuple[str, str]]) -> list[list[tuple[float, float]]]:
        """(z_fake, z_real) for each image x probe.

        One probe and one-token label words: a single left-padded forward pass for the batch.
        Otherwise the sequences to run are segments (each probe, and each probe followed by a
        multi-token label word's leading tokens): the prefix they share (template head + image
        tokens) is prefilled once into a KV cache (one vision pass per image), then ONE more pass runs
        every segment's remaining tokens, packed side by side in one row per image, each attending to
        the cached prefix and to itself only (a block-diagonal 4-D mask), with the positions it would
        have had after the prefix. The remaining tokens are the same for every image, so the
        log-probabilities to read sit at the same columns in every row.
        """
        torch = self._torch
        if self.family == "auto":
            return self._score_images_auto(images, probes)
        vision, counts = self._vision_inputs(images)
        grid = vision["image_grid_thw"].cpu() if "image_grid_thw" in vision else None
        templates = [self.prompt_ids(p, probe=True) for _, p in probes]
        segments = self._segments(templates)
        n_img, K = len(images), len(segments)
        seqs = [[self._expand(t, counts[i]) for _, _, t in segments] for i in range(n_img)]
        reads = [max(1, len(c)) for _, c, _ in segments]  # positions read at each segment's end

        def z_of(lab: Any) -> list[list[tuple[float, float]]]:  # lab: (n_img, sum(reads), columns)
            arr = lab.cpu().numpy().astype(np.float64)
            out = []
            for i in range(n_img):
                bounds = np.cumsum([0, *reads])
                rows = [arr[i, bounds[j]: bounds[j + 1]] for j in range(K)]
                out.append(self._z_of(rows, segments, len(probes)))
            return out

        with torch.inference_mode():
            if K == 1:
                rows = [s[0] for s in seqs]
                ids, mask, pos = self._pad_left(rows, [self._positions(r, i, grid) for i, r in enumerate(rows)])
                lab, _ = self._forward(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, **vision)
                return z_of(lab[:, -1:, :])
            # The shared prefix stops at least one token short of the shortest segment: the
            # log-probabilities read for each segment must come from its own tokens.
            plen = min(longest_common_prefix(seqs[0]), min(len(s) for s in seqs[0]) - 1)
            suffixes = [s[plen:] for s in seqs[0]]
            pre_len = [len(seqs[i][0]) - len(suffixes[0]) for i in range(n_img)]
            for i in range(n_img):  # images differ only in their image-token count
                if any(seqs[i][k][pre_len[i]:] != suffixes[k] or seqs[i][k][: pre_len[i]] != seqs[i][0][: pre_len[i]]
                       for k in range(K)):
                    raise RuntimeError("probe prompts do not share one prefix across images")
            full_pos = [[self._positions(seqs[i][k], i, grid) for k in range(K)] for i in range(n_img)]
            ids, pmask, ppos = self._pad_left([seqs[i][0][: pre_len[i]] for i in range(n_img)],
                                              [full_pos[i][0][..., : pre_len[i]] for i in range(n_img)])
            _, cache = self._forward(input_ids=ids, attention_mask=pmask, position_ids=ppos, use_cache=True, **vision)

            flat = [t for s in suffixes for t in s]
            S, P = len(flat), ids.shape[1]
            sids = torch.tensor([flat] * n_img, dtype=torch.long, device=self.device)
            spos = torch.stack([torch.cat([full_pos[i][k][..., pre_len[i]:] for k in range(K)], dim=-1)
                                for i in range(n_img)], dim=-2).to(self.device)
            # Block-diagonal causal mask over the packed segments, appended to the prefix's padding mask.
            block = torch.zeros((S, S), dtype=torch.bool)
            kept, start = [], 0
            for s, n_read in zip(suffixes, reads, strict=True):
                n = len(s)
                block[start: start + n, start: start + n] = torch.ones((n, n), dtype=torch.bool).tril()
                start += n
                kept.extend(range(start - n_read, start))
            allowed = torch.cat([pmask.bool().cpu()[:, None, None, :].expand(n_img, 1, S, P),
                                 block[None, None].expand(n_img, 1, S, S)], dim=-1)
            neg = torch.finfo(self.dtype).min
            mask4 = torch.zeros(allowed.shape, dtype=self.dtype).masked_fill(~allowed, neg).to(self.device)
            keep = torch.tensor(kept, dtype=torch.long, device=self.device)
            lab, _ = self._forward(keep=keep, input_ids=sids, attention_mask=mask4, position_ids=spos,
                                   past_key_values=cache, use_cache=True)
            del cache
            return z_of(lab)

    def _score_images_auto(self, images: list[Any], probes: list[tuple[str, str]]) -> list[list[tuple[float, float]]]:
        """Other architectures: the checkpoint's own processor, one full pass per (image, prompt),
        and one more per multi-token label word (its leading tokens appended to the prompt)."""
        torch = self._torch
        pairs = [(i, k) for i in range(len(images)) for k in range(len(probes))]
        results: list[list[tuple[float, float]]] = [[(0.0, 0.0)] * len(probes) for _ in images]
        self.tokenizer.padding_side = "left"
        with torch.inference_mode():
            for c0 in range(0, len(pairs), self.batch_size):
                chunk = pairs[c0: c0 + self.batch_size]
                texts = [self.render(probes[k][1], probe=True) for _, k in chunk]
                batch = self.processor(images=[images[i] for i, _ in chunk], text=texts, return_tensors="pt", padding=True)
                batch = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                         for k, v in batch.items() if hasattr(v, "to")}
                lab, _ = self._forward(**batch, use_cache=False)
                first = lab[:, -1, :].cpu().numpy().astype(np.float64)
                continued: list[dict[tuple[int, ...], Any]] = [{} for _ in chunk]
                for c in self.labels.continuations:  # right after the left-padded prompt: no re-padding
                    extra = torch.tensor([list(c[:-1])] * len(chunk), dtype=torch.long, device=self.device)
                    longer = dict(batch, input_ids=torch.cat([batch["input_ids"], extra], dim=1),
                                  attention_mask=torch.cat([batch["attention_mask"], torch.ones_like(extra)], dim=1))
                    lab_c, _ = self._forward(keep=len(c), **longer, use_cache=False)
                    for r in range(len(chunk)):
                        continued[r][c] = lab_c[r].cpu().numpy().astype(np.float64)
                for r, (i, k) in enumerate(chunk):
                    results[i][k] = label_z(first[r], continued[r], self.labels)
        return results

    # ------------------------------------------------------------------------------ results

    def result_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({"model_type": self.model_type, "quantize": self.quantize, "device": self.device},
                {"label_ids": self.labels.to_dict()})

    def nonfinite_reason(self, z_fake: float, z_real: float) -> str:
        return (f"{super().nonfinite_reason(z_fake, z_real)}; the weights, or --quantize {self.quantize} on "
                f"{self.device}, produce them")

    def generate(self, image: Any, prompt: str, callback: StreamCallback | None, max_tokens: int) -> str:
        torch = self._torch
        from transformers import GenerationConfig

        with torch.inference_mode():
            if self.family == "auto":
                batch = self.processor(images=[image], text=[self.render(prompt)], return_tensors="pt")
                kw = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                      for k, v in batch.items() if hasattr(v, "to")}
            else:
                vision, counts = self._vision_inputs([image])
                seq = self._expand(self.prompt_ids(prompt), counts[0])
                ids = torch.tensor([seq], dtype=torch.long, device=self.device)
                kw = {"input_ids": ids, "attention_mask": torch.ones_like(ids), **vision}
                if self.family == "qwen2_vl":
                    kw["mm_token_type_ids"] = (ids == self.image_token_id).int()
            eos = self.tokenizer.eos_token_id
            gen = GenerationConfig(max_new_tokens=max_tokens, do_sample=False, num_beams=1,
                                   eos_token_id=eos, pad_token_id=self.tokenizer.pad_token_id)
            streamer = _Streamer(self.tokenizer, callback)
            out = self.model.generate(**kw, generation_config=gen, streamer=streamer)
            new = out[0, kw["input_ids"].shape[1]:].tolist()
        return self.tokenizer.decode(new, skip_special_tokens=True)

    def identity(self) -> dict[str, Any]:
        return {
            "model": str(self.model_dir),
            "model_type": self.model_type,
            "family": self.family,
            "device": self.device,
            "dtype": str(self.dtype).replace("torch.", ""),
            "quantize": self.quantize,
            "weights_format": self.weights_format,
            "protocol": self.protocol.version,
            "label_ids": self.labels.to_dict(),
        }

