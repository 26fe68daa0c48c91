"""The `gguf` backend: a GGUF text model plus its multimodal projector (`--mmproj`), run by
llama-cpp-python (llama.cpp's libmtmd for the image).

The prompt is rendered with the checkpoint's chat template (from the GGUF, a fakescope.json, or
the matching llama-cpp-python chat handler's own format), the image placeholder is replaced by the
libmtmd media marker, and libmtmd tokenises text and image exactly as llama-cpp-python's chat
handlers do. Scoring is the FakeScope token-based estimation: one prefill, the label words'
log-probabilities where the answer is read, no sampling. The template head and the image are
evaluated once per image and every probe runs from that KV-cache prefix, as one llama.cpp sequence
each (and one more per multi-token label word, holding the word's leading tokens); the cache is
rolled back after each.

llama_cpp is imported when a detector is built, never at module import.
"""

from __future__ import annotations

import codecs
import ctypes
import os
from pathlib import Path
from typing import Any

from fakescope_cli.checkpoints import read_gguf_header, resolve_mmproj
from fakescope_cli.detectors.base import StreamCallback
from fakescope_cli.detectors.multimodal import ImageScores, MultimodalDetector, check_device
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError
from fakescope_cli.protocol import (
    LabelTokens,
    label_z,
    load_protocol,
    log_softmax,
    longest_common_prefix,
    resolve_label_tokens,
)

GGUF_INSTALL_HINT = "pip install 'fakescope[gguf]'  (llama-cpp-python; CMAKE_ARGS=\"-DGGML_CUDA=on\" for NVIDIA GPUs)"

# What chat templates write where the image goes; replaced (once) by libmtmd's media marker.
# Qwen's vision_start/end are written by libmtmd itself around the image, so the whole triple goes.
IMAGE_PLACEHOLDERS = (
    "<|vision_start|><|image_pad|><|vision_end|>",
    "<image>",
    "<|image|>",
    "<start_of_image>",
    "[IMG]",
)
_URL_SENTINEL = "fakescope-image-0"

_quiet_callback: Any = None  # kept alive: llama.cpp holds the C function pointer


def _silence_native_logs(llama_cpp: Any, mtmd: Any) -> None:
    """Route llama.cpp / libmtmd / clip log output to nowhere (their INFO lines go to stderr)."""
    global _quiet_callback
    if _quiet_callback is None:
        _quiet_callback = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_quiet_callback, ctypes.c_void_p(0))
    for name in ("mtmd_log_set", "mtmd_helper_log_set"):
        fn = getattr(mtmd, name, None)
        if fn is not None:
            fn(_quiet_callback, ctypes.c_void_p(0))


def _check_gguf(path: Path, role: str) -> dict[str, Any]:
    if path.is_dir():
        raise DetectorUnavailable(
            f"{path}: --backend gguf needs a .gguf file as {role}; for a checkpoint folder use --backend hf"
        )
    if not path.is_file():
        raise DetectorUnavailable(f"{path}: no such {role} file")
    return read_gguf_header(path)


class GGUFDetector(MultimodalDetector):
    """The FakeScope protocol over `model.gguf` + `mmproj.gguf` with llama-cpp-python."""

    id = "gguf"
    extra = "gguf"
    needs_modules = ("llama_cpp",)

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        mmproj: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        quantize: str | None = None,
        n_gpu_layers: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        batch_size: int = 1,
        attributes: bool = False,
        explain: bool = False,
        max_tokens: int = 256,
        verbose: bool = False,
        trust_pickle: bool = False,  # accepted for a uniform CLI: GGUF holds no pickle
        trust_remote_code: bool = False,  # and no code
    ):
        if model is None:
            raise UsageError("--backend gguf needs --model MODEL.gguf (and --mmproj PROJECTOR.gguf)")
        # Options that do not apply to a GGUF file: the command line's fault (exit 2), as with the
        # server backend, not a model that failed to load.
        if quantize not in (None, "none"):
            raise UsageError(
                "--quantize is for --backend hf; a GGUF file carries its own quantisation (pick a Q4_K_M / Q8_0 file)"
            )
        check_device(device)
        self.model_path = Path(model)
        model_info = _check_gguf(self.model_path, "model")
        # The same rule as `models inspect` (models_inspect.resolve_mmproj): both hash the same files.
        found, how = resolve_mmproj(self.model_path, mmproj)
        if found is None:
            raise DetectorUnavailable(
                f"{self.model_path}: --backend gguf needs the multimodal projector ({how}): --mmproj PROJECTOR.gguf"
            )
        self.mmproj_path = found
        self.mmproj_chosen = how
        mm_info = _check_gguf(self.mmproj_path, "--mmproj")
        model_arch = model_info.get("metadata", {}).get("general.architecture")
        mm_arch = mm_info.get("metadata", {}).get("general.architecture")
        if model_arch == "clip":
            raise DetectorUnavailable(
                f"{self.model_path} is a multimodal projector (clip), not a text model: did you swap --model and --mmproj?"
            )
        if mm_arch is not None and mm_arch != "clip":
            raise DetectorUnavailable(f"{self.mmproj_path} is not a multimodal projector (architecture {mm_arch!r})")
        self.projector_type = str(mm_info.get("metadata", {}).get("clip.projector_type", ""))
        self.architecture = str(model_arch)
        self.dynamic_resolution = self.projector_type.startswith("qwen")
        self.weight_files = (self.model_path, self.mmproj_path)
        self.setup_protocol(load_protocol(self.model_path), attributes=attributes, explain=explain,
                            max_tokens=max_tokens)
        self.batch_size = batch_size  # llama.cpp runs one image at a time; kept for a uniform interface
        self.verbose = verbose

        try:
            import llama_cpp
            import llama_cpp.mtmd_cpp as mtmd
            from llama_cpp import llama_chat_format
        except ImportError as exc:
            raise DetectorUnavailable(
                f"the gguf backend needs llama-cpp-python ({exc.name} is missing): {GGUF_INSTALL_HINT}"
            ) from None
        self._lc, self._mtmd = llama_cpp, mtmd
        if not verbose:
            _silence_native_logs(llama_cpp, mtmd)
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
        if device == "cuda" and not gpu:
            raise DetectorUnavailable(
                "--device cuda: this llama-cpp-python was built without GPU support; reinstall it with "
                "CMAKE_ARGS=\"-DGGML_CUDA=on\" pip install --force-reinstall --no-cache-dir llama-cpp-python"
            )
        if n_gpu_layers is None:
            n_gpu_layers = 0 if device == "cpu" or not gpu else -1  # -1: every layer on the GPU
        self.n_gpu_layers = n_gpu_layers

        # Sequences the probe pass may use at once: the detection prompt and the aspects.
        n_seq = min(len(self.protocol.probes(True)), 64)
        handler_cls = self._handler_class(llama_chat_format)
        try:
            self.handler = handler_cls(clip_model_path=str(self.mmproj_path), verbose=verbose)
            self.llm = llama_cpp.Llama(
                model_path=str(self.model_path), n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, n_threads=n_threads,
                n_threads_batch=n_threads,
                chat_handler=self.handler, verbose=verbose,
            )
            self.handler._init_mtmd_context(self.llm)
            self._enable_parallel_sequences(n_seq)
        except (ValueError, RuntimeError, OSError) as exc:
            raise DetectorUnavailable(f"llama.cpp cannot load {self.model_path.name} + {self.mmproj_path.name}: {exc}") from None
        self.ctx = self.handler.mtmd_ctx
        self.marker = mtmd.mtmd_default_marker().decode("utf-8")
        self.labels: LabelTokens = resolve_label_tokens(
            self.protocol.label_words,
            lambda s: self.llm.tokenize(s.encode("utf-8"), add_bos=False, special=False),
            vocab_size=self.llm.n_vocab(),
        )
        self._label_index = list(self.labels.columns)
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._template_source, self._template = self._pick_template()
        self._rendered: dict[tuple[str, str], str] = {}
        self._tails: dict[str, list[int]] = {}
        name = self.model_path.name
        self.version = f"{self.architecture}:{name}"

    # ------------------------------------------------------------------------------ setup

    def _handler_class(self, chat_format: Any) -> Any:
        """The llama-cpp-python chat handler matching the projector (it owns the mtmd context)."""
        if self.projector_type in ("qwen2vl_merger", "qwen2.5vl_merger", "qwen3vl_merger"):
            return chat_format.Qwen25VLChatHandler
        if self.projector_type in ("mlp", "mlp_norm", "ldp", "ldpv2"):
            return chat_format.Llava15ChatHandler
        return getattr(chat_format, "MTMDChatHandler", chat_format.Llava15ChatHandler)

    def _enable_parallel_sequences(self, n_seq: int) -> None:
        """Swap the Llama object's context for one that holds `n_seq` sequences in a unified KV cache
        (llama-cpp-python creates a single-sequence one), so that all probes can run in one decode,
        each in its own sequence sharing the prefix cells."""
        from llama_cpp import _internals

        lc = self._lc
        n_seq = max(1, min(n_seq, int(lc.llama_max_parallel_sequences())))
        self.n_seq = n_seq
        if n_seq == 1:
            return
        params = self.llm.context_params
        params.n_seq_max = n_seq
        params.kv_unified = True
        new_ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=self.verbose)
        old, self.llm._ctx = self.llm._ctx, new_ctx
        old.close()

    def _pick_template(self) -> tuple[str, str]:
        if self.protocol.chat_template:
            return "manifest", self.protocol.chat_template
        tmpl = self.llm.metadata.get("tokenizer.chat_template")
        if tmpl:
            return "gguf", tmpl
        return "handler", self.handler.CHAT_FORMAT

    # ------------------------------------------------------------------------------ prompts

    def render(self, prompt: str, *, probe: bool = False) -> str:
        """Text for one image + prompt with libmtmd's media marker in the image's place: the chat
        template (or the raw format), then for a probe the manifest's answer prefix (rendered once per
        prompt: compiling the template costs more than a tiny model's forward pass)."""
        key = (prompt, self.answer_prefix(probe))
        cached = self._rendered.get(key)
        if cached is None:
            text = self.marker + prompt if self.protocol.prompt_format == "raw" else self._render(prompt)
            cached = text + key[1]
            if self._reasoning is None:  # a marker-mode answer is the image's own: not kept
                self._rendered[key] = cached
        return cached

    def _render(self, prompt: str) -> str:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=self._template_source == "handler",
                                            lstrip_blocks=self._template_source == "handler")
        if self._template_source == "handler":  # llama-cpp-python's own format: OpenAI-style messages
            msgs = self.chat_messages(prompt, {"type": "image_url", "image_url": {"url": _URL_SENTINEL}},
                                      system=getattr(self.handler, "DEFAULT_SYSTEM_MESSAGE", None), plain_system=True)
        else:
            msgs = self.chat_messages(prompt, {"type": "image"})
        bos = self.llm.detokenize([self.llm.token_bos()]).decode("utf-8", "replace") if self.llm.token_bos() >= 0 else ""
        eos = self.llm.detokenize([self.llm.token_eos()]).decode("utf-8", "replace")
        text = env.from_string(self._template).render(messages=msgs, add_generation_prompt=True,
                                                     bos_token=bos, eos_token=eos)
        if self._template_source == "handler":
            return text.replace(_URL_SENTINEL, self.marker, 1)
        for ph in IMAGE_PLACEHOLDERS:
            if ph in text:
                return text.replace(ph, self.marker, 1)
        raise DetectorUnavailable("the chat template does not place the image (no known image placeholder)")

    # ------------------------------------------------------------------------------ images

    def _tokenize(self, text: str, bitmap: Any) -> Any:
        mtmd = self._mtmd
        inp = mtmd.mtmd_input_text()
        raw = text.encode("utf-8")
        inp.text, inp.text_len, inp.add_special, inp.parse_special = raw, len(raw), True, True
        chunks = mtmd.mtmd_input_chunks_init()
        if chunks is None:
            raise DetectorUnavailable("libmtmd could not allocate input chunks")
        arr = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
        rc = mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(inp), arr, 1)
        if rc != 0:
            mtmd.mtmd_input_chunks_free(chunks)
            raise InputError(f"libmtmd could not tokenise the image (error {rc})", "detector-error")
        return chunks

    def _chunk_list(self, chunks: Any) -> list[tuple[str, Any]]:
        """[('text', [ids]) | ('image', chunk)] in order."""
        mtmd = self._mtmd
        out: list[tuple[str, Any]] = []
        for i in range(mtmd.mtmd_input_chunks_size(chunks)):
            ch = mtmd.mtmd_input_chunks_get(chunks, i)
            if mtmd.mtmd_input_chunk_get_type(ch) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                n = ctypes.c_size_t()
                ptr = mtmd.mtmd_input_chunk_get_tokens_text(ch, ctypes.byref(n))
                out.append(("text", [int(ptr[j]) for j in range(n.value)]))
            else:
                out.append(("image", ch))
        return out

    # ------------------------------------------------------------------------------ evaluation

    def _eval_text(self, tokens: list[int]) -> None:
        if not tokens:
            return
        if self.llm.n_tokens + len(tokens) > self.llm.n_ctx():
            raise InputError(f"prompt exceeds the context ({self.llm.n_ctx()} tokens); raise n_ctx", "detector-error")
        self.stats["forward_passes"] += 1
        self.llm.eval(tokens)

    def _eval_image(self, chunk: Any) -> None:
        lc, mtmd = self._lc, self._mtmd
        n = mtmd.mtmd_input_chunk_get_n_tokens(chunk)
        if self.llm.n_tokens + n > self.llm.n_ctx():
            raise InputError(f"image needs {n} tokens, over the context ({self.llm.n_ctx()}); raise n_ctx", "detector-error")
        new_past = lc.llama_pos(0)
        rc = mtmd.mtmd_helper_eval_chunk_single(
            self.ctx, self.llm._ctx.ctx, chunk, lc.llama_pos(self.llm.n_tokens), lc.llama_seq_id(0),
            self.llm.n_batch, False, ctypes.byref(new_past),
        )
        if rc != 0:
            raise InputError(f"llama.cpp could not encode the image (error {rc})", "detector-error")
        self.stats["vision_calls"] += 1
        self.stats["vision_images"] += 1
        # M-RoPE models advance positions by the image's extent, not its token count.
        self.llm.n_tokens = new_past.value

    def _last_logits(self) -> Any:
        import numpy as np

        ptr = self._lc.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.llm.n_vocab(),)).copy()

    def _split(self, parsed: list[tuple[str, Any]]) -> tuple[int, list[int]]:
        """Index of the last image chunk, and the text tokens after it (where the probes differ)."""
        kinds = [k for k, _ in parsed]
        if "image" not in kinds:
            raise DetectorUnavailable("the rendered prompt holds no image")
        last = len(kinds) - 1 - kinds[::-1].index("image")
        return last, [t for k, v in parsed[last + 1:] if k == "text" for t in v]

    def _eval_prompt_prefix(self, image: Any, prompts: list[str], *, probe: bool) -> list[list[int]]:
        """Evaluate what the prompts share (template head, image, common text) into sequence 0 of
        the KV cache; return each prompt's remaining tokens.

        libmtmd tokenises the first prompt with the image. The other prompts' text after the image
        does not depend on the image, so it is tokenised once per detector (with the first image
        seen) and reused; each image re-checks the first prompt's tail against that cache.
        """
        mtmd = self._mtmd
        data = image.tobytes()
        bitmap = mtmd.mtmd_bitmap_init(image.width, image.height, (ctypes.c_uint8 * len(data)).from_buffer(bytearray(data)))
        if bitmap is None:
            raise InputError("libmtmd could not take the image", "detector-error")
        all_chunks = []
        texts = [self.render(p, probe=probe) for p in prompts]
        try:
            first = self._tokenize(texts[0], bitmap)
            all_chunks.append(first)
            parsed = self._chunk_list(first)
            last_img, tail0 = self._split(parsed)
            cached = self._tails.get(texts[0])
            if cached is not None and cached != tail0:
                self._tails.clear()  # the text after the image changed with the image: no reuse
            self._tails[texts[0]] = tail0
            for p in texts[1:]:
                if p not in self._tails:
                    ch = self._tokenize(p, bitmap)
                    all_chunks.append(ch)
                    other = self._chunk_list(ch)
                    o_last, o_tail = self._split(other)
                    heads_differ = o_last != last_img or any(
                        a[0] != b[0] or (a[0] == "text" and a[1] != b[1]) for a, b in zip(other[:o_last], parsed[:last_img], strict=True))
                    if heads_differ:
                        raise DetectorUnavailable("the probe prompts differ before the image; cannot share a prefix")
                    self._tails[p] = o_tail
            tails = [self._tails[t] for t in texts]
            common = min(longest_common_prefix(tails), min(len(t) for t in tails) - 1)
            if common < 0:
                raise DetectorUnavailable("the chat template leaves no text after the image to read an answer from")
            self.llm.reset()
            self.llm._ctx.kv_cache_clear()
            for kind, val in parsed[: last_img + 1]:
                if kind == "text":
                    self._eval_text(val)
                else:
                    self._eval_image(val)
            self._eval_text(tails[0][:common])
            return [t[common:] for t in tails]
        finally:
            if self._reasoning is not None:  # a marker-mode answer is the image's own: not kept
                for t in texts:
                    self._tails.pop(t, None)
            for ch in all_chunks:
                mtmd.mtmd_input_chunks_free(ch)
            mtmd.mtmd_bitmap_free(bitmap)

    def _label_logprobs(self, ptr: Any) -> Any:
        """The label tokens' log-probabilities (log-softmax over the whole vocabulary) of one logits row."""
        import numpy as np

        return log_softmax(np.ctypeslib.as_array(ptr, shape=(self.llm.n_vocab(),)))[self._label_index]

    def _probe_pass(self, suffixes: list[list[int]], reads: list[int], prefix_len: int) -> list[Any]:
        """Run every segment's remaining tokens in one llama_decode, segment k in sequence k, each
        sequence sharing the prefix cells of sequence 0; return, per segment, the label tokens'
        log-probabilities at its last `reads[k]` positions (rows, columns)."""
        import numpy as np

        lc = self._lc
        mem = self.llm._ctx.memory
        rows: list[Any] = []
        for g0 in range(0, len(suffixes), self.n_seq):
            group = suffixes[g0: g0 + self.n_seq]
            group_reads = reads[g0: g0 + self.n_seq]
            total = sum(len(s) for s in group)
            if prefix_len + max(len(s) for s in group) > self.llm.n_ctx() or total > self.llm.n_batch:
                for s, n_read in zip(group, group_reads, strict=True):  # too long for one batch: one at a time
                    self.llm.n_tokens = prefix_len
                    self._eval_text(s[: len(s) - n_read + 1])
                    seg = [log_softmax(self._last_logits())[self._label_index]]
                    for tok in s[len(s) - n_read + 1:]:  # a label word's later tokens, one by one
                        self._eval_text([tok])
                        seg.append(log_softmax(self._last_logits())[self._label_index])
                    rows.append(np.array(seg))
                continue
            for k in range(1, len(group)):
                lc.llama_memory_seq_cp(mem, 0, k, 0, prefix_len)
            batch = lc.llama_batch_init(total, 0, len(group))
            try:
                kept: list[list[int]] = []
                i = 0
                for k, (s, n_read) in enumerate(zip(group, group_reads, strict=True)):
                    kept.append([])
                    for j, tok in enumerate(s):
                        batch.token[i], batch.pos[i] = tok, prefix_len + j
                        batch.n_seq_id[i], batch.seq_id[i][0] = 1, k
                        batch.logits[i] = j >= len(s) - n_read
                        if batch.logits[i]:
                            kept[-1].append(i)
                        i += 1
                batch.n_tokens = total
                self.stats["forward_passes"] += 1
                rc = lc.llama_decode(self.llm._ctx.ctx, batch)
                if rc != 0:
                    raise InputError(f"llama.cpp decode failed (error {rc})", "detector-error")
                for idxs in kept:
                    rows.append(np.array([self._label_logprobs(lc.llama_get_logits_ith(self.llm._ctx.ctx, idx))
                                          for idx in idxs]))
            finally:
                lc.llama_batch_free(batch)
                for k in range(1, len(group)):
                    lc.llama_memory_seq_rm(mem, k, -1, -1)
                lc.llama_memory_seq_rm(mem, 0, prefix_len, -1)
        self.llm.n_tokens = prefix_len
        return rows

    def _score_image(self, image: Any, probes: list[tuple[str, str]]) -> list[tuple[float, float]]:
        """Each probe's remaining tokens as one segment, and again followed by each multi-token label
        word's leading tokens (whose positions give that word's later tokens)."""
        suffixes = self._eval_prompt_prefix(image, [p for _, p in probes], probe=True)
        prefix_len = self.llm.n_tokens
        conts = self.labels.continuations
        segments = [(k, c, s + list(c[:-1])) for k, s in enumerate(suffixes) for c in ((), *conts)]
        rows = self._probe_pass([s for _, _, s in segments], [max(1, len(c)) for _, c, _ in segments], prefix_len)
        first: dict[int, Any] = {}
        continued: dict[int, dict[tuple[int, ...], Any]] = {k: {} for k in range(len(probes))}
        for (k, c, _), r in zip(segments, rows, strict=True):
            if c:
                continued[k][c] = r
            else:
                first[k] = r[-1]
        return [label_z(first[k], continued[k], self.labels) for k in range(len(probes))]

    def score_images(self, images: list[Any], probes: list[tuple[str, str]]) -> list[ImageScores]:
        """One image after another: llama.cpp here runs one image's probes per decode."""
        return [ImageScores(self._score_image(image, probes)) for image in images]

    # ------------------------------------------------------------------------------ results

    def result_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({"architecture": self.architecture, "projector_type": self.projector_type,
                 "n_gpu_layers": self.n_gpu_layers}, {"label_ids": self.labels.to_dict()})

    def generate(self, image: Any, prompt: str, callback: StreamCallback | None, max_tokens: int) -> str:
        """Greedy decoding (argmax of the logits, no sampler): deterministic, like the hf backend."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces: list[str] = []
        suffixes = self._eval_prompt_prefix(image, [prompt], probe=False)
        self._eval_text(suffixes[0])
        for _ in range(max_tokens):
            tok = int(self._last_logits().argmax())
            if self._lc.llama_vocab_is_eog(self._vocab, tok):
                break
            text = decoder.decode(self.llm.detokenize([tok], special=False))
            if text:
                pieces.append(text)
                if callback is not None:
                    callback(text)
            self._eval_text([tok])
        tail = decoder.decode(b"", final=True)
        if tail:
            pieces.append(tail)
            if callback is not None:
                callback(tail)
        return "".join(pieces)

    def identity(self) -> dict[str, Any]:
        return {
            "model": str(self.model_path),
            "mmproj": str(self.mmproj_path),
            "architecture": self.architecture,
            "projector_type": self.projector_type,
            "n_gpu_layers": self.n_gpu_layers,
            "chat_template": self._template_source,
            "protocol": self.protocol.version,
            "label_ids": self.labels.to_dict(),
        }
