"""The IPTC DigitalSourceType vocabulary: the docs table matches the code, and every code is judged
as the vocabulary defines it, in XMP and in a C2PA action alike (issue #20)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fakescope_cli.evidence import c2pa, xmp
from fakescope_cli.evidence.source_types import BY_CODE, SOURCE_TYPES, dst_signal, lookup
from fakescope_cli.media import Media

REPO = Path(__file__).resolve().parent.parent
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# The current IPTC scheme (release 2024-10-23, http://cv.iptc.org/newscodes/digitalsourcetype/):
# every code it lists must be in the table, retired ones included.
IPTC_CODES = (
    "digitalCapture computationalCapture negativeFilm positiveFilm print minorHumanEdits humanEdits "
    "algorithmicallyEnhanced softwareImage digitalArt digitalCreation dataDrivenMedia "
    "trainedAlgorithmicMedia algorithmicMedia screenCapture virtualRecording composite compositeCapture "
    "compositeSynthetic compositeWithTrainedAlgorithmicMedia").split()

# What each code must mean for a verdict: written out here, not read from the code under test.
EXPECTED: dict[str, str | None] = {
    "digitalCapture": "camera", "computationalCapture": "camera", "negativeFilm": "camera",
    "positiveFilm": "camera", "print": "camera",
    "humanEdits": "editor", "minorHumanEdits": "editor", "algorithmicallyEnhanced": "editor",
    "digitalCreation": "editor", "digitalArt": "editor", "softwareImage": "editor",
    "composite": "editor", "compositeCapture": "editor",
    "dataDrivenMedia": None, "screenCapture": None, "virtualRecording": None, "empty": None,
    "algorithmicMedia": None,  # a formula or procedure: synthetic, not a generative model
    "trainedAlgorithmicMedia": "ai", "trainedAlgorithmicData": "ai",
    "compositeSynthetic": "ai-edited", "compositeWithTrainedAlgorithmicMedia": "ai-edited",
}


def _docs_table() -> dict[str, tuple[str | None, str]]:
    text = (REPO / "docs/provenance.md").read_text(encoding="utf-8")
    block = text.split("<!-- dst-table", 1)[1].split("<!-- /dst-table -->", 1)[0]
    rows: dict[str, tuple[str | None, str]] = {}
    for line in block.splitlines():
        m = re.match(r"\|\s*`([A-Za-z]+)`\s*\|\s*([^|]+?)\s*\|\s*(.+?)\s*\|$", line)
        if m:
            rows[m.group(1)] = (None if m.group(2) == "—" else m.group(2), m.group(3))
    return rows


def test_docs_table_matches_the_code() -> None:
    docs = _docs_table()
    code = {t.code: (t.signal, t.meaning) for t in SOURCE_TYPES}
    assert docs == code


def test_every_iptc_code_is_in_the_table() -> None:
    assert set(IPTC_CODES) <= {t.code for t in SOURCE_TYPES}
    assert set(EXPECTED) == {t.code for t in SOURCE_TYPES}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_code_means_what_the_vocabulary_says(code: str) -> None:
    expected = EXPECTED[code]
    for value in (IPTC + code, code.upper(), f"digsrctype:{code}", f" {IPTC}{code}/ "):
        assert dst_signal(value) == expected, value
    assert lookup(code) is BY_CODE[code.lower()]


def _xmp_item(code: str) -> list:
    packet = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
              f'Iptc4xmpExt:DigitalSourceType="{IPTC}{code}"/></rdf:RDF></x:xmpmeta>')
    media = Media(path="x.gif", data=b"GIF89a" + packet.encode(), size=0, mtime_ns=0)
    media.__dict__["format"] = "GIF"
    media.__dict__["info"] = {"xmp": packet.encode()}
    return xmp.read(media)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_code_in_xmp_gives_its_signal(code: str) -> None:
    (item,) = _xmp_item(code)
    expected = EXPECTED[code]
    assert item.signal == (expected or "none")
    assert item.strong == (expected in ("ai", "ai-edited"))


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_code_as_a_c2pa_creation_gives_its_signal(code: str) -> None:
    store = {"active_manifest": "urn:a", "validation_state": "Valid", "manifests": {"urn:a": {
        "claim_generator_info": [{"name": "test"}],
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": IPTC + code}]}}]}}}
    item = c2pa.assess_store(store)
    expected = EXPECTED[code]
    assert item.signal == (expected or "none"), item.summary
    assert item.strong == (expected in ("ai", "ai-edited"))
    assert code in item.summary
