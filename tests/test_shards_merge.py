"""`--shard K/N` partitions a tree deterministically; `fakescope merge` rebuilds one report."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES, jsonl_records, run_cli

TREE = FIXTURES / "provenance"


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


def test_merge_tolerates_a_truncated_last_line_and_drops_duplicates(tmp_path):
    out = tmp_path / "a.jsonl"
    run_cli("scan", "--backend", "none", "-f", "jsonl", "-o", str(out), str(TREE / "c2pa"))
    text = out.read_text()
    (tmp_path / "cut.jsonl").write_text(text + text.splitlines()[0][:40])
    proc = run_cli("merge", str(out), str(tmp_path / "cut.jsonl"), "-f", "jsonl")
    assert proc.returncode in (0, 3)
    assert len(jsonl_records(proc.stdout)) == len(text.splitlines())
    assert b"duplicate" in proc.stderr


def test_bad_shard_spec_is_usage_error():
    assert run_cli("scan", "--shard", "4/3", str(TREE)).returncode == 2
    assert run_cli("scan", "--shard", "x", str(TREE)).returncode == 2
