from __future__ import annotations

import pytest

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.fusion import PIXEL_P_FAKE_CAP, STRONG_P_FAKE, Thresholds, fuse, thresholds_from

AI = EvidenceItem("generator", "ai", "AUTOMATIC1111 parameters name the model.", strong=True)
EDIT = EvidenceItem("c2pa", "ai-edited", "Content Credentials: generative fill.", strong=True)
CAMERA = EvidenceItem("exif", "camera", "EXIF names a Canon EOS 40D camera.")
T = Thresholds(0.3, 0.7)


def test_strong_ai_provenance_decides_even_against_a_low_pixel_score():
    f = fuse([CAMERA, AI], DetectorResult(p_fake=0.05), T)
    assert f.verdict == "ai-generated" and f.p_fake >= 0.99
    assert any("provenance outweighs" in r for r in f.reasons)
    assert fuse([EDIT], None, T).verdict == "ai-edited"


def test_camera_exif_never_asserts_real_nor_overrides_pixels():
    assert fuse([CAMERA], None, T).verdict == "no-verdict"
    assert fuse([CAMERA], None, T).p_fake is None
    f = fuse([CAMERA], DetectorResult(p_fake=0.9), T)
    assert f.verdict == "likely-ai" and f.p_fake == pytest.approx(0.9)
    assert any("weak" in r for r in f.reasons)


@pytest.mark.parametrize(("p", "verdict"), [(0.1, "likely-real"), (0.3, "likely-real"), (0.5, "uncertain"),
                                            (0.7, "likely-ai"), (0.95, "likely-ai")])
def test_uncertain_band(p, verdict):
    assert fuse([], DetectorResult(p_fake=p), T).verdict == verdict


def test_weak_ai_hint_is_reported_but_does_not_decide():
    hint = EvidenceItem("exif", "ai", "EXIF Software names an AI tool.", strong=False)
    f = fuse([hint], None, T)
    assert f.verdict == "no-verdict" and any("Hint" in r for r in f.reasons)


def test_calibration_overrides_detector_band():
    t = thresholds_from({"threshold_low": 0.2, "threshold_high": 0.8}, {"threshold": 0.6})
    assert (t.low, t.high) == (0.2, 0.6)
    t = thresholds_from(None, {"threshold": 0.1})
    assert (t.low, t.high) == (0.1, 0.1)
    with pytest.raises(ValueError):
        Thresholds(0.8, 0.2)


def test_editor_history_is_reported_without_moving_the_score():
    edit = EvidenceItem("c2pa", "editor", "Content Credentials: resized in Adobe Photoshop.")
    f = fuse([edit], DetectorResult(p_fake=0.2), T)
    assert f.verdict == "likely-real" and f.p_fake == pytest.approx(0.2)
    assert edit.summary in f.reasons


def test_a_detector_with_a_closed_band_never_decides_and_says_why():
    closed = Thresholds(0.0, 1.0)
    for p in (0.02, 0.5, 0.98):
        out = fuse([], DetectorResult(p_fake=p), closed)
        assert out.verdict == "uncertain" and out.p_fake == pytest.approx(min(p, PIXEL_P_FAKE_CAP))
        assert out.basis == "hint"
        assert "a hint for ranking only" in out.reasons[0], out.reasons
        assert "%" not in out.reasons[0]  # no percentage that reads like a verdict
    # a score rounded to the band's edges still gives no verdict
    for p in (0.0, 1.0):
        assert fuse([], DetectorResult(p_fake=p), closed).verdict == "uncertain"
    # an open band keeps the usual wording
    assert any("inside the uncertain band" in r for r in fuse([], DetectorResult(p_fake=0.5), T).reasons)


def test_unreadable_pixels_are_an_error_unless_provenance_decides():
    f = fuse([CAMERA], None, T, unreadable="truncated: image file is truncated")
    assert f.verdict == "error" and f.p_fake is None
    assert f.reasons[0] == "The image could not be analysed (truncated: image file is truncated)."
    f = fuse([AI], None, T, unreadable="truncated: image file is truncated")
    assert f.verdict == "ai-generated" and f.p_fake >= 0.99


def test_a_detector_that_skipped_the_image_says_why_there_is_no_verdict():
    f = fuse([], DetectorResult(p_fake=None, raw={"skipped": "image smaller than 8 pixels"}), T)
    assert f.verdict == "no-verdict"
    assert "it skipped the image (image smaller than 8 pixels)" in f.reasons[0]


def test_an_undecided_verdict_leads_with_what_the_file_says_a_decided_one_with_what_decided():
    hint = EvidenceItem("exif", "ai", "EXIF Software names an AI tool.", strong=False)
    undecided = fuse([CAMERA, hint], DetectorResult(p_fake=0.5), T)
    assert undecided.verdict == "uncertain"
    assert undecided.reasons[0] == "Hint (not decisive): EXIF Software names an AI tool."
    assert undecided.reasons[1].startswith(CAMERA.summary) and "inside the uncertain band" in undecided.reasons[2]
    decided = fuse([CAMERA, hint], DetectorResult(p_fake=0.9), T)
    assert decided.verdict == "likely-ai" and decided.reasons[0].startswith("The pixel detector scores 90%")
    assert fuse([CAMERA], None, T).reasons[0].startswith(CAMERA.summary)


def test_a_camera_claim_is_qualified_in_the_words_of_where_it_was_read():
    xmp = EvidenceItem("xmp", "camera", "XMP declares a digital capture (digitalCapture).")
    signed = EvidenceItem("c2pa", "camera", "Content Credentials record a camera capture.")
    assert "EXIF is easy to forge" in fuse([CAMERA], None, T).reasons[0]
    assert "XMP is unsigned text" in fuse([xmp], None, T).reasons[0] and "EXIF" not in fuse([xmp], None, T).reasons[0]
    said = fuse([signed], DetectorResult(p_fake=0.5), T).reasons[0]
    assert "EXIF" not in said and "Content Credentials can be stripped" in said
    assert fuse([signed], DetectorResult(p_fake=0.9), T).verdict == "likely-ai"


def test_no_verdict_says_when_the_pixels_were_not_asked_about():
    f = fuse([CAMERA], None, T, not_asked="metadata only: --no-pixels")
    assert f.verdict == "no-verdict" and "(metadata only: --no-pixels)" in f.reasons[-1]
    assert "(" not in fuse([], None, T).reasons[0]


def test_an_unreadable_file_does_not_claim_its_metadata_was_all_read():
    said = fuse([], None, T, "corrupt-image: x").reasons
    assert not any(r.startswith("No provenance metadata found;") for r in said)
    assert any("could not be fully analysed" in r for r in said)


UNREADABLE = EvidenceItem("c2pa", "none", "C2PA data present but cannot be read: Other: unknown algorithm",
                          {"error": "Other: unknown algorithm", "error_type": "_C2paOther", "unreadable": True})


def test_metadata_present_but_unreadable_is_stated_never_called_absent():
    for detection, verdict in ((None, "no-verdict"), (DetectorResult(p_fake=0.5), "uncertain")):
        f = fuse([UNREADABLE], detection, T)
        assert f.verdict == verdict
        # Nothing decided: the unreadable manifest leads, before the pixel sentence.
        assert f.reasons[0].startswith(UNREADABLE.summary) and "unknown" in f.reasons[0], f.reasons
        assert not any("No provenance metadata found" in r for r in f.reasons), f.reasons
    decided = fuse([UNREADABLE], DetectorResult(p_fake=0.1), T)
    assert decided.verdict == "likely-real" and decided.reasons[0].startswith("The pixel detector")
    assert any(r.startswith(UNREADABLE.summary) for r in decided.reasons[1:])
    malformed_exif = EvidenceItem("exif", "none", "EXIF data is present but malformed; nothing usable could be read",
                                  {"malformed": True, "error": "TypeError"})
    assert not any("No provenance metadata found" in r for r in fuse([malformed_exif], None, T).reasons)


def test_no_provenance_found_only_when_no_reader_found_anything():
    assert fuse([], None, T).reasons[-1] == "No provenance metadata found; its absence proves nothing."
    neutral = EvidenceItem("c2pa", "none", "Content Credentials present, declaring neither AI nor a camera capture")
    said = fuse([neutral], DetectorResult(p_fake=0.5), T).reasons
    assert neutral.summary in said and not any("No provenance metadata found" in r for r in said)
    assert any("declares neither AI nor a camera" in r and "proves nothing" in r for r in said)


def test_every_distinct_camera_claim_is_reported_with_its_own_caveat():
    xmp_dst = EvidenceItem("xmp", "camera", "XMP points to a camera capture: DigitalSourceType digitalCapture",
                           {"digital_source_type": ["http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"]})
    xmp_make = EvidenceItem("xmp", "camera", "XMP names the camera Canon EOS R5 (tiff:Make/Model)")
    f = fuse([xmp_dst, xmp_make, CAMERA, CAMERA], DetectorResult(p_fake=0.5), T)
    lines = [r for r in f.reasons if "a weak sign" in r]
    assert len(lines) == 3, f.reasons  # the duplicate EXIF claim once
    assert lines[0].startswith(xmp_dst.summary) and "IPTC DigitalSourceType" in lines[0]
    assert lines[1].startswith(xmp_make.summary) and "XMP is unsigned text" in lines[1]
    assert lines[2].startswith(CAMERA.summary) and "EXIF is easy to forge" in lines[2]
    assert f.verdict == "uncertain" and f.p_fake == pytest.approx(0.5)


def test_a_pixel_score_alone_stays_below_provenances_band():
    """Whatever the backend says, pixels alone never claim what provenance claims (issue 21)."""
    for band in (T, Thresholds(0.0, 1.0)):
        out = fuse([], DetectorResult(p_fake=0.999), band)
        assert out.p_fake == PIXEL_P_FAKE_CAP < STRONG_P_FAKE
        assert out.basis in ("pixels", "hint")
    out = fuse([], DetectorResult(p_fake=0.999), T)
    assert out.verdict == "likely-ai" and "capped at 95%" in out.reasons[0]
    below = fuse([], DetectorResult(p_fake=0.6), T)
    assert below.p_fake == pytest.approx(0.6) and below.basis == "pixels"  # under the cap: unchanged
    proven = fuse([AI], DetectorResult(p_fake=0.999), T)
    assert proven.p_fake == pytest.approx(0.999) and proven.basis == "provenance"
    assert fuse([], None, T).basis is None
