"""record.schema.json: shipped, valid draft 2020-12, in step with ScanRecord, and actually strict."""

from __future__ import annotations

import copy
import dataclasses
import sys
from typing import Any

import pytest

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.evidence.base import SIGNALS, EvidenceItem
from fakescope_cli.record import RECORD_SCHEMA_VERSION, VERDICTS, ScanRecord
from fakescope_cli.schema import load_record_schema, record_errors, validate_record
from tests.record_examples import all_examples, error_record, uncertain_record

jsonschema = pytest.importorskip("jsonschema")


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_record_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_matches_the_record_model() -> None:
    schema = load_record_schema()
    blank = ScanRecord(path="x").to_dict()
    # video is the one optional top-level key: only videos and animations carry it.
    assert set(schema["properties"]) == set(blank) | {"video"}
    assert set(blank) == set(schema["required"])
    assert schema["properties"]["schema_version"]["const"] == RECORD_SCHEMA_VERSION
    assert tuple(schema["properties"]["verdict"]["enum"]) == VERDICTS
    defs = schema["$defs"]
    assert tuple(defs["evidence"]["properties"]["signal"]["enum"]) == SIGNALS
    item = EvidenceItem("exif", "camera", "s").to_dict()
    assert set(defs["evidence"]["properties"]) == set(item) == set(defs["evidence"]["required"])
    detector_keys = {"id", "version", "weights_sha256"} | set(DetectorResult(p_fake=None).to_dict())
    assert set(defs["detector"]["required"]) == detector_keys
    assert set(blank["custody"]) == set(defs["custody"]["required"])
    # from_cache is the one optional custody key: only cached records carry it.
    assert set(defs["custody"]["properties"]) == set(blank["custody"]) | {"from_cache"}


@pytest.mark.parametrize("record", all_examples(), ids=lambda r: f"{r['verdict']}:{r['path'][-24:]!r}")
def test_example_records_validate(record: dict[str, Any]) -> None:
    assert record_errors(record) == []
    validate_record(record)


def test_a_bare_record_validates() -> None:
    validate_record(ScanRecord(path="a.png").to_dict())


def _broken(change: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    record = copy.deepcopy(base or uncertain_record())
    change(record)
    return record


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("bad verdict", lambda r: r.update(verdict="fake")),
        ("unknown top-level key", lambda r: r.update(extra=1)),
        ("missing custody", lambda r: r.pop("custody")),
        ("p_fake above 1", lambda r: r.update(p_fake=1.5)),
        ("p_fake as text", lambda r: r.update(p_fake="0.5")),
        ("bad evidence signal", lambda r: r.update(evidence=[EvidenceItem("x", "ai", "s").to_dict() | {"signal": "robot"}])),
        ("evidence without strong", lambda r: r.update(evidence=[{"source": "x", "signal": "ai", "summary": "s", "details": {}}])),
        ("uppercase sha256", lambda r: r.update(sha256="AB" * 32)),
        ("negative size", lambda r: r.update(bytes=-1)),
        ("unknown format", lambda r: r.update(format="jpeg")),
        ("attribute not a probability", lambda r: r["detector"]["attributes"].update(texture=2)),
        ("detector without raw", lambda r: r["detector"].pop("raw")),
        ("error code with spaces", lambda r: r.update(errors=[{"code": "Bad Code", "message": "m"}])),
        ("custody extra key", lambda r: r["custody"].update(host="x")),
        ("scanned_at not a timestamp", lambda r: r["custody"].update(scanned_at="yesterday")),
        ("error verdict without errors", lambda r: r.update(verdict="error", errors=[])),
    ],
)
def test_invalid_records_fail(why: str, change: Any) -> None:
    record = _broken(change)
    assert record_errors(record), why
    with pytest.raises(jsonschema.ValidationError):
        validate_record(record)


def test_details_raw_regions_and_detector_identity_stay_open() -> None:
    record = uncertain_record()
    record["evidence"] = [EvidenceItem("generator", "ai", "s", {"anything": {"nested": [1, None]}}).to_dict()]
    record["detector"]["raw"]["future_backend_field"] = {"k": [1.0, "x"]}
    record["detector"]["regions"]["method"] = "tiles"
    record["detector"]["quantization"] = "4bit"  # a backend's describe() may add identity keys
    validate_record(record)


def test_error_record_with_provenance_verdict_is_valid() -> None:
    # Provenance may decide even when the pixels could not be decoded (analyze.py keeps the verdict).
    record = error_record()
    record["verdict"] = "ai-generated"
    validate_record(record)


def test_record_fields_are_all_described() -> None:
    schema = load_record_schema()
    fields = {f.name for f in dataclasses.fields(ScanRecord)}
    # Fields that the record dict renames or nests under custody.
    nested = {"detector_id", "detector_version", "weights_sha256", "scanned_at", "mtime"}
    assert fields - nested <= set(schema["properties"])


def test_validate_record_without_jsonschema_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import fakescope_cli.schema as schema_mod

    schema_mod._validator.cache_clear()
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # makes `import jsonschema` fail
    try:
        with pytest.raises(ImportError, match="pip install jsonschema"):
            validate_record(ScanRecord(path="a.png").to_dict())
        assert schema_mod.load_record_schema()["title"]  # loading needs no jsonschema
    finally:
        schema_mod._validator.cache_clear()


@pytest.mark.parametrize("mtime_ns", [0, 1, 999_999_999, 1_000_000_000, 1_699_999_999_999_999_999,
                                      1_700_000_000_000_000_499, 1_733_480_000_123_456_789, 1_733_480_000_999_999_500,
                                      -1, -1_500_000_000, -999_999_999, 253_402_300_799_000_000_000])
def test_file_time_reads_as_datetime_reads_it(mtime_ns):
    """record.file_time formats with `time` (no datetime import on the scan's path): the same text."""
    import datetime

    from fakescope_cli.record import file_time

    expected = datetime.datetime.fromtimestamp(mtime_ns / 1e9, datetime.timezone.utc).isoformat(timespec="seconds")
    assert file_time(mtime_ns) == expected.replace("+00:00", "Z")


def test_utc_now_is_an_iso_instant_in_milliseconds():
    import datetime

    from fakescope_cli.record import utc_now

    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    text = utc_now()
    after = datetime.datetime.now(datetime.timezone.utc)
    assert len(text) == len("2026-12-06T12:00:00.000Z") and text.endswith("Z")
    assert before <= datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) <= after
