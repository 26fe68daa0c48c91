"""`fakescope data import`: public forensic datasets -> the instruction JSONL `train lmm` reads
(docs/instruct-format.md).

Each layout's labels are mapped by an explicit table, never guessed from a word in a file name:

  fakeclue  FakeClue (FakeVLM's training data): a JSON array (or JSONL) of LLaVA-style records
            {image, conversations, label, cate}; label 0 = fake, 1 = real.
  mmfr      MMFR-Dataset (FakeReasoning): LLaVA-style records whose answer reasons first and ends
            with <CONCLUSION>This image is fake.</CONCLUSION>; the label is the conclusion's word.
  openfake  OpenFake: parquet with columns image (bytes or {bytes, path}), prompt, label
            ("real" / "fake"), model (the generator).
  sid_set   SID_Set (SIDA): parquet with img_id, image, mask, label: 0 real, 1 full synthetic,
            2 tampered (both fake); masks are written beside the images and named in meta.

`--answer word` (default) writes the FakeScope detection record: the protocol's detection prompt
(or the manifest's) answered with the label word, which the first-token reading scores. `--answer
original` keeps a conversational dataset's own prompt and answer (FakeVLM's "This is a fake image.
…", FakeReasoning's reasoning chain): a model trained on that must be read with its preset's answer
prefix or marker, not the first token.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fakescope_cli.errors import UsageError
from fakescope_cli.protocol import load_protocol

from .instruct import IMAGE_TOKEN

LAYOUTS = ("fakeclue", "mmfr", "openfake", "sid_set")
ANSWERS = ("word", "original")

FAKECLUE_LABELS = {0: "fake", 1: "real"}
OPENFAKE_LABELS = {"fake": "fake", "real": "real"}
SID_SET_LABELS = {0: ("real", "real"), 1: ("fake", "full synthetic"), 2: ("fake", "tampered")}
CONCLUSION_RE = re.compile(r"<CONCLUSION>(.*?)</CONCLUSION>", re.S | re.I)
LABEL_WORD_RE = re.compile(r"\b(fake|real)\b", re.I)


class Skip(Exception):
    """One source record that cannot be imported; the reason is counted, the import goes on."""


def import_dataset(layout: str, source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                   answer: str = "word", image_root: str | os.PathLike[str] | None = None,
                   manifest: str | os.PathLike[str] | None = None, absolute_paths: bool = False,
                   limit: int | None = None, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Convert `source` in `layout` into instruction JSONL at `output`; returns counts."""
    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if answer not in ANSWERS:
        raise UsageError(f"--answer must be one of {', '.join(ANSWERS)}, not {answer!r}")
    if answer == "original" and layout in ("openfake", "sid_set"):
        raise UsageError(f"--answer original: {layout} has no answer text; use --answer word")
    src = Path(source)
    if not src.is_file():
        raise UsageError(f"{src}: no such file")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    prompt = load_protocol(manifest).detect_prompt if manifest else load_protocol(None).detect_prompt
    ctx = _Context(src=src, out=out, image_root=Path(image_root) if image_root else src.parent,
                   absolute=absolute_paths, answer=answer, prompt=prompt, layout=layout)
    reader = {"fakeclue": _fakeclue, "mmfr": _mmfr, "openfake": _openfake, "sid_set": _sid_set}[layout]
    labels: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    written = 0
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for n, item in enumerate(reader(ctx), 1):
            if limit is not None and n > limit:
                break
            if isinstance(item, Skip):
                skipped[str(item)] += 1
                continue
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            written += 1
            labels[item["label"]] += 1
            classes[item["meta"].get("class", item["label"])] += 1
    if written == 0:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{src}: no record could be imported as {layout} ({dict(skipped) or 'empty'})")
    os.replace(tmp, out)
    for why, count in skipped.items():
        log(f"skipped {count}: {why}")
    return {"layout": layout, "answer": answer, "records": written, "labels": dict(sorted(labels.items())),
            "classes": dict(sorted(classes.items())), "skipped": dict(sorted(skipped.items())), "output": str(out)}


class _Context:
    def __init__(self, *, src: Path, out: Path, image_root: Path, absolute: bool, answer: str, prompt: str,
                 layout: str):
        self.src, self.out, self.image_root, self.absolute = src, out, image_root, absolute
        self.answer, self.prompt, self.layout = answer, prompt, layout
        self.images_dir = out.parent / f"{out.stem}_images"

    def image_ref(self, path: Path) -> str:
        return str(path.resolve()) if self.absolute else os.path.relpath(path.resolve(), self.out.parent.resolve())

    def record(self, image: Path, label: str, ident: str, *, turns: list[dict[str, str]] | None = None,
               meta: dict[str, Any]) -> dict[str, Any]:
        ref = self.image_ref(image)
        if turns is None:
            turns = [{"from": "human", "value": f"{IMAGE_TOKEN}\n{self.prompt}"}, {"from": "gpt", "value": label}]
        digest = hashlib.sha256(ref.encode()).hexdigest()[:16]
        return {"id": f"{digest}-{self.layout}-{ident}", "image": ref, "conversations": turns, "task": "detect",
                "label": label, "meta": {"dataset": self.layout, **meta}}


# ---------------------------------------------------------------------------------- JSON layouts


def _json_rows(src: Path) -> Iterator[tuple[int, Any]]:
    text = src.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            yield from enumerate(json.loads(text), 1)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{src}: not valid JSON: {exc}") from None
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{src}:{n}: not valid JSON: {exc}") from None


def _llava_parts(ctx: _Context, n: int, row: Any) -> tuple[Path, list[dict[str, str]]]:
    if not isinstance(row, dict) or not isinstance(row.get("image"), str):
        raise Skip("a record without an 'image' path")
    image = Path(row["image"])
    image = image if image.is_absolute() else ctx.image_root / image
    if not image.is_file():
        raise Skip("image file not found")
    conv = row.get("conversations")
    if not isinstance(conv, list) or len(conv) < 2 or not all(isinstance(t, dict) for t in conv):
        raise Skip("no conversation")
    turns = [{"from": str(t.get("from")), "value": str(t.get("value", ""))} for t in conv]
    if turns[0]["from"] != "human" or turns[-1]["from"] != "gpt":
        raise Skip("a conversation that does not go human ... gpt")
    # One image placeholder, in the first human turn (FakeClue writes '<image>' without a newline).
    for t in turns:
        t["value"] = t["value"].replace(IMAGE_TOKEN, "").strip()
    turns[0]["value"] = f"{IMAGE_TOKEN}\n{turns[0]['value']}"
    return image, turns


def _answer_word(text: str) -> str | None:
    words = {w.lower() for w in LABEL_WORD_RE.findall(text)}
    return words.pop() if len(words) == 1 else None


def _fakeclue(ctx: _Context) -> Iterator[dict[str, Any] | Skip]:
    for n, row in _json_rows(ctx.src):
        try:
            image, turns = _llava_parts(ctx, n, row)
            raw = row.get("label")
            if isinstance(raw, bool) or raw not in FAKECLUE_LABELS:
                raise Skip(f"label not 0 (fake) or 1 (real): {raw!r}")
            label = FAKECLUE_LABELS[raw]
            first_sentence = turns[-1]["value"].split(".")[0]
            said = _answer_word(first_sentence)
            if said is not None and said != label:
                raise Skip("the answer text contradicts the label")
            meta = {"source_label": raw, "cate": row.get("cate")}
            yield ctx.record(image, label, str(n), turns=turns if ctx.answer == "original" else None, meta=meta)
        except Skip as skip:
            yield skip


def _mmfr(ctx: _Context) -> Iterator[dict[str, Any] | Skip]:
    for n, row in _json_rows(ctx.src):
        try:
            image, turns = _llava_parts(ctx, n, row)
            found = CONCLUSION_RE.findall(turns[-1]["value"])
            if not found:
                raise Skip("no <CONCLUSION>...</CONCLUSION> in the answer")
            label = _answer_word(found[-1])
            if label is None:
                raise Skip("the conclusion names neither fake nor real")
            meta = {"conclusion": found[-1].strip()}
            yield ctx.record(image, label, str(n), turns=turns if ctx.answer == "original" else None, meta=meta)
        except Skip as skip:
            yield skip


# ---------------------------------------------------------------------------------- parquet layouts


def _parquet_rows(src: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("reading parquet needs pyarrow: pip install 'fakescope[train]' (or pip install pyarrow)") from None
    try:
        table = pq.ParquetFile(src)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a file that is not parquet
        raise UsageError(f"{src}: not a parquet file: {exc}") from None
    for batch in table.iter_batches(batch_size=64):
        yield from batch.to_pylist()


def _image_bytes(value: Any) -> tuple[bytes, str] | None:
    """(bytes, suffix) of a datasets-style image cell: raw bytes or {bytes, path}."""
    name = ""
    if isinstance(value, dict):
        name = str(value.get("path") or "")
        value = value.get("bytes")
    if not isinstance(value, (bytes, bytearray)) or not value:
        return None
    data = bytes(value)
    suffix = Path(name).suffix.lower() if Path(name).suffix else _sniff_suffix(data)
    return data, suffix


def _sniff_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"


def _write_image(ctx: _Context, name: str, cell: Any) -> Path | None:
    found = _image_bytes(cell)
    if found is None:
        return None
    data, suffix = found
    ctx.images_dir.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)[:120] or "image"
    path = ctx.images_dir / f"{safe}{suffix}"
    path.write_bytes(data)
    return path


def _openfake(ctx: _Context) -> Iterator[dict[str, Any] | Skip]:
    for n, row in enumerate(_parquet_rows(ctx.src), 1):
        raw = row.get("label")
        label = OPENFAKE_LABELS.get(raw.strip().lower()) if isinstance(raw, str) else None
        if label is None:
            yield Skip(f"label not 'real' or 'fake': {raw!r}")
            continue
        image = _write_image(ctx, f"{n:07d}", row.get("image"))
        if image is None:
            yield Skip("no image bytes")
            continue
        meta = {"source_label": raw, "generator": row.get("model"), "prompt": row.get("prompt")}
        yield ctx.record(image, label, str(n), meta=meta)


def _sid_set(ctx: _Context) -> Iterator[dict[str, Any] | Skip]:
    for n, row in enumerate(_parquet_rows(ctx.src), 1):
        raw = row.get("label")
        if isinstance(raw, bool) or raw not in SID_SET_LABELS:
            yield Skip(f"label not 0 (real), 1 (full synthetic) or 2 (tampered): {raw!r}")
            continue
        label, cls = SID_SET_LABELS[raw]
        ident = str(row.get("img_id") or f"{n:07d}")
        image = _write_image(ctx, ident, row.get("image"))
        if image is None:
            yield Skip("no image bytes")
            continue
        meta: dict[str, Any] = {"source_label": raw, "class": cls}
        mask = _write_image(ctx, f"{ident}.mask", row.get("mask"))
        if mask is not None:
            meta["mask"] = ctx.image_ref(mask)
        yield ctx.record(image, label, ident, meta=meta)
