"""C2PA chain judgement and validation classes on hand-built manifest stores (issue #20): the origin
decides, failures on ingredients are found and placed, and the three outcome classes never mix."""

from __future__ import annotations

from typing import Any

import pytest

from fakescope_cli.evidence import c2pa

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _manifest(gen: str, actions: list[dict[str, Any]], ingredients: list[dict[str, Any]] | None = None) -> dict:
    return {"claim_generator_info": [{"name": gen}], "ingredients": ingredients or [],
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}]}


def _store(manifests: dict[str, dict], **extra: Any) -> dict[str, Any]:
    return {"active_manifest": "urn:active", "manifests": manifests, "validation_state": "Valid", **extra}


GEN_FILL = {"action": "c2pa.edited", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia",
            "softwareAgent": {"name": "Adobe Firefly"}}


@pytest.mark.parametrize("origin_dst, relationship, expected", [
    ("trainedAlgorithmicMedia", "parentOf", "ai"),  # generated, then edited: still generated
    ("trainedAlgorithmicMedia", "componentOf", "ai"),  # Photoshop lists the opened file as a component
    ("digitalCapture", "parentOf", "ai-edited"),  # a photo changed with generative fill
    ("algorithmicMedia", "parentOf", "ai-edited"),  # a formula image changed with generative fill
])
def test_the_origin_decides(origin_dst: str, relationship: str, expected: str) -> None:
    store = _store({
        "urn:active": _manifest("Adobe Photoshop", [{"action": "c2pa.opened"}, GEN_FILL],
                                [{"title": "origin.jpg", "relationship": relationship, "active_manifest": "urn:origin"}]),
        "urn:origin": _manifest("origin", [{"action": "c2pa.created", "digitalSourceType": IPTC + origin_dst}]),
    })
    item = c2pa.assess_store(store)
    assert item.signal == expected and item.strong


def test_a_generated_origin_without_later_ai_edits_stays_ai() -> None:
    store = _store({
        "urn:active": _manifest("Adobe Photoshop", [{"action": "c2pa.opened"}, {"action": "c2pa.cropped"}],
                                [{"title": "gen.jpg", "relationship": "parentOf", "active_manifest": "urn:gen"}]),
        "urn:gen": _manifest("Firefly", [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]),
    })
    item = c2pa.assess_store(store)
    assert item.signal == "ai" and "made from AI-generated ingredient 'gen.jpg'" in item.summary


@pytest.mark.parametrize("code, cls", [
    ("claimSignature.mismatch", "integrity"), ("assertion.dataHash.mismatch", "integrity"),
    ("assertion.hashedURI.mismatch", "integrity"), ("assertion.required.missing", "integrity"),
    ("claim.malformed", "integrity"),
    ("signingCredential.untrusted", "trust"), ("signingCredential.expired", "trust"),
    ("signingCredential.revoked", "trust"), ("cawg.x509.credential.untrusted", "trust"),
    ("claimSignature.outsideValidity", "trust"),
    ("cawg.ica.did_unavailable", "not-checked"), ("signingCredential.ocsp.skipped", "not-checked"),
    ("signingCredential.ocsp.inaccessible", "not-checked"), ("manifest.inaccessible", "not-checked"),
    ("assertion.dataHash.match", None), ("claimSignature.validated", None), ("ingredient.unknownProvenance", None),
])
def test_outcome_class_of_each_code(code: str, cls: str | None) -> None:
    assert c2pa.outcome_class(code) == cls


def _entry(code: str, url: str, explanation: str = "x") -> dict[str, str]:
    return {"code": code, "url": url, "explanation": explanation}


def test_a_failure_on_an_ingredient_is_placed_there() -> None:
    bad = _entry("claimSignature.mismatch", "self#jumbf=/c2pa/urn:ing/c2pa.signature", "claim signature is not valid")
    store = _store({
        "urn:active": _manifest("editor", [{"action": "c2pa.placed"}],
                                [{"title": "part.jpg", "relationship": "componentOf", "active_manifest": "urn:ing",
                                  "validation_status": [bad]}]),
        "urn:ing": _manifest("maker", [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}]),
    })
    item = c2pa.assess_store(store)
    (failure,) = [f for f in item.details["validation_failures"] if f["class"] == "integrity"]
    assert failure["where"] == "ingredient 'part.jpg'"
    assert item.details["validation_outcome"] == "integrity-failure" and item.details["valid"] is False
    assert "an ingredient's signature is invalid (ingredient 'part.jpg')" in item.summary


def test_trust_and_offline_findings_never_read_as_failure() -> None:
    store = _store({"urn:active": _manifest("cam", [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}])},
                   validation_state="Invalid",
                   validation_status=[_entry("signingCredential.expired", "self#jumbf=/c2pa/urn:active/c2pa.signature"),
                                      _entry("cawg.ica.did_unavailable", "self#jumbf=/c2pa/urn:active/cawg.identity")])
    item = c2pa.assess_store(store)
    assert item.details["validation_outcome"] == "valid" and item.signal == "camera"
    assert "FAIL" not in item.summary
    assert "signer credential problem, not tampering: signingCredential.expired" in item.summary
    assert "not checked offline: cawg.ica.did_unavailable" in item.summary


def test_contradicting_codes_are_not_tampering() -> None:
    url = "self#jumbf=/c2pa/urn:active/c2pa.assertions/c2pa.hash.data"
    store = _store({"urn:active": _manifest("cam", [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}])},
                   validation_state="Invalid",
                   validation_status=[_entry("assertion.dataHash.mismatch", url, "exclusion does not match")],
                   validation_results={"activeManifest": {
                       "success": [_entry("assertion.dataHash.match", url, "data hash valid")],
                       "failure": [_entry("assertion.dataHash.mismatch", url, "exclusion does not match")]}})
    item = c2pa.assess_store(store)
    assert item.details["validation_outcome"] == "inconclusive"
    assert "bytes changed" not in item.summary and "FAIL" not in item.summary
    assert "('exclusion does not match')" in item.summary
    assert item.signal == "none"  # a capture claim counts only when validation is clean


def test_a_real_mismatch_without_a_match_is_tampering() -> None:
    url = "self#jumbf=/c2pa/urn:active/c2pa.assertions/c2pa.hash.data"
    store = _store({"urn:active": _manifest("x", [{"action": "c2pa.color_adjustments"}])}, validation_state="Invalid",
                   validation_status=[_entry("assertion.dataHash.mismatch", url)])
    item = c2pa.assess_store(store)
    assert item.details["validation_outcome"] == "integrity-failure"
    assert item.summary.startswith("Content Credentials FAIL validation (assertion.dataHash.mismatch)")
    assert "bytes changed after signing" in item.summary
