"""The `server` backend: any OpenAI-compatible chat-completions endpoint that returns logprobs
(vLLM, SGLang, llama.cpp's llama-server, llama-cpp-python's server).

Each probe of the FakeScope protocol is one chat completion: the image as a PNG data URL, the
probe's prompt, `max_tokens: 1`, `temperature: 0`, `logprobs: true` and `top_logprobs: k`. The
server applies the checkpoint's own chat template. p_fake is the protocol's token-based estimate
read from the top-k log-probabilities of the first answer token: the entries whose token string is
a label-word variant are pooled per label (log-sum-exp) and the two pools go through the same
two-way softmax (and manifest calibration) as the hf and gguf backends. Log-probabilities are the
logits minus one constant per position, so the result equals the logit-based one whenever every
label token is inside the top-k.

A chat-completions request cannot force text into the answer, so a manifest's `answer_prefix` or
`answer_marker` is met the other way round: one greedy answer with top_logprobs at every position,
and the label read at the position right after the prefix (which the model must write first) or
the marker (the reasoning before it kept as the explanation). A model that does not write them
fails its file with a detector-error. Label words of several words and `prompt_format: raw` are
refused (one token per position; no template-free image request).

Standard library only (HTTP in openai_http.py): the backend adds no dependency. The scan
engine calls `analyze` from several threads at once (`parallel_requests`); each thread keeps its
own keep-alive connection. The API key is read from an environment variable and only ever sent
in the Authorization header: it is never a flag value, never in describe() or a record.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope_cli.detectors.base import StreamCallback
from fakescope_cli.detectors.multimodal import ImageScores, MultimodalDetector, fit_image
from fakescope_cli.detectors.openai_http import DEFAULT_API_KEY_ENV, Http, split_url
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError
from fakescope_cli.protocol import PromptProtocol, logsumexp, read_manifest

if TYPE_CHECKING:
    from fakescope_cli.media import Media

DEFAULT_TOP_LOGPROBS = 20  # OpenAI's maximum and vLLM's default --max-logprobs
MAX_TOP_LOGPROBS = 100_000  # above any vocabulary served today: a larger value is a typo
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a shell can export
DEFAULT_PARALLEL = 8

NO_LOGPROBS_HINT = (
    "the server must return logprobs: vLLM `--max-logprobs` >= --top-logprobs, SGLang and llama.cpp's "
    "llama-server return them on request, llama-cpp-python's server needs `--logits_all true` (its default)"
)


# ---------------------------------------------------------------------------------------------
# Scoring from top_logprobs (pure functions; tested on their own)

_SPACE_MARKERS = ("\u2581", "\u0120")  # SentencePiece "▁" and byte-level BPE "Ġ", if a server shows raw pieces


def _norm_token(token: str) -> str:
    """A token string as the label variants are written: a raw-piece space marker becomes a space,
    and the leading spaces go (a lone SentencePiece piece decodes without its space on some servers,
    so " fake" and "fake" must meet). Other leading whitespace (newline, tab) is kept: "\\nfake" is
    another token, which the local backends do not pool either."""
    for marker in _SPACE_MARKERS:
        if token.startswith(marker):
            token = " " + token[len(marker):]
    return token.lstrip(" ")


@dataclass(frozen=True)
class TopLogprobScore:
    z_fake: float
    z_real: float
    matched: dict[str, list[str]]  # label -> the token strings pooled
    bounded: str | None  # a label absent from the top-k, estimated by its upper bound


def score_top_logprobs(top: Sequence[tuple[str, float]], label_words: dict[str, Sequence[str]]) -> TopLogprobScore:
    """z_fake and z_real from the (token, logprob) list of the first answer position.

    A label with no token in the list has at most len(variants) tokens below the smallest listed
    logprob; that upper bound stands in for it (p_fake is then conservative: nearer 0.5 than the
    full-vocabulary value) and `bounded` names the label. Neither label listed: InputError.
    """
    wanted = {label: {_norm_token(v) for v in variants} for label, variants in label_words.items()}
    pools: dict[str, list[float]] = {"fake": [], "real": []}
    matched: dict[str, list[str]] = {"fake": [], "real": []}
    finite: list[float] = []
    for token, logprob in top:
        # NaN, and +inf (a probability above 1), say nothing: skipped. -inf is a probability of 0.
        if not isinstance(token, str) or not isinstance(logprob, (int, float)) or math.isnan(logprob) or logprob == math.inf:
            continue
        if math.isfinite(logprob):
            finite.append(float(logprob))
        norm = _norm_token(token)
        for label in ("fake", "real"):
            if norm and norm in wanted.get(label, ()):
                pools[label].append(float(logprob))
                matched[label].append(token)
    if not pools["fake"] and not pools["real"]:
        shown = ", ".join(repr(t) for t, _ in list(top)[:8])
        raise InputError(
            f"label words not in top_logprobs (the first answer token's top {len(top)}: {shown}); "
            "raise --top-logprobs", "detector-error",
        )
    if not any(math.isfinite(v) for v in pools["fake"] + pools["real"]):
        # Both labels at probability 0 (-inf): the softmax between them is 0/0, not a score.
        raise InputError(
            "the server gave every label-word token log-probability -inf (probability 0), so there is no "
            "fake/real score for this image", "detector-error",
        )
    bounded = None
    z: dict[str, float] = {}
    for label in ("fake", "real"):
        if pools[label]:
            z[label] = float(logsumexp(np.array(pools[label])))
        else:
            bounded = label
            # Tokens that normalise to a variant: at most two per variant (with and without a space).
            n_variants = max(1, len(wanted.get(label, ())) * 2)
            z[label] = (min(finite) if finite else -1e4) + math.log(n_variants)
    return TopLogprobScore(z["fake"], z["real"], matched, bounded)


def first_token_top_logprobs(response: dict[str, Any]) -> list[tuple[str, float]] | None:
    """The (token, logprob) list of the first generated token of a chat completion, or None when
    the answer carries no logprobs (the server ignored the request)."""
    try:
        choice = response["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise DetectorUnavailable("the server's answer has no choices: not an OpenAI-compatible chat completion") from None
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list) or not content:
        return None
    first = content[0]
    top = first.get("top_logprobs") if isinstance(first, dict) else None
    if not isinstance(top, list) or not top:
        return None
    out: list[tuple[str, float]] = []
    for entry in top:
        if not isinstance(entry, dict):
            continue
        token, logprob = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(logprob, (int, float)) and not isinstance(logprob, bool):
            out.append((token, float(logprob)))
    return out or None


def answer_tokens(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The generated tokens of a chat completion with logprobs: [{token, logprob, top_logprobs}]."""
    try:
        content = response["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, list) or not all(isinstance(t, dict) and isinstance(t.get("token"), str) for t in content):
        raise DetectorUnavailable(f"the server returned no per-token logprobs for its answer; {NO_LOGPROBS_HINT}")
    return content


def read_after(tokens: Sequence[dict[str, Any]], needle: str, *, at_start: bool) -> tuple[int, str]:
    """Where the label is read in a greedy answer: the index of the first token after `needle` (the
    answer prefix, which must open the answer, or the marker, anywhere), and the text before the
    needle (a reason-first model's reasoning). InputError when the model did not write it."""
    text = "".join(t["token"] for t in tokens)
    at = len(text) - len(text.lstrip()) if at_start else text.find(needle)
    if at < 0 or not text.startswith(needle, at):
        what = "does not open with" if at_start else "holds no"
        raise InputError(f"the model's answer {what} {needle!r} (it began {text[:80]!r})", "detector-error")
    end, start = at + len(needle), 0
    for i, t in enumerate(tokens):
        if start >= end and text[end:start].strip() == "":
            return i, text[:at]
        if start < end < start + len(t["token"]):
            raise InputError(f"the model's token {t['token']!r} runs across the end of {needle!r}; the label "
                             "cannot be read on its own", "detector-error")
        start += len(t["token"])
    raise InputError(f"the model's answer ends at {needle!r}, before any label (raise marker_max_tokens)",
                     "detector-error")


def _message_text(response: dict[str, Any]) -> str:
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise DetectorUnavailable("the server's answer has no message: not an OpenAI-compatible chat completion") from None
    return content if isinstance(content, str) else ""


# ---------------------------------------------------------------------------------------------
# The detector


def png_data_url(media: Media, max_pixels: int | None = None) -> str:
    """The decoded RGB pixels as a PNG data URL.

    Re-encoded rather than sent as the original file: the server sees exactly the pixels the local
    backends score (orientation, 16-bit, CMYK and palette already resolved by Media), the
    decompression-bomb guards have run here, and no metadata (EXIF GPS, XMP, C2PA) leaves the
    machine. compress_level 1: the PNG is transient and speed matters more than its size.
    """
    img = fit_image(media.rgb(), max_pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def load_manifest_file(path: str | os.PathLike[str]) -> PromptProtocol:
    """A `fakescope.json` given by path (it need not sit beside local weights)."""
    return read_manifest(path, label=f"--manifest {path}")


class ServerDetector(MultimodalDetector):
    """The FakeScope protocol over an OpenAI-compatible server that returns logprobs. The weights
    live on the server (no weights_sha256 here), which also renders its own chat template."""

    id = "server"
    extra = None  # the standard library only
    # The scan engine may call analyze() from this many threads at once (the default of --jobs):
    # the time goes into waiting for the server, which batches concurrent requests itself.
    parallel_requests = DEFAULT_PARALLEL
    concurrent_calls = True

    def __init__(
        self,
        model: str | None = None,
        url: str | None = None,
        *,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        request_timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        top_logprobs: int = DEFAULT_TOP_LOGPROBS,
        manifest: str | os.PathLike[str] | None = None,
        attributes: bool = False,
        explain: bool = False,
        max_tokens: int = 256,
        # Accepted for a uniform CLI; they describe local weights, which a server backend has none of.
        mmproj: str | None = None,
        quantize: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        trust_pickle: bool = False,
        trust_remote_code: bool = False,
        verbose: bool = False,
    ):
        if url is None:
            raise UsageError("--backend server needs --url (e.g. --url http://127.0.0.1:8000)")
        for flag, value in (("--mmproj", mmproj), ("--device", device)):
            if value is not None and value != "auto":
                raise UsageError(f"{flag} is for local backends; the server loads its own model")
        if quantize not in (None, "none"):
            raise UsageError("--quantize is for --backend hf; quantise on the server (e.g. vLLM --quantization)")
        if not 1 <= int(top_logprobs) <= MAX_TOP_LOGPROBS:
            raise UsageError(f"--top-logprobs must be between 1 and {MAX_TOP_LOGPROBS}, not {top_logprobs}")
        if not api_key_env or not ENV_NAME.fullmatch(api_key_env):
            raise UsageError(f"--api-key-env takes an environment variable name (letters, digits, _), not {api_key_env!r}")
        # Checked before anything is sent: a bad --url is a usage error even when the key is missing.
        split_url(url)
        # A well-formed name whose variable is not set: the environment, not the command line (exit 4).
        api_key = os.environ.get(api_key_env) or None
        if api_key is None and api_key_env != DEFAULT_API_KEY_ENV:
            raise DetectorUnavailable(f"--api-key-env {api_key_env}: that environment variable is not set")
        self.setup_protocol(load_manifest_file(manifest) if manifest is not None else PromptProtocol(),
                            attributes=attributes, explain=explain, max_tokens=max_tokens)
        if self.protocol.prompt_format != "chat":
            # Chat completions apply the server's template; the raw completions endpoint takes no image.
            raise DetectorUnavailable(
                f"--manifest {manifest}: prompt_format raw needs a local backend (hf or gguf); an OpenAI-compatible "
                "server applies its own chat template to an image request")
        several = [w for words in self.protocol.label_words.values() for w in words if len(w.split()) > 1]
        if several:
            raise DetectorUnavailable(
                f"--manifest {manifest}: label words of several words ({', '.join(repr(w) for w in several)}) "
                "need a local backend (hf or gguf); a server's top_logprobs show one token per position")
        self.top_logprobs = int(top_logprobs)
        self.api_key_env = api_key_env
        self.http = Http(url, api_key, float(request_timeout), max(0, int(retries)), backoff)
        self.url = self.http.display
        self.model, self.server_models = self._pick_model(model)
        self.version = self.model
        self._check_logprobs()

    # ------------------------------------------------------------------------------ start-up

    def _pick_model(self, model: str | None) -> tuple[str, list[str]]:
        """The served model: --model, checked against /v1/models, or the only one served.
        A connection refused here fails at once (nothing is listening: retrying would only delay
        the message); a server still starting (503) is waited for."""
        try:
            listing = self.http.call("GET", "/models", None, retry_connect=False)
            data = listing.get("data")
            ids = [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)] if isinstance(data, list) else []
        except InputError:  # a gateway without /v1/models (405, 400): nothing to check against
            ids = []
        except DetectorUnavailable as exc:
            if "HTTP 404" not in str(exc):
                raise
            ids = []
        if model is None:
            if len(ids) == 1:
                return ids[0], ids
            served = ", ".join(ids) if ids else "none listed"
            raise DetectorUnavailable(f"--backend server needs --model NAME (the server at {self.url} serves: {served})")
        if ids and model not in ids:
            raise DetectorUnavailable(f"the server at {self.url} does not serve {model!r}; it serves: {', '.join(ids)}")
        return model, ids

    def _check_logprobs(self) -> None:
        """One text-only request with the scan's own settings: a server that ignores logprobs, or
        refuses this many, fails here with exit 4 instead of on every file."""
        body = self._body([{"role": "user", "content": "Answer with one word: fake or real?"}], logprobs=True)
        try:
            answer = self.http.call("POST", "/chat/completions", body)
        except InputError as exc:
            raise DetectorUnavailable(f"the server at {self.url} refused a logprobs request: {exc.message}") from None
        if first_token_top_logprobs(answer) is None:
            raise DetectorUnavailable(f"the server at {self.url} returned no logprobs; {NO_LOGPROBS_HINT}")

    # ------------------------------------------------------------------------------ requests

    def _body(self, messages: list[dict[str, Any]], *, logprobs: bool, max_tokens: int = 1,
              stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                "temperature": 0}
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        if stream:
            body["stream"] = True
        return body

    def prepare_image(self, media: Media) -> str:
        """The image as the server takes it: a PNG data URL of the decoded, size-limited pixels."""
        return png_data_url(media, self.image_pixel_limit())

    def _messages(self, image_url: str, prompt: str) -> list[dict[str, Any]]:
        return self.chat_messages(prompt, {"type": "image_url", "image_url": {"url": image_url}}, plain_system=True)

    def _probe(self, image_url: str, prompt: str) -> tuple[TopLogprobScore, str | None, str | None]:
        """One probe: its score, the token the label was read from, and (marker mode) the reasoning."""
        if self._reads_generated:
            return self._probe_generated(image_url, prompt)
        answer = self.http.call("POST", "/chat/completions", self._body(self._messages(image_url, prompt), logprobs=True))
        top = first_token_top_logprobs(answer)
        if top is None:
            raise DetectorUnavailable(f"the server at {self.url} returned no logprobs; {NO_LOGPROBS_HINT}")
        first = None
        try:
            first = answer["choices"][0]["logprobs"]["content"][0].get("token")
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        return score_top_logprobs(top, self.protocol.label_words), first if isinstance(first, str) else None, None

    def _probe_generated(self, image_url: str, prompt: str) -> tuple[TopLogprobScore, str | None, str | None]:
        """answer_prefix / marker mode over chat completions (which cannot force text into the answer):
        a greedy answer with top_logprobs at every position; the label is read at the position right
        after the prefix (which the model must write first) or the marker (its reasoning kept)."""
        prefix, marker = self.protocol.answer_prefix, self.protocol.answer_marker
        needle = prefix if prefix is not None else marker
        assert needle is not None
        # A token is at least one byte (a partial UTF-8 piece shows as ""): the prefix takes at most
        # that many tokens, then the label's.
        budget = len(prefix.encode("utf-8")) + 1 if prefix is not None else self.protocol.marker_max_tokens + 1
        answer = self.http.call("POST", "/chat/completions",
                                self._body(self._messages(image_url, prompt), logprobs=True, max_tokens=budget))
        tokens = answer_tokens(answer)
        i, before = read_after(tokens, needle, at_start=prefix is not None)
        top = [(e["token"], float(e["logprob"])) for e in tokens[i].get("top_logprobs") or []
               if isinstance(e, dict) and isinstance(e.get("token"), str) and isinstance(e.get("logprob"), (int, float))]
        if not top:
            raise DetectorUnavailable(f"the server at {self.url} returned no top_logprobs; {NO_LOGPROBS_HINT}")
        reasoning = before if marker is not None else None
        return score_top_logprobs(top, self.protocol.label_words), tokens[i]["token"], reasoning

    @property
    def _reads_generated(self) -> bool:
        """answer_prefix or marker mode: the label is read from a greedy answer, not its first token."""
        return self.protocol.answer_prefix is not None or self.protocol.answer_marker is not None

    def _score_after_marker(self, image: Any, probes: list[tuple[str, str]]) -> ImageScores:
        """Marker mode reads the label from the same greedy request that writes the reasoning."""
        return self._score_image(image, probes)

    def score_images(self, images: list[Any], probes: list[tuple[str, str]]) -> list[ImageScores]:
        return [self._score_image(url, probes) for url in images]

    def _score_image(self, image_url: str, probes: list[tuple[str, str]]) -> ImageScores:
        """One request per probe. An aspect whose answer holds no label word is left unscored (absent,
        not guessed); the detection probe's failure is the file's."""
        detect, first_token, reasoning = self._probe(image_url, probes[0][1])
        out = ImageScores([(detect.z_fake, detect.z_real)], reasoning=reasoning)
        bounded: dict[str, str] = {}
        for key, prompt in probes[1:]:
            try:
                s, _, _ = self._probe(image_url, prompt)
            except InputError as exc:
                if exc.code != "detector-error":
                    raise
                out.z.append(None)
                out.unscored[key] = exc.message
                continue
            out.z.append((s.z_fake, s.z_real))
            if s.bounded:
                bounded[key] = s.bounded
        out.raw = {"top_logprobs": self.top_logprobs, "label_tokens": detect.matched,
                   "label_read_from" if self._reads_generated else "first_token": first_token}
        if detect.bounded:
            out.raw["bounded_label"] = detect.bounded
        if bounded:
            out.raw["attributes_bounded"] = bounded
        return out

    def generate(self, image: str, prompt: str, callback: StreamCallback | None, max_tokens: int) -> str:
        """A free-form greedy (temperature 0) answer, handed to `callback` whole when it arrives."""
        body = self._body(self._messages(image, prompt), logprobs=False, max_tokens=max_tokens)
        text = _message_text(self.http.call("POST", "/chat/completions", body))
        if callback is not None and text:
            callback(text)
        return text

    # ------------------------------------------------------------------------------ results

    def result_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"model": self.model}, {}

    def nonfinite_reason(self, z_fake: float, z_real: float) -> str:
        return f"the server's label-word log-probabilities are not usable (z_fake {z_fake}, z_real {z_real})"

    def cancel(self) -> None:
        """Stop in-flight and future requests (the scan is ending early)."""
        self.http.cancel()

    def identity(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.url,
            "model": self.model,
            "protocol": self.protocol.version,
            "top_logprobs": self.top_logprobs,
            "api_key_env": self.api_key_env,  # the variable's name; its value is never recorded
        }
        if self.protocol.chat_template is not None:
            info["chat_template"] = "manifest template not applied: the server renders its own"
        return info
