"""Videos are scanned, not skipped: real clips encoded here with PyAV (FFmpeg), C2PA signed offline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fakescope_cli import video as video_mod
from fakescope_cli.analyze import Analyzer, ScanConfig
from fakescope_cli.inputs import Candidate, InputExpander
from tests import video_files as vf

SCHEMA = json.loads((Path(__file__).parent.parent / "fakescope_cli/schema/record.schema.json").read_text())


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(ScanConfig(frames=6))


def scan(analyzer: Analyzer, path: Path) -> dict[str, Any]:
    import jsonschema

    record = analyzer.analyze(Candidate(str(path), True))
    jsonschema.validate(record, SCHEMA)
    return record


def test_h264_mp4_is_sampled_scored_and_described(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.encode(tmp_path / "clip.mp4", frames=48, fps=24, size=(320, 240))
    rec = scan(analyzer, clip)
    video = rec["video"]
    assert rec["format"] == "MP4" and (rec["width"], rec["height"]) == (320, 240)
    assert rec["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest() and rec["bytes"] == clip.stat().st_size
    assert video["codecs"][0] == "h264" and video["fps"] == 24 and video["duration_s"] == pytest.approx(2.0, abs=0.05)
    times = [f["t"] for f in video["timeline"]]
    assert len(times) == video["frames_sampled"] == video["frames_scored"] == 6
    assert times == sorted(times) and len(set(times)) == 6 and 0 <= times[0] and times[-1] < 2.0
    scores = [f["p_fake"] for f in video["timeline"]]
    assert rec["detector"]["p_fake"] == pytest.approx(video_mod.aggregate(scores), abs=1e-6)
    assert rec["detector"]["raw"]["aggregate"] == "p75"
    assert rec["verdict"] in ("likely-real", "uncertain", "likely-ai") and not rec["errors"]


@pytest.mark.parametrize("name,codec,container,fmt", [("clip.webm", "libvpx-vp9", "WEBM", None),
                                                     ("clip.avi", "mpeg4", "AVI", "avi"),
                                                     ("clip.mkv", "libx264", "MKV", "matroska")])
def test_webm_avi_and_mkv_are_sampled(analyzer: Analyzer, tmp_path: Path, name: str, codec: str, container: str,
                                      fmt: str | None) -> None:
    rec = scan(analyzer, vf.encode(tmp_path / name, codec, fmt=fmt, frames=24, fps=12))
    assert rec["format"] == container and rec["video"]["codecs"][0] == {"libvpx-vp9": "vp9", "libx264": "h264"}.get(codec, codec)
    assert rec["video"]["frames_scored"] == 6 and rec["p_fake"] is not None and not rec["errors"]


def test_phone_mov_metadata_is_a_weak_camera_hint(analyzer: Analyzer, tmp_path: Path) -> None:
    rec = scan(analyzer, vf.phone_mov(tmp_path / "IMG_0001.MOV"))
    assert rec["format"] == "MOV" and rec["video"]["frames_sampled"] == 6 and not rec["warnings"]
    tags = rec["video"]["tags"]
    assert tags["com.apple.quicktime.model"] == "iPhone 15 Pro"
    camera = [e for e in rec["evidence"] if e["signal"] == "camera"]
    assert len(camera) == 1 and not camera[0]["strong"]
    assert "Apple iPhone 15 Pro" in camera[0]["summary"] and camera[0]["details"]["creation_date"].startswith("2024-05-01")
    assert rec["verdict"] not in ("ai-generated", "ai-edited")
    assert any("iPhone 15 Pro" in r and "weak sign" in r for r in rec["reasons"])


def test_c2pa_signed_mp4_declaring_trained_algorithmic_media_is_ai_generated(analyzer: Analyzer, tmp_path: Path) -> None:
    plain = vf.encode(tmp_path / "plain.mp4", frames=24)
    signed = vf.sign_c2pa(plain, tmp_path / "generated.mp4")
    rec = scan(analyzer, signed)
    c2pa = [e for e in rec["evidence"] if e["source"] == "c2pa"]
    assert len(c2pa) == 1 and c2pa[0]["signal"] == "ai" and c2pa[0]["strong"]
    assert rec["verdict"] == "ai-generated" and rec["p_fake"] >= 0.99
    assert rec["video"]["frames_scored"] == 6  # the frames were still scored, for the record
    # The unsigned original says nothing of the kind.
    assert scan(analyzer, plain)["verdict"] != "ai-generated"


def test_c2pa_manifest_declaring_a_capture_does_not_decide(analyzer: Analyzer, tmp_path: Path) -> None:
    signed = vf.sign_c2pa(vf.encode(tmp_path / "p.mp4", frames=12), tmp_path / "cam.mp4",
                          "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture")
    rec = scan(analyzer, signed)
    assert rec["verdict"] not in ("ai-generated", "ai-edited")
    assert [e["source"] for e in rec["evidence"]].count("c2pa") == 1


def test_xmp_digital_source_type_in_an_mp4_uuid_box_decides(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.with_xmp_box(vf.encode(tmp_path / "x.mp4", frames=12), vf.xmp_packet(vf.TRAINED))
    rec = scan(analyzer, clip)
    xmp = [e for e in rec["evidence"] if e["source"] == "xmp"]
    assert xmp and xmp[0]["signal"] == "ai" and xmp[0]["strong"] and xmp[0]["details"]["from"] == "container"
    assert rec["verdict"] == "ai-generated"


def test_generator_name_in_a_tag_is_a_hint_as_in_an_image(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.encode(tmp_path / "g.mp4", frames=12, metadata={"comment": "Generated with Kling 2.1"})
    rec = scan(analyzer, clip)
    hint = [e for e in rec["evidence"] if e["source"] == "container" and e["details"].get("generator") == "Kling"]
    assert hint and hint[0]["signal"] == "ai" and not hint[0]["strong"]
    assert rec["verdict"] != "ai-generated" and any(r.startswith("Hint (not decisive)") for r in rec["reasons"])


def test_comfyui_workflow_in_the_comment_tag_is_a_generator_trace(analyzer: Analyzer, tmp_path: Path) -> None:
    prompt = {"3": {"inputs": {"text": "x" * 20_000}, "class_type": "KSampler"},  # a long prompt first
              "9": {"inputs": {}, "class_type": "VHS_VideoCombine"}}
    rec = scan(analyzer, vf.encode(tmp_path / "c.mp4", frames=12, metadata={"comment": json.dumps({"prompt": prompt})}))
    comfy = [e for e in rec["evidence"] if e["details"].get("generator") == "ComfyUI"]
    assert comfy and comfy[0]["details"]["nodes"] == ["KSampler", "VHS_VideoCombine"] and comfy[0]["details"]["parsed"]
    assert len(rec["video"]["tags"]["comment"]) == 1000  # the record keeps a bounded excerpt
    assert rec["verdict"] == "ai-generated"


def test_truncated_and_empty_videos_are_error_records(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.encode(tmp_path / "whole.mp4", frames=48)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    rec = scan(analyzer, cut)
    assert rec["verdict"] == "error" and rec["errors"][0]["code"] == "truncated"
    assert rec["format"] == "MP4" and rec["sha256"] == hashlib.sha256(cut.read_bytes()).hexdigest()
    rec = scan(analyzer, empty)
    assert rec["verdict"] == "error" and rec["errors"][0]["code"] == "empty-file"


def test_forged_ten_hour_duration_is_sampled_within_the_decode_bounds(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.declare_duration(vf.encode(tmp_path / "long.mp4", frames=48), 10 * 3600)
    rec = scan(analyzer, clip)
    assert rec["video"]["duration_s"] == 36000
    assert 1 <= rec["video"]["frames_sampled"] < 6
    assert any(w["code"] == "video-frames-short" for w in rec["warnings"])
    assert rec["verdict"] != "error"


def test_duration_past_a_day_is_refused_before_decoding(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.declare_duration(vf.encode(tmp_path / "forever.mp4", frames=12), 30 * 3600)
    rec = scan(analyzer, clip)
    assert rec["verdict"] == "error" and rec["errors"][0]["code"] == "duration-limit"
    assert rec["video"]["frames_sampled"] == 0


def test_16k_by_16k_stream_is_refused_by_the_pixel_limit(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.declare_size(vf.encode(tmp_path / "huge.mp4", frames=12), 16384, 16384)
    rec = scan(analyzer, clip)
    assert rec["verdict"] == "error" and rec["errors"][0]["code"] == "pixel-limit"
    assert "16384x16384" in rec["errors"][0]["message"]


@pytest.mark.parametrize("fmt,suffix", [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")])
def test_animation_frames_are_sampled_not_just_the_first(analyzer: Analyzer, tmp_path: Path, fmt: str,
                                                         suffix: str) -> None:
    from PIL import Image

    frames = [Image.new("RGB", (96, 96), (i * 20, 255 - i * 20, (i * 50) % 256)) for i in range(10)]
    path = tmp_path / f"anim.{suffix}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    rec = scan(analyzer, path)
    assert rec["format"] == fmt and rec["video"]["frame_count"] == 10
    assert len({f["p_fake"] for f in rec["video"]["timeline"]}) > 1  # different frames, different scores
    assert [f["t"] for f in rec["video"]["timeline"]] == [0.0, 0.2, 0.4, 0.5, 0.7, 0.9]  # frames 0, 2, 4, 5, 7, 9 of 10
    assert not any(w["code"] == "first-frame-only" for w in rec["warnings"])


def test_without_pyav_a_video_gets_custody_provenance_and_a_hint(monkeypatch: pytest.MonkeyPatch,
                                                                  analyzer: Analyzer, tmp_path: Path) -> None:
    monkeypatch.setattr(video_mod, "pyav_available", lambda: False)
    clip = vf.with_xmp_box(vf.encode(tmp_path / "x.mp4", frames=12), vf.xmp_packet(vf.TRAINED))
    rec = scan(analyzer, clip)
    assert rec["verdict"] == "ai-generated" and rec["video"]["frames_sampled"] == 0
    assert rec["video"]["codecs"] == ["avc1"] and rec["video"]["duration_s"] == pytest.approx(0.5, abs=0.05)
    hint = [w for w in rec["warnings"] if w["code"] == "video-decoder-missing"]
    assert hint and "fakescope[video]" in hint[0]["message"]
    plain = scan(analyzer, vf.encode(tmp_path / "p.mp4", frames=12))
    assert plain["verdict"] == "no-verdict" and any("fakescope[video]" in r for r in plain["reasons"])


def test_folders_pick_up_videos_by_name_and_by_signature(tmp_path: Path) -> None:
    vf.encode(tmp_path / "a.mp4", frames=4)
    (tmp_path / "renamed.dat").write_bytes((tmp_path / "a.mp4").read_bytes())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "cut.webm").write_bytes(b"")
    audio = bytearray((tmp_path / "a.mp4").read_bytes())
    audio[8:12] = b"M4A "  # an iTunes audio file: not evidence fakescope reads
    (tmp_path / "song.m4a").write_bytes(bytes(audio))
    found = sorted(Path(c.path).name for c in InputExpander().expand([str(tmp_path)]))
    assert found == ["a.mp4", "cut.webm", "renamed.dat"]


def test_video_extensions_only_mismatch_across_families(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.encode(tmp_path / "a.mov", frames=4)  # an MP4 named .mov: one family, no warning
    assert not any(w["code"] == "extension-mismatch" for w in scan(analyzer, clip)["warnings"])
    webm = tmp_path / "a.avi"
    webm.write_bytes(vf.encode(tmp_path / "w.webm", "libvpx-vp9", frames=4).read_bytes())
    assert any(w["code"] == "extension-mismatch" for w in scan(analyzer, webm)["warnings"])


def test_cli_default_frames_is_the_library_default() -> None:
    import inspect
    from typing import get_args, get_type_hints

    from fakescope_cli import cli

    parameter = inspect.signature(cli.scan).parameters["frames"]
    assert parameter.default == video_mod.DEFAULT_FRAMES
    hint = get_type_hints(cli.scan, include_extras=True)["frames"]  # cli.py's annotations are strings
    option = next(a for a in get_args(hint) if hasattr(a, "max"))
    assert option.max == video_mod.MAX_FRAMES


def test_aggregate_is_the_75th_percentile() -> None:
    assert video_mod.aggregate([0.1]) == 0.1
    assert video_mod.aggregate([0.0, 0.0, 0.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert video_mod.aggregate([0.0, 0.0, 0.0, 0.0, 1.0]) == pytest.approx(0.0)
    assert video_mod.aggregate([0.2, 0.4]) == pytest.approx(0.35)


# --- the box walker on hostile bytes ---------------------------------------------------------------

def _box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def test_box_sizes_past_the_data_are_never_trusted() -> None:
    from fakescope_cli import bmff

    huge = (0xFFFFFFF0).to_bytes(4, "big") + b"moov" + b"\0" * 40  # declares 4 GB, holds 48 bytes
    info = bmff.read(_box(b"ftyp", b"isom\0\0\0\0isom") + huge)
    assert info.major_brand == "isom" and "runs past the end" in info.problems[0]
    largesize = (1).to_bytes(4, "big") + b"mdat" + (1 << 62).to_bytes(8, "big") + b"\0" * 8
    assert bmff.read(largesize).problems and bmff.read(b"\0\0\0\x04free").problems  # size < header


def test_nesting_and_box_count_are_bounded() -> None:
    from fakescope_cli import bmff

    deep = b"\0" * 8
    for _ in range(200):  # 200 nested 'udta' boxes: walked to MAX_DEPTH only
        deep = _box(b"udta", deep)
    assert max(b.depth for b in bmff.walk(deep)) == bmff.MAX_DEPTH - 1
    many = _box(b"moov", b"".join(_box(b"free", b"") for _ in range(bmff.MAX_BOXES + 10)))
    info = bmff.read(many)
    assert any("more than" in p for p in info.problems)
    assert sum(1 for _ in bmff.walk(many)) <= bmff.MAX_BOXES


def test_a_hostile_container_is_one_error_record_and_the_scan_goes_on(analyzer: Analyzer, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(_box(b"ftyp", b"isom\0\0\0\0isom") + _box(b"moov", _box(b"trak", b"\xff" * 64))
                        + _box(b"mdat", b"\x00\x00\x00\x01\x67" + b"\xff" * 500))
    rec = scan(analyzer, garbage)
    assert rec["verdict"] == "error" and len(rec["errors"]) == 1
    assert rec["errors"][0]["code"] in ("corrupt-video", "truncated", "no-video-stream")
    assert scan(analyzer, vf.encode(tmp_path / "ok.mp4", frames=6))["verdict"] != "error"


# --- outputs -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_record(analyzer: Analyzer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return analyzer.analyze(Candidate(str(vf.encode(tmp_path_factory.mktemp("v") / "clip.mp4", frames=24)), True))


def test_csv_sarif_and_table_carry_the_video_fields(clip_record: dict[str, Any]) -> None:
    import csv
    import io

    from fakescope_cli.render.csv import COLUMNS, row
    from fakescope_cli.render.sarif import _result
    from fakescope_cli.render.table import TableRenderer

    cells = dict(zip(COLUMNS, row(clip_record), strict=True))
    assert cells["codecs"].startswith("h264") and cells["duration_s"] == "1"
    pairs = [p.split(":") for p in cells["frame_scores"].split(";")]
    assert len(pairs) == 6 and all(0 <= float(t) < 1 and 0 <= float(p) <= 1 for t, p in pairs)
    still = dict(zip(COLUMNS, row({**clip_record, "video": None}), strict=True))
    assert still["frame_scores"] == "" and still["codecs"] == ""
    assert list(csv.reader(io.StringIO(",".join(COLUMNS))))[0][-5:] == ["duration_s", "codecs", "fps",
                                                                        "frames_scored", "frame_scores"]
    props = _result({**clip_record, "verdict": "likely-ai"})["properties"]  # SARIF lists flagged files
    assert props["video"]["timeline"] == clip_record["video"]["timeline"]
    out = io.StringIO()
    table = TableRenderer(out, color=False, width=160)
    table.start({})
    table.add(clip_record)
    table.finish({"counts": {"files": 1}})
    assert "MP4 h264, 1.0 s at 24 fps, 6 frames scored" in out.getvalue()


def test_html_report_shows_the_sampled_frames_with_their_scores(clip_record: dict[str, Any]) -> None:
    import io

    from fakescope_cli.render.html import HtmlRenderer

    out = io.StringIO()
    renderer = HtmlRenderer(out, thumbnails=True)
    renderer.start({})
    renderer.add(clip_record)
    renderer.finish({"counts": {"files": 1}})
    page = out.getvalue()
    strip = page[page.index("<h4>Frames</h4>"):]
    assert strip.count('<img src="data:image/jpeg;base64,') == 6
    for frame in clip_record["video"]["timeline"]:
        assert f"{frame['t']:.2f} s · {frame['p_fake'] * 100:.0f}%" in strip


@pytest.mark.slow
def test_cli_scans_a_folder_of_videos_with_frames_option(tmp_path: Path) -> None:
    from tests.conftest import jsonl_records, run_cli

    vf.encode(tmp_path / "a.mp4", frames=24)
    vf.encode(tmp_path / "b.webm", "libvpx-vp9", frames=12)
    data = (tmp_path / "a.mp4").read_bytes()
    (tmp_path / "c-cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "d-empty.mov").write_bytes(b"")
    proc = run_cli("scan", "-f", "jsonl", "--frames", "3", str(tmp_path))
    records = {Path(r["path"]).name: r for r in jsonl_records(proc.stdout)}
    assert proc.returncode == 3, proc.stderr  # some files unanalysed; the others were scanned
    assert [len(records[n]["video"]["timeline"]) for n in ("a.mp4", "b.webm")] == [3, 3]
    assert records["c-cut.mp4"]["verdict"] == records["d-empty.mov"]["verdict"] == "error"


def test_xmp_in_a_matroska_tag_reaches_the_xmp_reader(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.encode(tmp_path / "x.mkv", "libvpx-vp9", fmt="matroska", frames=6,
                     metadata={"XMP": vf.xmp_packet(vf.TRAINED).decode()})
    rec = scan(analyzer, clip)
    assert rec["format"] == "MKV" and "XMP" not in rec["video"]["tags"]
    xmp = [e for e in rec["evidence"] if e["source"] == "xmp"]
    assert xmp and xmp[0]["strong"] and xmp[0]["details"]["from"] == "container"
    assert rec["verdict"] == "ai-generated"


def test_no_pixels_reads_container_facts_without_decoding(tmp_path: Path) -> None:
    rec = Analyzer(ScanConfig(allow_pixels=False)).analyze(
        Candidate(str(vf.encode(tmp_path / "a.mp4", frames=12)), True))
    assert rec["verdict"] == "no-verdict" and rec["video"]["frames_sampled"] == 0
    assert rec["video"]["codecs"][0] == "h264" and rec["video"]["fps"] == 24 and "timeline" not in rec["video"]
    assert any("--no-pixels" in r for r in rec["reasons"])


def test_frames_reach_a_batching_detector_in_one_batch_and_are_aggregated(tmp_path: Path) -> None:
    from tests.plugins.batch_detector import BatchDetector

    detector = BatchDetector()
    rec = Analyzer(ScanConfig(frames=5), detector=detector).analyze(
        Candidate(str(vf.encode(tmp_path / "a.mp4", frames=48)), True))
    assert detector.batches == [5]  # one batch call, as a multimodal backend gets them
    scores = [f["p_fake"] for f in rec["video"]["timeline"]]
    assert len(set(scores)) == 5  # the test clip's brightness changes from frame to frame
    assert rec["p_fake"] == pytest.approx(video_mod.aggregate(scores), abs=1e-6)


def test_batched_engine_scores_videos_frame_by_frame_beside_images(tmp_path: Path) -> None:
    from PIL import Image

    from tests.plugins.batch_detector import BatchDetector

    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / name)
    clip = vf.encode(tmp_path / "c.mp4", frames=24)
    detector = BatchDetector()
    analyzer = Analyzer(ScanConfig(frames=4), detector=detector)
    records = analyzer.compute_batch([Candidate(str(tmp_path / n), True) for n in ("a.png", "b.png")]
                                     + [Candidate(str(clip), True)])
    assert sorted(detector.batches) == [2, 4]  # the two images in one batch, the four frames in another
    assert "video" not in records[0] and len(records[2]["video"]["timeline"]) == 4
    assert all(r["p_fake"] is not None for r in records)


def test_a_stream_without_duration_is_sampled_across_what_was_decoded(analyzer: Analyzer, tmp_path: Path) -> None:
    clip = vf.encode(tmp_path / "live.mkv", "libvpx-vp9", fmt="matroska", frames=90, options={"live": "1"})
    rec = scan(analyzer, clip)  # 90 frames at 24 fps, no duration written (a live stream)
    video = rec["video"]
    assert video["duration_s"] is None and 3 <= video["frames_sampled"] <= 6
    times = [f["t"] for f in video["timeline"]]
    assert times[0] == 0 and times[-1] >= 2.5 and times == sorted(times)
    assert any(w["code"] == "video-frames-short" and "no duration" in w["message"] for w in rec["warnings"])


def test_frames_held_at_once_are_bounded_by_memory(monkeypatch: pytest.MonkeyPatch, analyzer: Analyzer,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(video_mod, "FRAME_MEMORY", 320 * 240 * 3 * 4)  # room for 4 frames of this clip
    rec = scan(analyzer, vf.encode(tmp_path / "a.mp4", frames=48))
    assert rec["video"]["frames_sampled"] == 4
    assert any(w["code"] == "video-frames-short" and "MiB at once" in w["message"] for w in rec["warnings"])
