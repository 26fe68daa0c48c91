"""C2PA validation results sorted into the three outcome classes that must never be mixed up, each
placed where it sits in the manifest chain (the active manifest or an ingredient).

Reads what c2pa-python's Reader.json() reports: the top-level `validation_status`, the
`validation_results` (active manifest and ingredient deltas), and each ingredient's own
`validation_status` (where c2pa-rs keeps, for example, an ingredient's bad signature).
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 300


def clip_text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value[:MAX_TEXT]


def status_entries(entries: Any) -> list[dict[str, Any]]:
    out = []
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and isinstance(e.get("code"), str):
            out.append({"code": clip_text(e["code"]), "explanation": clip_text(e.get("explanation")),
                        "url": clip_text(e.get("url"))})
    return out


# Validation outcome classes (C2PA 2.x "Validation" status codes; CAWG identity 1.x):
#   integrity   — the library confirms a broken signature or binding: tampering or corruption
#   trust       — the signer's credential is untrusted, expired or revoked: who signed, not what
#   not-checked — a check that needs the network (DID resolution, OCSP, a remote manifest); offline
#                 it did not run, which is neither a pass nor a failure
# Success codes are never failures; codes no class names are integrity failures (the library listed
# them as failures, and it knows better than a guess).
_TRUST_PREFIXES = ("signingcredential.", "cawg.x509.credential.", "timestamp.untrusted",
                   "timestamp.outsidevalidity", "claimsignature.outsidevalidity")
_NOT_CHECKED = re.compile(r"(did_unavailable|unavailable|ocsp\.(skipped|inaccessible)|inaccessible|"
                          r"remote|\.fetch)", re.IGNORECASE)
_SUCCESS = re.compile(r"\.(match|validated|trusted|insidevalidity|notrevoked|success)$", re.IGNORECASE)
# Informational wherever it is listed: an ingredient without a manifest of its own.
_INFORMATIONAL = frozenset({"ingredient.unknownprovenance"})
OUTCOME_CLASSES = ("integrity", "trust", "not-checked")


def outcome_class(code: str) -> str | None:
    """'integrity', 'trust', 'not-checked', or None for a success code."""
    low = code.lower()
    if _SUCCESS.search(low) or low in _INFORMATIONAL:
        return None
    if _NOT_CHECKED.search(low):
        return "not-checked"
    if low.startswith(_TRUST_PREFIXES):
        return "trust"
    return "integrity"


def _manifest_label(url: str | None) -> str | None:
    """'self#jumbf=/c2pa/adobe:urn:uuid:…/c2pa.signature' → 'adobe:urn:uuid:…'."""
    if not url or "/c2pa/" not in url:
        return None
    return url.split("/c2pa/", 1)[1].split("/", 1)[0] or None


class Validation:
    """Every validation status the library reports, on the active manifest and on each ingredient,
    each with its class and where it sits."""

    def __init__(self, store: dict[str, Any], chain: list[tuple[str, dict[str, Any]]],
                 active_label: str | None) -> None:
        self.state = store.get("validation_state")
        self.entries: list[dict[str, Any]] = []
        self.contradicted: list[dict[str, Any]] = []
        self._seen: set[tuple[Any, Any]] = set()
        self._where = self._places(chain, active_label)
        results = store.get("validation_results") if isinstance(store.get("validation_results"), dict) else {}
        active = results.get("activeManifest") if isinstance(results.get("activeManifest"), dict) else {}
        successes = {(e["code"], e["url"]) for e in status_entries(active.get("success"))}
        for block in [active] + [d.get("validationDeltas") for d in results.get("ingredientDeltas") or []
                                 if isinstance(d, dict)]:
            if isinstance(block, dict):
                self._add_all(block.get("failure"), successes)
                # Informational codes are not failures; of them only the checks that could not run
                # offline (OCSP skipped) are reported, as not checked.
                for e in status_entries(block.get("informational")):
                    if outcome_class(e["code"]) == "not-checked":
                        self._add(e, successes)
        self._add_all(store.get("validation_status"), successes)
        # Failures the library records on an ingredient (its own validation_status) are not always in
        # the top-level list: c2pa-rs keeps a bad ingredient signature there only.
        for _label, manifest in chain:
            for ing in manifest.get("ingredients") or []:
                if isinstance(ing, dict):
                    where = f"ingredient '{clip_text(ing.get('title')) or '?'}'"
                    self._add_all(ing.get("validation_status"), successes, where)
                    sub = ing.get("validation_results")
                    if isinstance(sub, dict) and isinstance(sub.get("activeManifest"), dict):
                        self._add_all(sub["activeManifest"].get("failure"), successes, where)

    @staticmethod
    def _places(chain: list[tuple[str, dict[str, Any]]], active_label: str | None) -> dict[str, str]:
        places: dict[str, str] = {}
        if isinstance(active_label, str):
            places[active_label] = "active manifest"
        for _label, manifest in chain:
            for ing in manifest.get("ingredients") or []:
                ref = ing.get("active_manifest") if isinstance(ing, dict) else None
                if isinstance(ref, str):
                    places.setdefault(ref, f"ingredient '{clip_text(ing.get('title')) or '?'}'")
        return places

    def _add_all(self, entries: Any, successes: set[tuple[Any, Any]], where: str | None = None) -> None:
        for e in status_entries(entries):
            self._add(e, successes, where)

    def _add(self, e: dict[str, Any], successes: set[tuple[Any, Any]], where: str | None = None) -> None:
        cls = outcome_class(e["code"])
        key = (e["code"], e["url"])
        if cls is None or key in self._seen:
            return
        self._seen.add(key)
        label = _manifest_label(e["url"])
        e["where"] = where or self._where.get(label or "", f"manifest {label}" if label else "the manifest store")
        e["class"] = cls
        # The library's own codes disagree (Truepic: dataHash.mismatch and dataHash.match on the same
        # assertion): report its words, do not call it tampering.
        if cls == "integrity" and e["code"].endswith(".mismatch") \
                and (e["code"][: -len("mismatch")] + "match", e["url"]) in successes:
            e["class"] = "contradicted"
            self.contradicted.append(e)
        self.entries.append(e)

    def of(self, cls: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["class"] == cls]

    @property
    def outcome(self) -> str:
        """integrity-failure, inconclusive (only contradicting codes), trusted, or valid."""
        if self.of("integrity"):
            return "integrity-failure"
        if self.contradicted:
            return "inconclusive"
        if self.state == "Trusted" and not self.of("trust"):
            return "trusted"
        return "valid"


def codes_text(entries: list[dict[str, Any]], limit: int = 3) -> str:
    codes = list(dict.fromkeys(f"{e['code']}" for e in entries))
    return ", ".join(codes[:limit]) + (" …" if len(codes) > limit else "")


def integrity_sentence(entries: list[dict[str, Any]]) -> str:
    """What the integrity failures are and where they sit: "an ingredient's signature is invalid …"."""
    by_place: dict[str, list[str]] = {}
    for e in entries:
        by_place.setdefault(e["where"], []).append(e["code"].lower())
    parts = []
    for where, codes in by_place.items():
        if any(c.startswith("claimsignature.") for c in codes):
            what = "signature is invalid"
        elif any(c.endswith("hash.mismatch") and not c.startswith("assertion.hasheduri") for c in codes):
            what = "content no longer matches its signed hash (bytes changed after signing)"
        elif any(c.endswith(".mismatch") for c in codes):
            what = "signed assertions do not match their hashes"
        else:
            what = "manifest fails validation"
        if where == "active manifest":
            parts.append(f"the {what.replace('signature', 'manifest signature', 1) if what.startswith('signature') else what}")
        elif where.startswith("ingredient "):
            parts.append(f"an ingredient's {what} ({where})")
        else:
            parts.append(f"{where}: {what}")
    return "; ".join(parts)
