"""C2PA / Content Credentials, read with c2pa-python from the bytes in memory, offline.

What is reported: the claim generator, the signer and signing time, every validation finding with
its class and where in the chain it sits, the actions of each manifest in the chain, and the IPTC
``digitalSourceType`` values declared on actions and other assertions (docs/provenance.md).

How it maps to a signal. The origin decides: a manifest's own ``c2pa.created`` (or IPTC assertion),
else the ingredient it was made from (``parentOf``, or the one ingredient with a manifest that it
opened):
  ai        — an origin declaring trainedAlgorithmicMedia, however it was edited later.
  ai-edited — a non-AI origin changed with generative tools: compositeWithTrainedAlgorithmicMedia /
              compositeSynthetic, an edit action declaring an AI source type or made by a known AI
              tool, or an AI ingredient placed into the image.
  camera    — digitalCapture (also film scans), only when the manifest validates; weak.
  editor    — edits without AI.
  none      — a manifest that declares none of that (algorithmicMedia: a formula, not AI), one that
              cannot be read, or a remote manifest (never fetched).
AI claims are strong even when validation fails: a forger gains nothing by adding one; the broken
signature is stated in the summary and the details.

Validation findings fall in three classes, never mixed: integrity (tampering the library confirms),
trust (the signer's credential) and not-checked (checks that need the network). Codes the library
contradicts itself on are quoted, not turned into "the bytes changed".

No network: OCSP and remote-manifest fetches are switched off and the allowed host list is empty
(an empty list disallows every host in c2pa-rs' RestrictedResolver), so a file pointing at a
manifest URL is reported, not followed. Trust lists the user gives (c2pa_trust) are read from local
files; without one every signer reads "untrusted", which the summary calls "not checked against a
trust list" instead of a failure.

The module shares its name with the library, so the library is always imported by absolute name
through importlib, lazily.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli.errors import InputError
from fakescope_cli.evidence.base import EvidenceItem, Signal
from fakescope_cli.evidence.c2pa_markers import _jpeg_marker, has_manifest_marker  # noqa: F401 (tests reach them here)
from fakescope_cli.evidence.c2pa_validation import (
    MAX_TEXT,
    Validation,
    codes_text,
    integrity_sentence,
    outcome_class,  # noqa: F401 (the classes, for callers)
)
from fakescope_cli.evidence.c2pa_validation import clip_text as _text
from fakescope_cli.evidence.source_types import dst_code, dst_meaning, dst_signal
from fakescope_cli.evidence.tools import match_ai_tool, match_editor
from fakescope_cli.media import Media

NEEDS_PIXELS = False
SOURCE = "c2pa"

MIME_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
    "GIF": "image/gif",
}
# c2pa-rs settings (docs/settings.md in contentauth/c2pa-rs): never touch the network.
OFFLINE_SETTINGS: dict[str, Any] = {
    "verify": {"ocsp_fetch": False, "remote_manifest_fetch": False},
    "core": {"allowed_network_hosts": []},
}

MAX_LIST = 40
MAX_DEPTH = 16  # ingredient chain depth followed
CREATED = frozenset({"c2pa.created"})
# Actions that do not change what the pixels show.
NEUTRAL = frozenset({"c2pa.opened", "c2pa.published", "c2pa.converted", "c2pa.transcoded",
                     "c2pa.repackaged", "c2pa.managed", "c2pa.unknown"})
UNTRUSTED = "signingCredential.untrusted"
# Characters of a summary that a shortened display (the table's "why", cut at 140) is sure to show.
SUMMARY_LEAD = 139
_ACTIONS_LABEL = re.compile(r"^c2pa\.actions(\.v\d+)?$")


# --- library access -----------------------------------------------------------------------------

_ctx_lock = threading.Lock()
_ctx: tuple[tuple[int, str], Any, list[dict[str, Any]]] | None = None


def _reset_after_fork() -> None:
    # A Context made by the parent is refused in a child (c2pa-python checks the owner pid).
    global _ctx, _ctx_lock
    _ctx = None
    _ctx_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _library() -> Any:
    """The c2pa-python package (not this module), imported once.

    Its package `__init__` looks its own version up through importlib.metadata, whose import
    (email, zipfile, csv …) is ~20 ms of a one-file `fakescope scan`, for a version fakescope never
    reads. In the fakescope command itself, on the main thread and when nothing has imported
    importlib.metadata yet, that lookup is made to fail the way the package allows for
    (`except ImportError: __version__ = "unknown"`); library users and threaded scans import it as is.
    """
    if "c2pa" in sys.modules or not _skip_version_lookup():
        return importlib.import_module("c2pa")
    sys.modules["importlib.metadata"] = None  # type: ignore[assignment]  # `from importlib.metadata import …` raises ImportError
    try:
        return importlib.import_module("c2pa")
    finally:
        del sys.modules["importlib.metadata"]


def _skip_version_lookup() -> bool:
    from fakescope_cli import interrupts

    return (interrupts.is_command() and "importlib.metadata" not in sys.modules
            and threading.current_thread() is threading.main_thread())


def _settings(trust: dict[str, Any]) -> dict[str, Any]:
    """The user's trust settings with the offline switches laid over them (they always win)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in trust.items()}
    for section, values in OFFLINE_SETTINGS.items():
        merged[section] = {**(merged.get(section) if isinstance(merged.get(section), dict) else {}), **values}
    return merged


def offline_context(lib: Any) -> Any:
    """One offline Context per process (and per trust configuration, see c2pa_trust)."""
    global _ctx
    from fakescope_cli.evidence import c2pa_trust

    try:
        trust, used = c2pa_trust.configured()
    except c2pa_trust.TrustConfigError as exc:
        raise InputError(str(exc), "c2pa-trust") from None
    key = (os.getpid(), json.dumps(used, sort_keys=True))
    with _ctx_lock:
        if _ctx is None or _ctx[0] != key:
            settings = _settings(trust)
            try:
                ctx = lib.Context.from_dict(settings)
            except lib.C2paError:  # a build that does not know the host list: the fetch switches suffice
                settings["core"] = {k: v for k, v in settings.get("core", {}).items() if k != "allowed_network_hosts"}
                ctx = lib.Context.from_dict({k: v for k, v in settings.items() if v})
            _ctx = (key, ctx, used)
        return _ctx[1]


def trust_lists_used() -> list[dict[str, Any]]:
    """The trust lists of the current context (empty when none is configured)."""
    return list(_ctx[2]) if _ctx is not None else []


# --- helpers ------------------------------------------------------------------------------------

def _agent_name(agent: Any) -> str | None:
    if isinstance(agent, dict):
        name, version = agent.get("name"), agent.get("version")
        if isinstance(name, str):
            return _text(f"{name} {version}" if isinstance(version, str) else name)
        return None
    return _text(agent) if isinstance(agent, str) else None


def _generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, dict):
        info = [info]
    if isinstance(info, list):
        for entry in info:
            name = _agent_name(entry)
            if name:
                return name
    gen = manifest.get("claim_generator")
    return _text(gen) if isinstance(gen, str) else None


def _generator_info(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    info = manifest.get("claim_generator_info")
    if isinstance(info, dict):
        info = [info]
    out = []
    for entry in info if isinstance(info, list) else []:
        if isinstance(entry, dict):
            out.append({str(k)[:60]: _text(v) for k, v in list(entry.items())[:12]
                        if isinstance(v, str | int | float)})
    return out[:8]


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not _ACTIONS_LABEL.match(str(assertion.get("label", ""))):
            continue
        data = assertion.get("data")
        for action in (data.get("actions") if isinstance(data, dict) else None) or []:
            if isinstance(action, dict) and isinstance(action.get("action"), str):
                out.append(action)
    return out


def _assertion_dsts(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(value, assertion label) for digitalSourceType values outside actions (IPTC assertions …)."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, label: str, depth: int) -> None:
        if depth > 8 or len(found) >= MAX_LIST:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and str(key).lower().rsplit(":", 1)[-1] == "digitalsourcetype":
                    found.append((value, label))
                else:
                    walk(value, label, depth + 1)
        elif isinstance(node, list):
            for value in node[:200]:
                walk(value, label, depth + 1)

    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict) and not _ACTIONS_LABEL.match(str(assertion.get("label", ""))):
            walk(assertion.get("data"), str(assertion.get("label", ""))[:100], 0)
    return found


@dataclass
class _Verdict:
    signal: Signal
    reasons: list[str] = field(default_factory=list)


class _Store:
    """The manifest store JSON and a memoised provenance judgement per manifest."""

    def __init__(self, store: dict[str, Any]) -> None:
        manifests = store.get("manifests")
        self.manifests: dict[str, dict[str, Any]] = (
            {k: v for k, v in manifests.items() if isinstance(v, dict)} if isinstance(manifests, dict) else {}
        )
        self.memo: dict[str, _Verdict] = {}

    def judge(self, label: str, stack: tuple[str, ...] = ()) -> _Verdict:
        if label in self.memo:
            return self.memo[label]
        if label in stack or len(stack) >= MAX_DEPTH:
            return _Verdict("none", ["ingredient chain too deep or cyclic"])
        verdict = self._judge(label, stack + (label,))
        self.memo[label] = verdict
        return verdict

    def _judge(self, label: str, stack: tuple[str, ...]) -> _Verdict:
        m = self.manifests[label]
        actions = _actions(m)
        created = [a for a in actions if a["action"] in CREATED]
        edits = [a for a in actions if a["action"] not in CREATED | NEUTRAL]
        gen = _generator(m) or "an unnamed generator"

        def who(action: dict[str, Any]) -> str:
            agent = _agent_name(action.get("softwareAgent"))
            return f" by {agent}" if agent else f" ({gen})"

        # The manifest's own declarations.
        for a in created:
            dst = a.get("digitalSourceType")
            if isinstance(dst, str) and dst_signal(dst) == "ai":
                return _Verdict("ai", [f"{a['action']} as {dst_code(dst)}{who(a)}"])
        assertion_dsts = _assertion_dsts(m)
        for value, where in assertion_dsts:
            if dst_signal(value) == "ai":
                return _Verdict("ai", [f"{where} declares {dst_code(value)}"])
        # The origin decides: an image a trained model created stays AI-generated however it was
        # edited later; only a non-AI origin changed with generative tools is ai-edited.
        # Ingredients that carry their own manifests.
        ingredients: list[tuple[dict[str, Any], _Verdict | None]] = []
        for ing in m.get("ingredients") or []:
            if not isinstance(ing, dict):
                continue
            ref = ing.get("active_manifest")
            sub = self.judge(ref, stack) if isinstance(ref, str) and ref in self.manifests else None
            ingredients.append((ing, sub))
        parent = next(((i, v) for i, v in ingredients if i.get("relationship") == "parentOf"), None)
        with_manifest = [(i, v) for i, v in ingredients if v is not None]
        opened = any(a["action"] == "c2pa.opened" for a in actions)
        if parent is None and not created and (opened or not edits) and len(with_manifest) == 1:
            # The one ingredient with a manifest is the origin: the file opened (Photoshop lists a
            # Firefly image it opened as componentOf), or a re-signing/conversion step.
            parent = with_manifest[0]
        parent_v = parent[1] if parent else None
        parent_name = f"ingredient '{_text(parent[0].get('title')) or '?'}'" if parent else ""

        if parent_v is not None and parent_v.signal == "ai" and not created:
            return _Verdict("ai", [f"made from AI-generated {parent_name}, later edited"] + parent_v.reasons)
        action_dsts = [(a, a["digitalSourceType"]) for a in actions if isinstance(a.get("digitalSourceType"), str)]
        composite = list(dict.fromkeys(f"{a['action']} as {dst_code(dst)}{who(a)}"
                                       for a, dst in action_dsts if dst_signal(dst) == "ai-edited"))
        if composite:
            return _Verdict("ai-edited", composite)
        for value, where in assertion_dsts:
            if dst_signal(value) == "ai-edited":
                return _Verdict("ai-edited", [f"{where} declares {dst_code(value)}"])

        for a, dst in action_dsts:
            if a["action"] not in CREATED and dst_signal(dst) == "ai":
                return _Verdict("ai-edited", [f"{a['action']} as {dst_code(dst)}{who(a)}"])
        for a in edits:
            tool = match_ai_tool(_agent_name(a.get("softwareAgent")) or "")
            if tool:
                return _Verdict("ai-edited", [f"{a['action']} by {tool}"])
        for ing, sub in ingredients:
            if sub is not None and sub.signal in ("ai", "ai-edited") and (parent is None or ing is not parent[0]):
                title = _text(ing.get("title")) or "?"
                return _Verdict("ai-edited", [f"AI ingredient '{title}' ({ing.get('relationship', '?')})"]
                                + sub.reasons)
        if parent_v is not None and parent_v.signal == "ai-edited":
            return _Verdict("ai-edited", [f"derived from AI-edited {parent_name}"] + parent_v.reasons)

        # No source type at all: fall back on a generator that is an AI service.
        if not action_dsts and not assertion_dsts:
            ai_gen = match_ai_tool(_generator(m) or "") or match_ai_tool(str(m.get("claim_generator") or ""))
            if ai_gen:
                if (parent_v is not None and parent_v.signal in ("camera", "editor")) or edits:
                    return _Verdict("ai-edited", [f"claim generator is {ai_gen}"])
                return _Verdict("ai", [f"claim generator is {ai_gen}"])

        edit_names = sorted({a["action"] for a in edits})
        edit_note = [f"later edits: {', '.join(edit_names)}"] if edit_names else []
        for a in created:
            dst = a.get("digitalSourceType")
            if isinstance(dst, str) and dst_signal(dst) == "camera":
                return _Verdict("camera", [f"{a['action']} as {dst_code(dst)}{who(a)}"] + edit_note)
        for value, where in assertion_dsts:
            if dst_signal(value) == "camera":
                return _Verdict("camera", [f"{where} declares {dst_code(value)}"] + edit_note)
        if parent_v is not None and parent_v.signal == "camera" and not created:
            return _Verdict("camera", [f"derived from captured {parent_name}"] + parent_v.reasons + edit_note)
        if edits:
            editor = match_editor(gen)
            return _Verdict("editor", [f"edits by {editor or gen}: {', '.join(edit_names)}"])
        for a in created:
            dst = a.get("digitalSourceType")
            if isinstance(dst, str) and dst_signal(dst) == "editor":
                return _Verdict("editor", [f"{a['action']} as {dst_code(dst)}{who(a)}"])
        if parent_v is not None and parent_v.signal == "editor" and not created:
            return _Verdict("editor", [f"derived from edited {parent_name}"] + parent_v.reasons)
        if created:
            dst = created[0].get("digitalSourceType")
            if not isinstance(dst, str):
                return _Verdict("none", ["c2pa.created with no source type"])
            return _Verdict("none", [f"c2pa.created as {dst_code(dst)}: {dst_meaning(dst)}"])
        return _Verdict("none", [])


def _chain_order(st: _Store, active_label: str | None) -> list[str]:
    """Manifest labels in provenance order: the active manifest, then its ingredients' manifests
    depth-first in the order each manifest lists them; manifests no ingredient points at come last,
    sorted by label.

    Why: c2pa-python's `manifests` object has no stable key order between runs, so walking it as
    given made the record (and anything derived from it) differ from scan to scan.
    """
    order: list[str] = []
    seen: set[str] = set()

    def visit(label: str, depth: int) -> None:
        if label in seen or label not in st.manifests or depth > MAX_DEPTH:
            return
        seen.add(label)
        order.append(label)
        for ing in st.manifests[label].get("ingredients") or []:
            ref = ing.get("active_manifest") if isinstance(ing, dict) else None
            if isinstance(ref, str):
                visit(ref, depth + 1)

    if isinstance(active_label, str):
        visit(active_label, 0)
    order += sorted(label for label in st.manifests if label not in seen)
    return order


def _chain(st: _Store, active_label: str | None) -> list[tuple[str, dict[str, Any]]]:
    return [(label, st.manifests[label]) for label in _chain_order(st, active_label)]


def _chain_details(
    st: _Store, active_label: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    actions, dsts, ingredients = [], [], []
    for label in _chain_order(st, active_label):
        m = st.manifests[label]
        for a in _actions(m):
            entry: dict[str, Any] = {"manifest": _text(label), "action": _text(a["action"])}
            agent = _agent_name(a.get("softwareAgent"))
            if agent:
                entry["software_agent"] = agent
            if isinstance(a.get("digitalSourceType"), str):
                entry["digital_source_type"] = dst_code(a["digitalSourceType"])
                dsts.append({"manifest": _text(label), "where": entry["action"],
                             "code": entry["digital_source_type"], "uri": _text(a["digitalSourceType"])})
            actions.append(entry)
        for value, where in _assertion_dsts(m):
            dsts.append({"manifest": _text(label), "where": where, "code": dst_code(value), "uri": _text(value)})
        for ing in m.get("ingredients") or []:
            if isinstance(ing, dict):
                ref = ing.get("active_manifest")
                ingredients.append({
                    "in_manifest": _text(label),
                    "title": _text(ing.get("title")),
                    "relationship": _text(ing.get("relationship")),
                    "manifest": _text(ref) if isinstance(ref, str) else None,
                    "signal": st.judge(ref).signal if isinstance(ref, str) and ref in st.manifests else None,
                })
    return actions, dsts, ingredients


_LEADS = {
    "ai": "Content Credentials declare the image AI-generated",
    "ai-edited": "Content Credentials declare an edit with generative AI",
    "camera": "Content Credentials record a camera capture",
    "editor": "Content Credentials record edits, none with generative AI",
    "none": "Content Credentials present, declaring neither AI nor a camera capture",
}


def _store_validation_only(store: dict[str, Any], st: _Store, summary: str) -> EvidenceItem:
    """A store whose active manifest the library could not load: keep its state and codes."""
    active_label = store.get("active_manifest")
    label = active_label if isinstance(active_label, str) else None
    check = Validation(store, _chain(st, label), label)
    state = check.state if isinstance(check.state, str) else None
    details: dict[str, Any] = {"manifest_count": len(st.manifests), "unreadable": True,
                               "active_manifest": _text(active_label) if isinstance(active_label, str) else None,
                               "validation_state": state, "validation_outcome": check.outcome,
                               "validation_failures": check.entries[:MAX_LIST]}
    words = [f"{e['code']} ({e['explanation']})" if e.get("explanation") else e["code"]
             for e in check.of("integrity")]
    if words:
        summary += f"; the library reports validation {state or 'failures'}: " + ", ".join(words[:3])
    return EvidenceItem(SOURCE, "none", summary[:600], details)


def assess_store(store: dict[str, Any], trust_lists: list[dict[str, Any]] | None = None) -> EvidenceItem:
    """The evidence item for one manifest store as c2pa-python's Reader.json() gives it, read with
    `trust_lists` (what c2pa_trust says was configured; none: every signer untrusted)."""
    st = _Store(store)
    active_label = store.get("active_manifest")
    if not isinstance(active_label, str) or active_label not in st.manifests:
        return _store_validation_only(store, st, "C2PA manifest store has no readable active manifest")
    active = st.manifests[active_label]
    verdict = st.judge(active_label)
    check = Validation(store, _chain(st, active_label), active_label)
    state = check.state if isinstance(check.state, str) else (
        "Invalid" if check.of("integrity") else "Valid")
    outcome = check.outcome
    valid = outcome in ("valid", "trusted")
    integrity, trust, not_checked = check.of("integrity"), check.of("trust"), check.of("not-checked")
    signal = verdict.signal
    reasons = list(verdict.reasons)
    if signal == "camera" and not valid:
        signal = "none"
        reasons.insert(0, "declares a camera capture, but the manifest fails validation"
                       if outcome == "integrity-failure" else
                       "declares a camera capture, but the library's validation codes contradict each other")

    sig = active.get("signature_info") if isinstance(active.get("signature_info"), dict) else {}
    signer = {k: _text(sig.get(k)) for k in ("issuer", "common_name", "alg", "cert_serial_number") if sig.get(k)}
    actions, dsts, ingredients = _chain_details(st, active_label)
    truncated = len(check.entries) > MAX_LIST or len(actions) > MAX_LIST or len(dsts) > MAX_LIST \
        or len(ingredients) > MAX_LIST
    # The active manifest's signer; an ingredient's untrusted signer is listed, not summarised.
    untrusted = any(e["code"] == UNTRUSTED and e["where"] == "active manifest" for e in trust)
    details: dict[str, Any] = {
        "validation_state": state,
        "validation_outcome": outcome,
        "valid": valid,
        "validation_failures": check.entries[:MAX_LIST],
        "validation_informational": sorted({e["code"] for e in not_checked})[:MAX_LIST],
        "signer_untrusted": untrusted,
        "trust_lists": list(trust_lists or []),
        "active_manifest": _text(active_label),
        "claim_generator": _text(active.get("claim_generator")) if active.get("claim_generator") else None,
        "claim_generator_info": _generator_info(active),
        "generator": _generator(active),
        "signer": signer,
        "signing_time": _text(sig.get("time")),
        "title": _text(active.get("title")),
        "actions": actions[:MAX_LIST],
        "digital_source_types": dsts[:MAX_LIST],
        "ingredients": ingredients[:MAX_LIST],
        "manifest_count": len(st.manifests),
        "reasons": [r[:MAX_TEXT] for r in reasons[:MAX_LIST]],
    }
    if truncated:
        details["truncated"] = True

    claims = "; ".join(reasons[:3])
    failure = None
    codes = list(dict.fromkeys(e["code"] for e in integrity)) or [state]
    if integrity:
        failure = f"({codes_text(integrity)}): {integrity_sentence(integrity)}"
    parts: list[str]
    if failure is not None and signal in ("ai", "ai-edited"):
        # The claim is what decides the verdict, so it leads; the failure follows at once, kept
        # (up to its first code) within SUMMARY_LEAD characters: the claim's reasons stay inline
        # only when they fit, else they come right after the failure.
        tail = f" — but the manifest FAILS validation {failure}"
        room = SUMMARY_LEAD - len(_LEADS[signal]) - len(" ()") - len(f" — but the manifest FAILS validation ({codes[0]},")
        inline = bool(claims) and len(claims) <= room
        parts = [_LEADS[signal] + (f" ({claims})" if inline else "") + tail]
        if claims and not inline:
            parts.append(f"declared: {claims}")
    else:
        parts = [_LEADS[signal] + (f" ({claims})" if claims else "")]
        if failure is not None:
            # First, so that a shortened summary (the table's "why") still says the manifest is broken
            parts.insert(0, f"Content Credentials FAIL validation {failure}")
    who = f"made by {details['generator'] or 'an unnamed generator'}"
    if signer.get("issuer"):
        who += f", signed by {signer['issuer']}"
    if details["signing_time"]:
        who += f" at {details['signing_time']}"
    parts.append(who)
    check_words = f"validation {state}"
    if integrity:
        check_words += ": " + codes_text(integrity, 6)
    elif state == "Invalid" and not check.contradicted:
        check_words += " by the library's count, from trust or offline-only checks alone (no tampering found)"
    parts.append(check_words)
    for e in check.contradicted:
        # The library's own words, not a sentence it did not say.
        parts.append(f"the library reports both {e['code'][: -len('mismatch')]}match and {e['code']}"
                     + (f" ('{e['explanation']}')" if e.get("explanation") else "")
                     + "; not counted as tampering")
    other_trust = [e for e in trust if e["code"] != UNTRUSTED]
    if other_trust:
        parts.append(f"signer credential problem, not tampering: {codes_text(other_trust)}")
    if untrusted:
        parts.append("signer not on a configured trust list" if details["trust_lists"]
                     else "signer not checked against a trust list (none configured)")
    elif outcome == "trusted":
        parts.append("signer trusted by " + ", ".join(t.get("file", "?") for t in details["trust_lists"]))
    if not_checked:
        parts.append(f"not checked offline: {codes_text(not_checked)}")
    return EvidenceItem(SOURCE, signal, "; ".join(parts), details, strong=signal in ("ai", "ai-edited"))


def _unreadable(summary: str, exc: BaseException, **extra: Any) -> EvidenceItem:
    # "unreadable": data is there but what it declares is unknown (fusion says so).
    details = {"error": _text(str(exc)) or type(exc).__name__, "error_type": type(exc).__name__,
               "unreadable": True}
    details.update(extra)
    return EvidenceItem(SOURCE, "none", summary[:600], details)


def read(media: Media) -> list[EvidenceItem]:
    mime = MIME_TYPES.get(media.format or "")
    if mime is None or not has_manifest_marker(media.data, media.format):
        return []
    try:
        lib = _library()
    except ImportError as exc:
        return [_unreadable("C2PA data may be present, but c2pa-python is not installed", exc)]
    if not hasattr(lib, "Context"):  # before ~0.2x there was no per-reader settings: no offline guarantee
        return [EvidenceItem(SOURCE, "none", "C2PA data may be present; c2pa-python is too old to read "
                             "it offline (needs Context settings, 0.38 tested)",
                             {"c2pa_python": _text(getattr(lib, "__version__", "unknown")), "unreadable": True})]
    try:
        reader = lib.Reader.try_create(mime, io.BytesIO(media.data), None, offline_context(lib))
        if reader is None:
            return []
        with reader:
            text = reader.json()
    except lib.C2paError as exc:
        # c2pa-rs words a refused remote fetch "Remote: …", which the binding maps to the base class.
        if isinstance(exc, lib.C2paError.RemoteManifest) or str(exc).startswith("Remote"):
            url = re.search(r"https?://[^\s\"'<>]+", str(exc))
            where = url.group(0) if url else "a remote URL"
            return [_unreadable(f"Content Credentials are referenced at {where}; not fetched "
                                "(fakescope reads offline), so not checked", exc, remote_manifest=_text(where),
                                validation_outcome="not-checked")]
        return [_unreadable(f"C2PA data present but cannot be read: {str(exc)[:200]}", exc)]
    except Exception as exc:  # native layer on hostile bytes: report, never crash the scan
        return [_unreadable(f"C2PA reader failed: {type(exc).__name__}: {str(exc)[:200]}", exc)]
    try:
        store = json.loads(text)
    except (TypeError, ValueError) as exc:
        return [_unreadable("C2PA manifest store JSON cannot be parsed", exc)]
    if not isinstance(store, dict):
        return [EvidenceItem(SOURCE, "none", "C2PA manifest store JSON is not an object", {"unreadable": True})]
    return [assess_store(store, trust_lists_used())]
