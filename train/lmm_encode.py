"""What `fakescope train lmm` feeds the model: one conversation as token ids, labels and pixel tensors,
tokenised exactly as the hf backend tokenises a scan prompt, batched, and the loss on the answer tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakescope_cli.errors import UsageError

IGNORE = -100  # label of a token that carries no loss (prompt, image, padding)


def family_of(model_type: str) -> str:
    from fakescope_cli.checkpoints import KNOWN_ARCHITECTURES, TRAINABLE_MODEL_TYPES

    known = KNOWN_ARCHITECTURES.get(model_type)
    if known is None or model_type not in TRAINABLE_MODEL_TYPES:
        supported = ", ".join(sorted(TRAINABLE_MODEL_TYPES))
        raise UsageError(f"model type {model_type!r}: fakescope train lmm supports {supported}")
    return known[0]


class Encoder:
    """Turns one conversation into token ids, labels and pixel tensors, tokenising prompts exactly as
    `fakescope_cli.detectors.hf.HFDetector` does (template, BOS rule, image-token expansion)."""

    def __init__(self, base: Path, family: str, config: Any, max_length: int):
        import transformers
        from transformers.models.auto.image_processing_auto import AutoImageProcessor

        from fakescope_cli.protocol import load_protocol

        self.family, self.config, self.max_length = family, config, max_length
        self.protocol = load_protocol(base)
        kw: dict[str, Any] = {"local_files_only": True}
        processor = None
        try:
            processor = transformers.AutoProcessor.from_pretrained(base, **kw)
        except Exception:  # noqa: BLE001 - e.g. Qwen2-VL's processor wants torchvision: load the parts
            processor = None
        tok = getattr(processor, "tokenizer", None) or transformers.AutoTokenizer.from_pretrained(base, **kw)
        improc = getattr(processor, "image_processor", None) or AutoImageProcessor.from_pretrained(base, **kw)
        template = (self.protocol.chat_template or getattr(processor, "chat_template", None)
                    or getattr(tok, "chat_template", None))
        if not template and (base / "chat_template.jinja").is_file():
            template = (base / "chat_template.jinja").read_text(encoding="utf-8")
        if not template and self.protocol.prompt_format == "chat":
            raise UsageError(f"{base}: no chat template (tokenizer_config.json / chat_template.jinja)")
        self.tokenizer, self.image_processor, self.template = tok, improc, template
        itok = getattr(config, "image_token_id", None)
        if itok is None:
            itok = getattr(config, "image_token_index", None)
        if itok is None:
            raise UsageError(f"{base}: config.json has no image_token_id")
        self.image_token_id = int(itok)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def _render(self, messages: list[dict[str, Any]], generation: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=generation)

    def _encode(self, text: str, first: bool) -> list[int]:
        bos = self.tokenizer.bos_token
        add = first and not (bos and text.startswith(bos))  # hf backend's rule: the template may write BOS
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    def messages(self, turns: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        if turns[0][0] != "system" and self.protocol.system_prompt:
            msgs.append({"role": "system", "content": [{"type": "text", "text": self.protocol.system_prompt}]})
        for role, text in turns:
            if role == "user" and "<image>" in text:
                clean = text.replace("<image>\n", "").replace("\n<image>", "").replace("<image>", "").strip()
                content = [{"type": "image"}, {"type": "text", "text": clean}]
            else:
                content = [{"type": "text", "text": text}]
            msgs.append({"role": role, "content": content})
        return msgs

    def raw_text_ids(self, turns: tuple[tuple[str, str], ...]) -> tuple[list[int], list[int]]:
        """`prompt_format: raw` (the checkpoint's manifest): the image placeholder then the prompt, no
        template, as the hf backend renders it; the answer follows at once and ends with EOS."""
        body = [t for t in turns if t[0] != "system"]
        if len(body) != 2:
            raise UsageError("prompt_format raw trains one question and one answer per record (no template "
                             "to separate more turns)")
        clean = body[0][1].replace("<image>\n", "").replace("\n<image>", "").replace("<image>", "").strip()
        token = self.tokenizer.convert_ids_to_tokens(self.image_token_id)
        image = f"<|vision_start|>{token}<|vision_end|>" if self.family == "qwen2_vl" else token
        head = self._encode(image + clean, first=True)
        answer = self._encode(body[1][1], first=False) + [int(self.tokenizer.eos_token_id)]
        return head + answer, [IGNORE] * len(head) + answer

    def text_ids(self, turns: tuple[tuple[str, str], ...]) -> tuple[list[int], list[int]]:
        """(ids, labels) with ONE image placeholder; labels are IGNORE outside assistant turns."""
        if self.protocol.prompt_format == "raw":
            return self.raw_text_ids(turns)
        msgs = self.messages(turns)
        ids: list[int] = []
        labels: list[int] = []
        done = ""
        for j, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            prompt = self._render(msgs[:j], generation=True)
            full = self._render(msgs[: j + 1], generation=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise UsageError("the chat template does not render a conversation as prompt + answer; "
                                 "give a chat_template in fakescope.json that does")
            head = self._encode(prompt[len(done):], first=not ids)
            answer = self._encode(full[len(prompt):], first=False)
            ids += head + answer
            labels += [IGNORE] * len(head) + answer
            done = full
        if ids.count(self.image_token_id) != 1:
            raise UsageError(f"the rendered conversation holds {ids.count(self.image_token_id)} image "
                             "placeholders; exactly one is supported")
        return ids, labels

    def prepare_image(self, path: Path) -> Any:
        """The image as the hf backend will score it (the same sizing: what is trained is what is scanned)."""
        from fakescope_cli.detectors.multimodal import fit_image, pixel_limit
        from fakescope_cli.media import Media

        limit = pixel_limit(self.protocol.max_image_pixels, dynamic_resolution=self.family == "qwen2_vl")
        return fit_image(Media.open(path).rgb(), limit)

    def encode(self, conv: Any) -> dict[str, Any]:
        ids, labels = self.text_ids(conv.turns)
        out = self.image_processor(images=[self.prepare_image(conv.image)], return_tensors="pt")
        item: dict[str, Any] = {}
        if self.family == "qwen2_vl":
            grid = out["image_grid_thw"]
            merge = int(self.config.vision_config.spatial_merge_size)
            n = int(grid[0].prod()) // (merge * merge)
            item["pixel_values"], item["image_grid_thw"] = out["pixel_values"], grid
        else:
            pv = out["pixel_values"]
            patch = int(self.config.vision_config.patch_size)
            n = (pv.shape[-2] // patch) * (pv.shape[-1] // patch)
            if getattr(self.config, "vision_feature_select_strategy", "default") == "full":
                n += 1
            item["pixel_values"] = pv
        i = ids.index(self.image_token_id)
        ids = ids[:i] + [self.image_token_id] * n + ids[i + 1:]
        labels = labels[:i] + [IGNORE] * n + labels[i + 1:]
        if len(ids) > self.max_length:
            if i + n >= self.max_length:
                raise UsageError(f"{conv.image}: {n} image tokens do not fit --max-length {self.max_length}")
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        item["input_ids"], item["labels"] = ids, labels
        return item


def collate(batch: list[dict[str, Any]], pad_id: int, image_token_id: int, family: str) -> dict[str, Any]:
    """Right-padded ids/labels/mask, pixel tensors stacked (LLaVA) or concatenated (Qwen2-VL)."""
    import torch

    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), int(pad_id), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[r, :n] = torch.tensor(b["input_ids"])
        labels[r, :n] = torch.tensor(b["labels"])
        mask[r, :n] = 1
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if family == "qwen2_vl":
        out["pixel_values"] = torch.cat([b["pixel_values"] for b in batch], dim=0)
        out["image_grid_thw"] = torch.cat([b["image_grid_thw"] for b in batch], dim=0)
        out["mm_token_type_ids"] = (ids == image_token_id).int()
    else:
        out["pixel_values"] = torch.cat([b["pixel_values"] for b in batch], dim=0)
    return out


def sft_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Token-mean cross-entropy over assistant tokens only; logits are computed only at the
    positions that predict a supervised token (the vocabulary projection dominates memory)."""
    import torch
    import torch.nn.functional as F

    labels = batch.pop("labels")
    sup = labels[:, 1:] != IGNORE
    pos = sup.any(dim=0).nonzero().squeeze(1)
    if pos.numel() == 0:  # every answer truncated away: a zero loss that still touches the graph
        pos = torch.tensor([0], device=labels.device)
    out = model(**batch, logits_to_keep=pos, use_cache=False)
    logits = out.logits.float()
    target = labels[:, pos + 1]
    n = int((target != IGNORE).sum())
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE,
                           reduction="sum") / max(n, 1)
    return loss, n
