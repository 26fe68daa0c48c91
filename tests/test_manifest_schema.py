"""fakescope.json's JSON Schema (shipped, for manifest authors and their tools) says what protocol.py
accepts: each manifest below is accepted by both or refused by both."""

from __future__ import annotations

import pytest

from fakescope_cli.protocol import ManifestError, protocol_from_manifest
from fakescope_cli.schema import load_manifest_schema

jsonschema = pytest.importorskip("jsonschema")

ACCEPTED = [
    {},
    {"schema": "fakescope-manifest/1", "description": "FakeVLM, read as it was trained",
     "prompts": {"detect": "Does the image looks real/fake?", "system": None},
     "prompt_format": "raw", "answer_prefix": "This is a", "weights_sha256": "a" * 64},
    {"label_words": {"fake": ["fake", " fake"], "real": ["real"]}, "attributes": ["hands", "text"],
     "calibration": {"method": "platt", "a": 1.5, "b": -0.2}, "max_image_pixels": 1_000_000},
    {"attributes": {"hands": "Are the hands right? fake or real?"}, "calibration": {"method": "temperature", "temperature": 2},
     "prompts": {"attribute": "By its {aspect}: fake or real?"}, "chat_template": "{{ messages }}", "answer_prefix": None},
    {"calibration": None, "max_image_pixels": None, "prompt_format": "chat"},
    {"label_words": {"fake": ["full synthetic", "tampered"], "real": ["real"]}},  # three classes, several tokens
    {"answer_marker": "<CONCLUSION>This image is", "marker_max_tokens": 300, "answer_prefix": None},
]
REFUSED = [
    {"answer_prefx": "This is a"},  # a typo must not fall back to a default silently
    {"answer_prefix": ""},
    {"answer_prefix": 3},
    {"prompt_format": "jinja"},
    {"prompt_format": "raw", "chat_template": "{{ messages }}"},
    {"schema": "fakescope-manifest/2"},
    {"prompts": {"attribute": "no placeholder"}},
    {"prompts": {"verdict": "x"}},
    {"label_words": {"fake": ["fake"]}},
    {"label_words": {"fake": [], "real": ["real"]}},
    {"label_words": {"fake": ["  "], "real": ["real"]}},
    {"attributes": ["detect"]},
    {"calibration": {"method": "platt", "a": 1.0}},
    {"calibration": {"method": "temperature", "temperature": 0}},
    {"max_image_pixels": 10},
    {"weights_sha256": "ABC"},
    {"answer_marker": "<CONCLUSION>", "answer_prefix": "This is a"},
    {"answer_marker": " "},
    {"marker_max_tokens": 0},
    {"marker_max_tokens": 1.5},
]


@pytest.mark.parametrize("manifest", ACCEPTED)
def test_accepted_by_the_schema_and_the_loader(manifest):
    jsonschema.Draft202012Validator(load_manifest_schema()).validate(manifest)
    protocol_from_manifest(manifest)


@pytest.mark.parametrize("manifest", REFUSED)
def test_refused_by_the_schema_and_the_loader(manifest):
    assert not jsonschema.Draft202012Validator(load_manifest_schema()).is_valid(manifest)
    with pytest.raises(ManifestError):
        protocol_from_manifest(manifest)


def test_the_schema_is_well_formed_and_names_every_key_the_loader_takes():
    from fakescope_cli.protocol import _TOP_KEYS

    schema = load_manifest_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == _TOP_KEYS
