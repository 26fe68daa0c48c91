"""`--shard K/N` partitions a tree deterministically; `fakescope merge` rebuilds one report."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURES, jsonl_records, run_cli

TREE = FIXTURES / "provenance"


@pytest.mark.slow
def test_shards_partition_and_merge_equals_single_scan(tmp_path):
    whole = jsonl_records(run_cli("scan", "--backend", "none", "-f", "jsonl", str(TREE)).stdout)
    parts = []
    for k in (1, 2, 3):
        out = tmp_path / f"s{k}.jsonl"
        proc = run_cli("scan", "--backend", "none", "-f", "jsonl", "--shard", f"{k}/3", "-o", str(out), str(TREE))
        assert proc.returncode in (0, 3)
        parts.append(jsonl_records(out.read_bytes()))
    paths = [r["path"] for part in parts for r in part]
    assert sorted(paths) == sorted(r["path"] for r in whole)  # disjoint and complete
    assert all(parts), "with this many files every shard gets some"
    again = jsonl_records(run_cli("scan", "--backend", "none", "-f", "jsonl", "--shard", "2/3", str(TREE)).stdout)
    assert [r["path"] for r in again] == [r["path"] for r in parts[1]]

    merged = run_cli("merge", *(str(tmp_path / f"s{k}.jsonl") for k in (3, 1, 2)), "-f", "json")
    doc = json.loads(merged.stdout)
    assert [r["path"] for r in doc["results"]] == [r["path"] for r in whole]
    assert doc["run"]["counts"]["files"] == len(whole)
    assert len(doc["run"]["merged_from"]) == 3
    sarif = json.loads(run_cli("merge", str(tmp_path / "s1.jsonl"), str(tmp_path / "s2.jsonl"),
                               str(tmp_path / "s3.jsonl"), "-f", "sarif").stdout)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


@pytest.mark.slow
def test_merge_tolerates_a_truncated_last_line_and_drops_duplicates(tmp_path):
    out = tmp_path / "a.jsonl"
    run_cli("scan", "--backend", "none", "-f", "jsonl", "-o", str(out), str(TREE / "c2pa"))
    text = out.read_text()
    (tmp_path / "cut.jsonl").write_text(text + text.splitlines()[0][:40])
    proc = run_cli("merge", str(out), str(tmp_path / "cut.jsonl"), "-f", "jsonl")
    assert proc.returncode in (0, 3)
    assert len(jsonl_records(proc.stdout)) == len(text.splitlines())
    assert b"duplicate" in proc.stderr


@pytest.mark.slow
def test_bad_shard_spec_is_usage_error():
    assert run_cli("scan", "--shard", "4/3", str(TREE)).returncode == 2
    assert run_cli("scan", "--shard", "x", str(TREE)).returncode == 2


# --- malformed inputs, run state, skipped counts and order (merge.py) ---

C2PA = TREE / "c2pa"


def _image(path, color=(200, 30, 30), size=(8, 8)):
    """A tiny real image; the format follows the file name."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _scan_json(out, *args):
    """`fakescope scan -f json -o out ...` (no detector: fast); returns the written document."""
    proc = run_cli("scan", "--backend", "none", "-f", "json", "-o", str(out), *args)
    assert proc.returncode in (0, 3), proc.stderr
    return json.loads(out.read_text())


def _bad_line(kind, good):
    """One malformed JSONL line, made from a real record `good`."""
    rec = json.loads(json.dumps(good))
    if kind == "number":
        return "1"
    if kind == "null":
        return "null"
    if kind == "custody-null":
        rec["custody"] = None
    elif kind == "p_fake-string":
        rec["p_fake"] = "0.9"
    elif kind == "path-number":
        rec["path"] = 5
    elif kind == "verdict-array":
        rec["verdict"] = ["likely-ai"]
    return json.dumps(rec)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "extra"),
    [("number", []), ("null", []), ("custody-null", []), ("p_fake-string", ["--fail-above", "0.5"]),
     ("path-number", []), ("verdict-array", [])],
)
def test_merge_rejects_a_malformed_record_with_file_and_line(tmp_path, kind, extra):
    good = run_cli("scan", "--backend", "none", "-f", "jsonl", str(C2PA)).stdout.decode().splitlines()
    shard = tmp_path / "shard.jsonl"
    # The bad record sits on line 2, between real ones: not a cut-off last line.
    shard.write_text("\n".join([good[0], _bad_line(kind, json.loads(good[1])), *good[2:]]) + "\n")
    proc = run_cli("merge", str(shard), "-f", "json", *extra)
    err = proc.stderr.decode()
    # Exit 1 would read as a tripped --fail-above gate; a bad input is a usage error.
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{shard}:2:" in err
    assert proc.stdout == b""


@pytest.mark.slow
def test_merge_rejects_a_malformed_json_document(tmp_path):
    doc = _scan_json(tmp_path / "a.json", str(C2PA))
    doc["results"][1] = None
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps({"run": doc["run"], "results": None}))
    for name, where in (("a.json", "results[1]"), ("b.json", "results array")):
        proc = run_cli("merge", str(tmp_path / name), "-f", "json")
        err = proc.stderr.decode()
        assert proc.returncode == 2 and "Traceback" not in err, err
        assert str(tmp_path / name) in err and where in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_merge_keeps_an_interrupted_shards_state(tmp_path):
    for k in (1, 2):
        _scan_json(tmp_path / f"s{k}.json", "--shard", f"{k}/2", str(TREE))
    cut = json.loads((tmp_path / "s2.json").read_text())
    cut["run"]["interrupted"] = True  # as a Ctrl-C'd scan writes it
    (tmp_path / "s2.json").write_text(json.dumps(cut))

    proc = run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-f", "json")
    assert proc.returncode in (0, 3)  # merge itself ran to the end: no 130
    assert json.loads(proc.stdout)["run"]["interrupted"] is True
    warning = [line for line in proc.stderr.decode().splitlines() if "partial" in line]
    assert len(warning) == 1 and str(tmp_path / "s2.json") in warning[0]
    assert str(tmp_path / "s1.json") not in warning[0]
    html = run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-f", "html").stdout.decode()
    assert "interrupted: results are partial" in html
    sarif = json.loads(run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-f", "sarif").stdout)
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is False

    whole = run_cli("merge", str(tmp_path / "s1.json"), "-f", "json")
    assert json.loads(whole.stdout)["run"]["interrupted"] is False and b"partial" not in whole.stderr


@pytest.mark.slow
def test_merge_marks_a_jsonl_shard_cut_mid_record_as_partial(tmp_path):
    text = run_cli("scan", "--backend", "none", "-f", "jsonl", str(C2PA)).stdout.decode()
    (tmp_path / "cut.jsonl").write_text(text + text.splitlines()[0][:40])  # killed mid-write
    (tmp_path / "ok.jsonl").write_text(text)
    doc = json.loads(run_cli("merge", str(tmp_path / "cut.jsonl"), "-f", "json").stdout)
    assert doc["run"]["interrupted"] is True
    assert json.loads(run_cli("merge", str(tmp_path / "ok.jsonl"), "-f", "json").stdout)["run"]["interrupted"] is False
    # a whole last line that is not JSON (it ends with a newline) was not cut off: it is malformed
    (tmp_path / "bad.jsonl").write_text(text + "not json\n")
    proc = run_cli("merge", str(tmp_path / "bad.jsonl"), "-f", "json")
    assert proc.returncode == 2 and b"bad.jsonl:" in proc.stderr and b"not a JSON record" in proc.stderr


@pytest.mark.slow
def test_merge_adds_up_skipped_counts(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _image(a / "one.png")
    _image(a / "sub" / "two.jpg")
    (a / "notes.txt").write_text("not an image")  # skipped: no image name or signature
    _image(b / "three.png")
    _image(b / "four.jpg")
    (b / "readme.txt").write_text("not an image")
    doc_a = _scan_json(tmp_path / "a.json", str(a))
    doc_b = _scan_json(tmp_path / "b.json", "--ext", "png", str(b))  # four.jpg and readme.txt: by --ext
    assert (doc_a["run"]["counts"]["skipped"], doc_b["run"]["counts"]["skipped_by_ext"]) == (1, 2)

    merged = json.loads(run_cli("merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-f", "json").stdout)
    counts = merged["run"]["counts"]
    assert (counts["files"], counts["skipped"], counts["skipped_by_ext"]) == (3, 1, 2)


@pytest.mark.slow
def test_merge_counts_a_sharded_trees_skipped_files_once(tmp_path):
    tree = tmp_path / "tree"
    for i in range(6):
        _image(tree / f"img{i}.png", color=(i * 40, 0, 0))
    (tree / "notes.txt").write_text("not an image")
    (tree / "extra.gif").write_bytes(b"not a gif at all")  # claims an image by name: a record
    whole = _scan_json(tmp_path / "whole.json", "--ext", "png,gif", str(tree))["run"]["counts"]
    shards = [_scan_json(tmp_path / f"s{k}.json", "--ext", "png,gif", "--shard", f"{k}/3", str(tree))
              for k in (1, 2, 3)]
    # Skipped files are not records: scan counts them before --shard picks its part, so each shard
    # reports the whole tree's; adding them up would count notes.txt three times.
    assert all(s["run"]["counts"]["skipped_by_ext"] == whole["skipped_by_ext"] == 1 for s in shards)
    merged = json.loads(run_cli("merge", *(str(tmp_path / f"s{k}.json") for k in (1, 2, 3)), "-f", "json").stdout)
    counts = merged["run"]["counts"]
    assert (counts["files"], counts["skipped"], counts["skipped_by_ext"]) == (
        whole["files"], whole["skipped"], whole["skipped_by_ext"])


@pytest.mark.slow
def test_merged_order_is_a_folder_scans_order_not_argument_order(tmp_path):
    tree = tmp_path / "tree"
    # '-' < '.' < '/' in bytes, and upper case sorts before lower: a plain string sort of whole
    # paths would put a.b.png before a/z.png, the scan's depth-first walk does not.
    for name in ("a/z.png", "a.b.png", "a-c.png", "B.png", "b.png", "é.png", "a/y/x.png"):
        _image(tree / name)
    whole = [r["path"] for r in jsonl_records(run_cli("scan", "--backend", "none", "-f", "jsonl", str(tree)).stdout)]
    assert whole.index(str(tree / "a" / "z.png")) < whole.index(str(tree / "a.b.png"))
    for k in (1, 2):
        run_cli("scan", "--backend", "none", "-f", "jsonl", "--shard", f"{k}/2", "-o", str(tmp_path / f"{k}.jsonl"),
                str(tree))
    merged = run_cli("merge", str(tmp_path / "2.jsonl"), str(tmp_path / "1.jsonl"), "-f", "jsonl")
    assert [r["path"] for r in jsonl_records(merged.stdout)] == whole

    # A scan keeps the order of its arguments; merge cannot know it and sorts (README, shards).
    backwards = run_cli("scan", "--backend", "none", "-f", "jsonl", "-o", str(tmp_path / "back.jsonl"),
                        str(tree / "b.png"), str(tree / "B.png"))
    assert backwards.returncode == 0
    back = [r["path"] for r in jsonl_records((tmp_path / "back.jsonl").read_bytes())]
    assert back == [str(tree / "b.png"), str(tree / "B.png")]
    resorted = run_cli("merge", str(tmp_path / "back.jsonl"), "-f", "jsonl")
    assert [r["path"] for r in jsonl_records(resorted.stdout)] == back[::-1]
