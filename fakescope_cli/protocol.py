"""The FakeScope protocol for multimodal backends: prompts, label words, the 14 aspects, the
checkpoint manifest (`fakescope.json`) and the token-based probability arithmetic.

Pure Python + numpy: importable without torch, transformers or llama_cpp, so that the hf and gguf
backends (and the tests) share one definition of what is asked and how the answer is scored.

Token-based probability estimation (DESIGN.md): after the prompt and the chat template (and the
manifest's answer prefix, or the model's own answer up to its marker), the answer is read once (no
sampling). `z_fake` is the log-sum-exp of the log-probabilities of the "fake" label words (variants
`fake`, ` fake`, `Fake`, ` Fake`, or the manifest's, several classes and several tokens each: a
word's log-probability is the sum over its tokens, `label_z`), `z_real` likewise, and
`p_fake = exp(z_fake) / (exp(z_fake) + exp(z_real))`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope_cli.errors import DetectorUnavailable
from fakescope_cli.record import PROTOCOL_VERSION

MANIFEST_NAME = "fakescope.json"
MANIFEST_SCHEMA = "fakescope-manifest/1"
MANIFEST_MAX_BYTES = 1 << 20  # a manifest is a few KB; refuse anything absurd before parsing

# FakeBench-style prompts (the paper's own are unpublished; DESIGN.md).
DETECT_PROMPT = "What is the authenticity of this image, fake or real?"
ATTRIBUTE_TEMPLATE = "Judging only by its {aspect}, is this image fake or real?"
EXPLAIN_PROMPT = (
    "Is this image real or fake? Examine its texture, edges, lighting and shadows, perspective, "
    "shapes and details, explain your reasoning step by step, and end your answer with exactly "
    "'this image is fake' or 'this image is real'."
)
ADVISE_PROMPT = (
    "What in this image betrays whether it is a real photograph or was generated or edited by AI? "
    "Point to the specific details, and say how someone could verify its authenticity further "
    "(for example: sources, metadata, reverse image search, other photos of the same scene)."
)

# The 14 aspects of DESIGN.md, in its order. Keys are stable (records and CSV columns use them).
ASPECTS: tuple[str, ...] = (
    "texture",
    "edge",
    "clarity",
    "light and shadow",
    "layout",
    "symmetry",
    "reflection",
    "perspective",
    "shape",
    "theme",
    "content deficiency",
    "distortion",
    "unrealistic details",
    "overall tone",
)

LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "fake": ("fake", " fake", "Fake", " Fake"),
    "real": ("real", " real", "Real", " Real"),
}


class ManifestError(DetectorUnavailable):
    """A `fakescope.json` that cannot be used; the message names the file and the field."""

    code = "detector-unavailable"


@dataclass(frozen=True)
class Calibration:
    """Maps the label-logit margin to a probability: p = sigmoid(a * (z_fake - z_real) + b).

    The identity (a=1, b=0) is exactly the two-way softmax of DESIGN.md. Platt scaling fits a and b;
    temperature scaling is a = 1/T, b = 0.
    """

    method: str = "none"
    a: float = 1.0
    b: float = 0.0

    def apply(self, margin: np.ndarray) -> np.ndarray:
        return sigmoid(self.a * np.asarray(margin, dtype=np.float64) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class PromptProtocol:
    """What is asked of a checkpoint and how its answer is read. Defaults follow DESIGN.md."""

    detect_prompt: str = DETECT_PROMPT
    attribute_template: str = ATTRIBUTE_TEMPLATE
    # (key, prompt) per aspect; the key is what records show.
    attributes: tuple[tuple[str, str], ...] = tuple(
        (a, ATTRIBUTE_TEMPLATE.format(aspect=a)) for a in ASPECTS
    )
    label_words: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(LABEL_WORDS))
    explain_prompt: str = EXPLAIN_PROMPT
    advise_prompt: str = ADVISE_PROMPT
    system_prompt: str | None = None
    chat_template: str | None = None  # overrides the checkpoint's own template
    max_image_pixels: int | None = None  # downscale larger images first (dynamic-resolution models)
    # Text forced into the answer before the label is read, for checkpoints trained to answer in a
    # sentence ("This is a fake image."): the label word's logits are read after "This is a".
    answer_prefix: str | None = None
    # "chat": the chat template; "raw": the image placeholder then the prompt, no template (how some
    # checkpoints were trained and evaluated, e.g. FakeVLM's `<image>Does the image looks real/fake?`).
    prompt_format: str = "chat"
    # Marker mode, for checkpoints that reason before they answer: generate greedily (at most
    # marker_max_tokens) until this text appears, then read the label right after it.
    answer_marker: str | None = None
    marker_max_tokens: int = 512
    calibration: Calibration = Calibration()
    manifest_path: str | None = None
    manifest_sha256: str | None = None
    # The manifest's pin of the weights (sha256 over the weight files, as `models inspect` prints it).
    weights_sha256: str | None = None

    def verify_weights(self, actual: str | None) -> None:
        """Refuse weights that differ from the manifest's pin (a swapped or corrupted file)."""
        if self.weights_sha256 is not None and actual != self.weights_sha256:
            raise ManifestError(
                f"{self.manifest_path}: weights_sha256 is {self.weights_sha256}, but the weights hash to "
                f"{actual}; the files were changed or replaced"
            )

    @property
    def version(self) -> str:
        """The protocol id written to records: the default one, or the default plus manifest hash."""
        if self.manifest_sha256 is None:
            return PROTOCOL_VERSION
        return f"{PROTOCOL_VERSION}+manifest.{self.manifest_sha256[:12]}"

    def probes(self, attributes: bool) -> list[tuple[str, str]]:
        """The (key, prompt) list scored for one image: detection first, then the aspects."""
        out = [("detect", self.detect_prompt)]
        if attributes:
            out.extend(self.attributes)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "manifest": self.manifest_path,
            "manifest_sha256": self.manifest_sha256,
            "detect_prompt": self.detect_prompt,
            "attribute_prompts": {k: v for k, v in self.attributes},
            "label_words": {k: list(v) for k, v in self.label_words.items()},
            "explain_prompt": self.explain_prompt,
            "advise_prompt": self.advise_prompt,
            "system_prompt": self.system_prompt,
            "chat_template_override": self.chat_template is not None,
            "max_image_pixels": self.max_image_pixels,
            "answer_prefix": self.answer_prefix,
            "prompt_format": self.prompt_format,
            "answer_marker": self.answer_marker,
            "marker_max_tokens": self.marker_max_tokens,
            "calibration": self.calibration.to_dict(),
        }


# ---------------------------------------------------------------------------------------------
# Arithmetic


def sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so that exp never overflows.
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def logsumexp(values: np.ndarray, axis: int = -1) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    m = np.max(v, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):  # every value -inf: log(0) is the right answer, -inf, not a warning
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(v - m), axis=axis))


@dataclass(frozen=True)
class LabelIds:
    """Token ids of the one-token label words in one vocabulary, and the variants that were ignored
    (the first-token view; the backends score whole words through `LabelTokens`)."""

    fake: tuple[int, ...]
    real: tuple[int, ...]
    ignored: tuple[str, ...] = ()

    @property
    def all(self) -> list[int]:
        return list(self.fake) + list(self.real)

    def to_dict(self) -> dict[str, Any]:
        return {"fake": list(self.fake), "real": list(self.real), "ignored_variants": list(self.ignored)}


def resolve_label_ids(
    label_words: dict[str, Sequence[str]],
    encode: Callable[[str], Sequence[int]],
    *,
    unk_id: int | None = None,
    vocab_size: int | None = None,
) -> LabelIds:
    """Find the token id of each label-word variant in one vocabulary.

    A variant counts only when it encodes to exactly one token that is not the unknown token: a
    variant that the tokenizer splits would be represented by its first piece (" F", "re"), which
    starts many other words, so it is ignored rather than guessed. Duplicates (SentencePiece maps
    "fake" and " fake" to the same "▁fake") are pooled once.
    """
    found: dict[str, list[int]] = {"fake": [], "real": []}
    ignored: list[str] = []
    for label in ("fake", "real"):
        for variant in label_words.get(label, ()):
            ids = list(encode(variant))
            if len(ids) != 1:
                ignored.append(variant)
                continue
            tid = int(ids[0])
            if (unk_id is not None and tid == unk_id) or tid < 0 or (vocab_size is not None and tid >= vocab_size):
                ignored.append(variant)
                continue
            if tid not in found[label]:
                found[label].append(tid)
    for label in ("fake", "real"):
        if not found[label]:
            words = ", ".join(repr(w) for w in label_words.get(label, ()))
            raise DetectorUnavailable(
                f"none of the label words for {label!r} ({words}) is a single token in this model's "
                f"vocabulary; give label_words that are in a {MANIFEST_NAME} beside the weights"
            )
    clash = set(found["fake"]) & set(found["real"])
    if clash:
        raise DetectorUnavailable(f"label words for 'fake' and 'real' share token ids {sorted(clash)}")
    return LabelIds(tuple(found["fake"]), tuple(found["real"]), tuple(ignored))


@dataclass(frozen=True)
class LabelTokens:
    """Each label word of each side as its token sequence in one vocabulary. A word that is one
    token is read at the answer position; a longer one is scored exactly, as the sum of the
    log-probabilities of its tokens, each given the prompt and the tokens before it."""

    fake: tuple[tuple[int, ...], ...]
    real: tuple[tuple[int, ...], ...]
    ignored: tuple[str, ...] = ()

    @property
    def continuations(self) -> tuple[tuple[int, ...], ...]:
        """The sequences of more than one token (each needs its own continuation positions)."""
        return tuple(dict.fromkeys(s for s in self.fake + self.real if len(s) > 1))

    @property
    def columns(self) -> tuple[int, ...]:
        """Every token id a label word uses: the only log-probabilities a backend needs to keep."""
        return tuple(sorted({t for s in self.fake + self.real for t in s}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "fake": [s[0] for s in self.fake if len(s) == 1],
            "real": [s[0] for s in self.real if len(s) == 1],
            "fake_sequences": [list(s) for s in self.fake if len(s) > 1],
            "real_sequences": [list(s) for s in self.real if len(s) > 1],
            "ignored_variants": list(self.ignored),
        }


def resolve_label_tokens(
    label_words: dict[str, Sequence[str]],
    encode: Callable[[str], Sequence[int]],
    *,
    unk_id: int | None = None,
    vocab_size: int | None = None,
) -> LabelTokens:
    """Every label word's token sequence in one vocabulary. A word that encodes to nothing, to the
    unknown token or outside the vocabulary is ignored (named in `ignored`); duplicates (SentencePiece
    maps "fake" and " fake" alike) are pooled once; a sequence on both sides is an error."""
    found: dict[str, list[tuple[int, ...]]] = {"fake": [], "real": []}
    ignored: list[str] = []
    for label in ("fake", "real"):
        for word in label_words.get(label, ()):
            seq = tuple(int(t) for t in encode(word))
            if not seq or any(t < 0 or t == unk_id or (vocab_size is not None and t >= vocab_size) for t in seq):
                ignored.append(word)
            elif seq not in found[label]:
                found[label].append(seq)
        if not found[label]:
            words = ", ".join(repr(w) for w in label_words.get(label, ()))
            raise DetectorUnavailable(
                f"none of the label words for {label!r} ({words}) can be written in this model's vocabulary; "
                f"give label_words that are in a {MANIFEST_NAME} beside the weights"
            )
    clash = set(found["fake"]) & set(found["real"])
    if clash:
        raise DetectorUnavailable(f"label words for 'fake' and 'real' share token sequences {sorted(clash)}")
    return LabelTokens(tuple(found["fake"]), tuple(found["real"]), tuple(ignored))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log-softmax over the last axis (the vocabulary), in float64."""
    lg = np.asarray(logits, dtype=np.float64)
    return lg - logsumexp(lg, axis=-1)[..., None]


def label_z(first: np.ndarray, continued: dict[tuple[int, ...], np.ndarray], labels: LabelTokens) -> tuple[float, float]:
    """(z_fake, z_real) of one probe: each side's log-sum-exp of its words' log-probabilities.

    `first` holds the normalised log-probabilities at the answer position, one per id of
    `labels.columns`; `continued[seq]` the rows (len(seq), columns) at the positions where each token
    of a multi-token word is predicted (row 0 is the answer position itself)."""
    col = {t: i for i, t in enumerate(labels.columns)}

    def logp(seq: tuple[int, ...]) -> float:
        if len(seq) == 1:
            return float(first[col[seq[0]]])
        rows = continued[seq]
        return float(sum(rows[j, col[t]] for j, t in enumerate(seq)))

    with np.errstate(all="ignore"):
        zf = float(logsumexp(np.array([logp(s) for s in labels.fake])))
        zr = float(logsumexp(np.array([logp(s) for s in labels.real])))
    return zf, zr


@dataclass(frozen=True)
class Scores:
    """Per-row result of the estimation (arrays of shape (N,))."""

    z_fake: np.ndarray
    z_real: np.ndarray
    p_fake_raw: np.ndarray  # the two-way softmax of DESIGN.md
    p_fake: np.ndarray  # after the manifest's calibration (equal to p_fake_raw by default)


def score_label_logits(
    fake_logits: np.ndarray, real_logits: np.ndarray, calibration: Calibration | None = None
) -> Scores:
    """Score rows from the logits of the fake ids (N, nf) and real ids (N, nr) only."""
    zf = logsumexp(np.atleast_2d(np.asarray(fake_logits, dtype=np.float64)), axis=-1)
    zr = logsumexp(np.atleast_2d(np.asarray(real_logits, dtype=np.float64)), axis=-1)
    margin = zf - zr
    raw = sigmoid(margin)  # exp(zf)/(exp(zf)+exp(zr)) without overflow
    cal = raw if calibration is None or calibration.method == "none" else calibration.apply(margin)
    return Scores(zf, zr, raw, cal)


def score_logits(logits: np.ndarray, labels: LabelIds, calibration: Calibration | None = None) -> Scores:
    """Score full-vocabulary logits of shape (V,) or (N, V) at the first answer position."""
    lg = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    return score_label_logits(lg[:, list(labels.fake)], lg[:, list(labels.real)], calibration)


@dataclass(frozen=True)
class ProbeScores:
    """One image's probes scored: the detection probe's p_fake, the aspects, and raw figures."""

    p_fake: float
    attributes: dict[str, float] | None
    raw: dict[str, Any]


def score_probes(z: Sequence[tuple[float, float] | None], probes: Sequence[tuple[str, str]],
                 calibration: Calibration | None) -> ProbeScores:
    """Score per-probe (z_fake, z_real) pairs; probe 0 is detection, the rest are aspects. An aspect
    given None (its backend could not score it) is left out of the attributes, not guessed."""
    scored = [k for k, pair in enumerate(z) if pair is not None]
    zf = np.array([z[k][0] for k in scored])  # type: ignore[index]
    zr = np.array([z[k][1] for k in scored])  # type: ignore[index]
    sc = score_label_logits(zf[:, None], zr[:, None], calibration)
    p_of = {k: float(p) for k, p in zip(scored, sc.p_fake, strict=True)}
    attributes = {probes[k][0]: p_of[k] for k in range(1, len(probes)) if k in p_of} if len(probes) > 1 else None
    raw = {
        "p_fake": p_of[0],
        "p_fake_uncalibrated": float(sc.p_fake_raw[0]),
        "z_fake": float(zf[0]),
        "z_real": float(zr[0]),
    }
    return ProbeScores(p_of[0], attributes, raw)


def verdict_from_explanation(text: str) -> str | None:
    """'fake' / 'real' when the explanation ends as the protocol asks, else None."""
    tail = " ".join(text.lower().split())[-80:]
    fake_at, real_at = tail.rfind("this image is fake"), tail.rfind("this image is real")
    if fake_at < 0 and real_at < 0:
        return None
    return "fake" if fake_at > real_at else "real"


# ---------------------------------------------------------------------------------------------
# Manifest

_TOP_KEYS = {
    "schema", "prompts", "label_words", "attributes", "calibration", "chat_template", "max_image_pixels",
    "description", "weights_sha256", "answer_prefix", "prompt_format", "answer_marker", "marker_max_tokens",
    "source",  # where `fakescope models pull` got the checkpoint: repo, pinned revision, per-file sha256
}
PROMPT_FORMATS = ("chat", "raw")
_PROMPT_KEYS = {"detect", "attribute", "explain", "advise", "system"}


def find_manifest(model_path: str | Path) -> Path | None:
    """`fakescope.json` in a checkpoint folder, or beside a single weights file (a .gguf)."""
    p = Path(model_path)
    candidate = p / MANIFEST_NAME if p.is_dir() else p.parent / MANIFEST_NAME
    return candidate if candidate.is_file() else None


def load_protocol(model_path: str | Path | None) -> PromptProtocol:
    """The protocol for a checkpoint: the defaults, overridden by its manifest if it has one."""
    if model_path is None:
        return PromptProtocol()
    path = find_manifest(model_path)
    if path is None:
        return PromptProtocol()
    return read_manifest(path)


def read_manifest(path: str | Path, label: str | None = None) -> PromptProtocol:
    """Read, bound and parse one `fakescope.json`; errors name it as `label` (default: its path)."""
    path = Path(path)
    name = label or str(path)
    try:
        data = path.read_bytes()[: MANIFEST_MAX_BYTES + 1]
    except OSError as exc:
        raise ManifestError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MANIFEST_MAX_BYTES:
        raise ManifestError(f"{name}: larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{name}: not valid JSON: {exc}") from None
    return protocol_from_manifest(obj, source=str(path), sha256=hashlib.sha256(data).hexdigest())


def _fail(source: str, where: str, why: str) -> ManifestError:
    return ManifestError(f"{source}: {where}: {why}")


def _text(source: str, where: str, value: Any, *, max_len: int = 4000) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, where, "must be a non-empty string")
    if len(value) > max_len:
        raise _fail(source, where, f"longer than {max_len} characters")
    return value


def protocol_from_manifest(obj: Any, *, source: str = MANIFEST_NAME, sha256: str | None = None) -> PromptProtocol:
    """Validate a parsed manifest and return the protocol it describes. Unknown keys are errors
    (a typo must not silently fall back to a default prompt)."""
    if not isinstance(obj, dict):
        raise _fail(source, "top level", "must be a JSON object")
    unknown = set(obj) - _TOP_KEYS
    if unknown:
        raise _fail(source, "top level", f"unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    schema = obj.get("schema", MANIFEST_SCHEMA)
    if schema != MANIFEST_SCHEMA:
        raise _fail(source, "schema", f"{schema!r} is not supported (expected {MANIFEST_SCHEMA!r})")
    if "description" in obj:
        _text(source, "description", obj["description"])
    if "source" in obj and not isinstance(obj["source"], dict):
        raise _fail(source, "source", "must be an object (written by fakescope models pull)")
    kw: dict[str, Any] = {"manifest_path": source, "manifest_sha256": sha256}

    prompts = obj.get("prompts", {})
    if not isinstance(prompts, dict):
        raise _fail(source, "prompts", "must be an object")
    bad = set(prompts) - _PROMPT_KEYS
    if bad:
        raise _fail(source, "prompts", f"unknown keys {sorted(bad)}; allowed: {sorted(_PROMPT_KEYS)}")
    if "detect" in prompts:
        kw["detect_prompt"] = _text(source, "prompts.detect", prompts["detect"])
    template = ATTRIBUTE_TEMPLATE
    if "attribute" in prompts:
        template = _text(source, "prompts.attribute", prompts["attribute"])
        if "{aspect}" not in template:
            raise _fail(source, "prompts.attribute", "must contain the placeholder {aspect}")
        try:
            template.format(aspect="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise _fail(source, "prompts.attribute", f"bad placeholder: {exc}") from None
        kw["attribute_template"] = template
    if "explain" in prompts:
        kw["explain_prompt"] = _text(source, "prompts.explain", prompts["explain"])
    if "advise" in prompts:
        kw["advise_prompt"] = _text(source, "prompts.advise", prompts["advise"])
    if "system" in prompts:
        kw["system_prompt"] = None if prompts["system"] is None else _text(source, "prompts.system", prompts["system"])

    attrs = obj.get("attributes", list(ASPECTS))
    kw["attributes"] = _parse_attributes(source, attrs, template)

    if "label_words" in obj:
        lw = obj["label_words"]
        if not isinstance(lw, dict) or set(lw) != {"fake", "real"}:
            raise _fail(source, "label_words", "must be an object with exactly the keys 'fake' and 'real'")
        parsed: dict[str, tuple[str, ...]] = {}
        for label, words in lw.items():
            if not isinstance(words, list) or not words or len(words) > 64:
                raise _fail(source, f"label_words.{label}", "must be a list of 1 to 64 strings")
            for w in words:
                if not isinstance(w, str) or not w.strip() or len(w) > 64:
                    raise _fail(source, f"label_words.{label}", f"{w!r} is not a string with a word in it (≤ 64 chars)")
            parsed[label] = tuple(dict.fromkeys(words))
        if set(parsed["fake"]) & set(parsed["real"]):
            raise _fail(source, "label_words", "the same word is listed for both 'fake' and 'real'")
        kw["label_words"] = parsed

    if "calibration" in obj:
        kw["calibration"] = _parse_calibration(source, obj["calibration"])
    if "weights_sha256" in obj:
        pin = obj["weights_sha256"]
        if not isinstance(pin, str) or not re.fullmatch(r"[0-9a-f]{64}", pin):
            raise _fail(source, "weights_sha256", "must be 64 lowercase hex digits")
        kw["weights_sha256"] = pin
    if "chat_template" in obj:
        kw["chat_template"] = None if obj["chat_template"] is None else _text(
            source, "chat_template", obj["chat_template"], max_len=65536
        )
    if "max_image_pixels" in obj:
        mp = obj["max_image_pixels"]
        if mp is not None and (not isinstance(mp, int) or isinstance(mp, bool) or not 1024 <= mp <= 1 << 28):
            raise _fail(source, "max_image_pixels", "must be an integer between 1024 and 2^28, or null")
        kw["max_image_pixels"] = mp
    if "answer_prefix" in obj:
        kw["answer_prefix"] = None if obj["answer_prefix"] is None else _text(
            source, "answer_prefix", obj["answer_prefix"], max_len=200)
    if "prompt_format" in obj:
        if obj["prompt_format"] not in PROMPT_FORMATS:
            raise _fail(source, "prompt_format", f"must be one of {', '.join(PROMPT_FORMATS)}")
        kw["prompt_format"] = obj["prompt_format"]
        if kw["prompt_format"] == "raw" and kw.get("chat_template"):
            raise _fail(source, "chat_template", "has no use with prompt_format raw (no template is applied)")
    if "answer_marker" in obj:
        kw["answer_marker"] = None if obj["answer_marker"] is None else _text(
            source, "answer_marker", obj["answer_marker"], max_len=200)
        if kw["answer_marker"] is not None and kw.get("answer_prefix") is not None:
            raise _fail(source, "answer_marker", "and answer_prefix exclude each other (the marker ends the answer's start)")
    if "marker_max_tokens" in obj:
        n = obj["marker_max_tokens"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 8192:
            raise _fail(source, "marker_max_tokens", "must be an integer between 1 and 8192")
        kw["marker_max_tokens"] = n
    return PromptProtocol(**kw)


def _parse_attributes(source: str, attrs: Any, template: str) -> tuple[tuple[str, str], ...]:
    """A list of aspect names (prompt from the template) or an object aspect -> prompt."""
    pairs: list[tuple[str, str]] = []
    if isinstance(attrs, list):
        for i, a in enumerate(attrs):
            name = _text(source, f"attributes[{i}]", a, max_len=100)
            pairs.append((name, template.format(aspect=name)))
    elif isinstance(attrs, dict):
        for name, prompt in attrs.items():
            _text(source, "attributes (key)", name, max_len=100)
            pairs.append((name, _text(source, f"attributes.{name}", prompt)))
    else:
        raise _fail(source, "attributes", "must be a list of aspect names or an object aspect -> prompt")
    if len(pairs) > 64:
        raise _fail(source, "attributes", "at most 64 aspects")
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names) or "detect" in names:
        raise _fail(source, "attributes", "aspect names must be unique and not 'detect'")
    return tuple(pairs)


def _parse_calibration(source: str, cal: Any) -> Calibration:
    if cal is None:
        return Calibration()
    if not isinstance(cal, dict):
        raise _fail(source, "calibration", "must be an object")
    method = cal.get("method")
    allowed = {"none": set(), "platt": {"a", "b"}, "temperature": {"temperature"}}
    if method not in allowed:
        raise _fail(source, "calibration.method", f"must be one of {sorted(allowed)}")
    extra = set(cal) - {"method"} - allowed[method]
    if extra:
        raise _fail(source, "calibration", f"unknown keys for {method!r}: {sorted(extra)}")

    def num(key: str) -> float:
        v = cal.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(source, f"calibration.{key}", "must be a finite number")
        return float(v)

    if method == "none":
        return Calibration()
    if method == "platt":
        return Calibration("platt", num("a"), num("b"))
    t = num("temperature")
    if t <= 0:
        raise _fail(source, "calibration.temperature", "must be > 0")
    return Calibration("temperature", 1.0 / t, 0.0)


def longest_common_prefix(seqs: Iterable[Sequence[int]]) -> int:
    """Length of the longest common prefix of token sequences (the shared KV prefix)."""
    seqs = list(seqs)
    if not seqs:
        return 0
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs[1:]):
            return i
    return n
