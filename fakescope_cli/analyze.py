"""One file through the pipeline: media → evidence → detector → fusion → record dict."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fakescope_cli import evidence as evidence_mod
from fakescope_cli.detectors import Detector, describe, load_detector
from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.errors import DetectorUnavailable, InputError, UsageError
from fakescope_cli.evidence.base import EvidenceItem
from fakescope_cli.fusion import Thresholds, fuse, thresholds_from
from fakescope_cli.inputs import Candidate
from fakescope_cli.media import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Media, display_path, png_crc_mismatches
from fakescope_cli.record import ScanRecord, file_time
from fakescope_cli.video_formats import ANIMATED_FORMATS, DEFAULT_FRAMES

# Options that change how a result is fetched, never what it is: not part of cache keys.
TRANSPORT_OPTIONS = frozenset({"request_timeout", "retries", "api_key_env", "verbose", "batch_size"})


@dataclass
class ScanConfig:
    """Everything that shapes one file's result; also the cache key's option part."""

    allow_pixels: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    backend: str = "builtin"
    backend_options: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    cache_dir: str | None = None  # None: no cache. Not a result option.
    frames: int = DEFAULT_FRAMES  # frames sampled per video or animation (--frames)

    def result_options(self) -> dict[str, Any]:
        """Options that change a result (for cache keys): not paths, not job counts."""
        return {
            "allow_pixels": self.allow_pixels,
            "max_pixels": self.max_pixels,
            "backend": self.backend,
            "backend_options": {k: str(v) for k, v in sorted(self.backend_options.items())
                                if k not in TRANSPORT_OPTIONS},
            "calibration_threshold": (self.calibration or {}).get("threshold"),
            "frames": self.frames,
        }


class Analyzer:
    """Holds the loaded detector; `analyze` never raises for a bad file."""

    def __init__(self, config: ScanConfig, detector: Detector | None = None, load: bool = True):
        self.config = config
        if detector is None and load and config.allow_pixels:
            detector = load_detector(config.backend, config.backend_options)
        self.detector = detector
        self.detector_info = describe(detector)
        self.thresholds: Thresholds = thresholds_from(self.detector_info, config.calibration)
        self.cache = None
        if config.cache_dir is not None:
            import sqlite3
            from pathlib import Path

            from fakescope_cli.cache import ResultCache, result_key

            try:
                self.cache = ResultCache(Path(config.cache_dir), result_key(self.detector_info, config.result_options()))
            except (OSError, sqlite3.Error) as exc:
                raise UsageError(f"cannot use the result cache in {config.cache_dir} ({exc}); choose another "
                                 "with --cache-dir, or scan without it: --no-cache") from None

    def cached(self, candidate: Candidate) -> dict[str, Any] | None:
        """The cached record for an unchanged file, or None."""
        if self.cache is None or candidate.problem is not None:
            return None
        hit = self.cache.lookup(candidate.path, display_path(candidate.path))
        if hit is None:
            return None
        if (hit.get("bytes") or 0) > self.config.max_bytes:
            return None  # over this run's --max-bytes: refused as a fresh scan would refuse it
        # The stored record may come from a copy under another name: what the name says is redone
        renamed = evidence_mod.extension_warning(os.path.basename(candidate.path), hit.get("format"))
        hit["warnings"] = [w for w in hit.get("warnings", []) if w.get("code") != "extension-mismatch"]
        if renamed is not None:
            hit["warnings"].insert(0, renamed)
        return hit

    def analyze(self, candidate: Candidate) -> dict[str, Any]:
        cached = self.cached(candidate)
        if cached is not None:
            return cached
        result = self.compute(candidate)
        self.remember(candidate, result)
        return result

    def compute(self, candidate: Candidate) -> dict[str, Any]:
        """The record for one file, without the cache. Touches no shared state of its own, so the
        engine may run it in several threads when the detector allows it (`parallel_requests`)."""
        record = self._new_record(candidate)
        try:
            return self._analyze(candidate, record)
        except DetectorUnavailable:
            raise
        except Exception as exc:  # a bug must cost one file, not the run
            return refused(record, "internal-error", f"{type(exc).__name__}: {exc}")

    def remember(self, candidate: Candidate, result: dict[str, Any]) -> None:
        """Store a computed record (error records are not cached: the cache skips them)."""
        if self.cache is not None and candidate.problem is None:
            self.cache.store(candidate.path, result)

    def compute_batch(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        """Records for several files, their detector pass batched (`analyze_batch`) when the
        detector offers it: the hf backend fills a forward pass with `--batch-size` images."""
        staged: list[_Staged | dict[str, Any]] = []
        for cand in candidates:
            record = self._new_record(cand)
            try:
                staged.append(self._prepare(cand, record))
            except DetectorUnavailable:
                raise
            except Exception as exc:  # a bug must cost one file, not the run
                staged.append(refused(record, "internal-error", f"{type(exc).__name__}: {exc}"))
        ready = [st for st in staged if isinstance(st, _Staged) and st.wants_detector and st.frames is None]
        for st in staged:
            if isinstance(st, _Staged) and st.wants_detector and st.frames is not None:
                st.outcome = self._score_frames(st)
        if ready:
            detector = self.detector
            assert detector is not None  # a file wants the detector only when one is loaded
            if len(ready) > 1:
                outcomes = _guarded(lambda: detector.analyze_batch([st.media for st in ready]), len(ready))
            else:
                outcomes = [_guarded(lambda st=st: [self.detector.analyze(st.media)], 1)[0] for st in ready]
            for st, outcome in zip(ready, outcomes, strict=True):
                st.outcome = outcome
        return [self._finish(st) if isinstance(st, _Staged) else st for st in staged]

    def _new_record(self, candidate: Candidate) -> ScanRecord:
        record = ScanRecord(path=display_path(candidate.path))
        if self.detector_info:
            record.detector_id = self.detector_info["id"]
            record.detector_version = self.detector_info["version"]
            record.weights_sha256 = self.detector_info["weights_sha256"]
        return record

    def _analyze(self, candidate: Candidate, record: ScanRecord) -> dict[str, Any]:
        staged = self._prepare(candidate, record)
        if isinstance(staged, dict):
            return staged
        if staged.wants_detector and staged.frames is not None:
            staged.outcome = self._score_frames(staged)
        elif staged.wants_detector:
            staged.outcome = _guarded(lambda: [self.detector.analyze(staged.media)], 1)[0]
        return self._finish(staged)

    def _score_frames(self, st: _Staged) -> DetectorResult | InputError:
        """Each sampled frame scored as a still (batched when the detector batches), the scores
        aggregated by video.AGGREGATE_RULE; the per-frame timeline goes into the record."""
        from fakescope_cli import video as video_mod

        frames = st.frames or []
        batch = getattr(self.detector, "analyze_batch", None)
        if callable(batch) and len(frames) > 1:
            outcomes = _guarded(lambda: batch([f.media for f in frames]), len(frames))
        else:
            outcomes = [_guarded(lambda f=f: [self.detector.analyze(f.media)], 1)[0] for f in frames]
        timeline: list[dict[str, Any]] = []
        scores: list[float] = []
        failure: InputError | None = None
        for frame, outcome in zip(frames, outcomes, strict=True):
            entry: dict[str, Any] = {"t": round(frame.t, 3), "p_fake": None}
            if isinstance(outcome, DetectorResult) and outcome.p_fake is not None:
                entry["p_fake"] = round(float(outcome.p_fake), 6)
                scores.append(float(outcome.p_fake))
            elif isinstance(outcome, InputError):
                entry["error"] = outcome.code
                failure = failure or outcome
            timeline.append(entry)
        if st.record.video is not None:
            st.record.video["timeline"] = timeline
            st.record.video["frames_scored"] = len(scores)
        if not scores:
            return failure or DetectorResult(p_fake=None, raw={"skipped": "no frame could be scored"})
        return DetectorResult(p_fake=round(video_mod.aggregate(scores), 6),
                              raw={"aggregate": video_mod.AGGREGATE_RULE, "frames_scored": len(scores),
                                   "frames_sampled": len(frames)})

    def _prepare(self, candidate: Candidate, record: ScanRecord) -> _Staged | dict[str, Any]:
        """media → evidence; a finished record dict when the file cannot go further."""
        if candidate.problem is not None:
            return refused(record, *candidate.problem)
        cfg = self.config
        try:
            media = Media.open(
                candidate.path, max_bytes=cfg.max_bytes, max_pixels=cfg.max_pixels, allow_pixels=cfg.allow_pixels
            )
        except InputError as exc:
            return refused(record, exc.code, exc.message, exc.facts)
        record.sha256 = media.sha256
        record.bytes = media.size
        record.format = media.format
        record.mtime = file_time(media.mtime_ns)
        if media.format is None:
            from fakescope_cli.video_formats import sniff_video

            container = sniff_video(media.data[:64])
            if container is not None:
                return self._prepare_video(media, container, record)
            what = "named as an image" if not candidate.explicit else "named on the command line"
            return refused(record, "unsupported-format", f"not a recognised image format ({what})")

        problems: list[InputError] = []
        try:
            record.width, record.height = (int(v) for v in media.header.size)
        except InputError as exc:
            problems.append(exc)
        if not problems and cfg.allow_pixels:
            try:
                media.pixels()  # decode once, behind the guards; readers and detector reuse it
            except InputError as exc:
                problems.append(exc)

        items, warnings = evidence_mod.collect(media, pixels_readable=not problems)
        if media.format == "PNG":
            bad = png_crc_mismatches(media.data)
            if bad:
                warnings.append({"code": "png-crc", "message": (
                    f"PNG chunk checksum mismatch in {', '.join(sorted(set(bad)))}: the file was damaged or "
                    "altered without updating its checksums; what those chunks say was still read")})
        frames = None
        wants = self.detector is not None and cfg.allow_pixels and not problems
        if wants and media.format in ANIMATED_FORMATS and (media.frame_count or 1) > 1:
            frames, warnings = self._animation_frames(media, record, warnings)
        record.evidence = [item.to_dict() for item in items]
        record.warnings = warnings
        return _Staged(record, media, items, problems, wants, frames=frames)

    def _animation_frames(self, media: Media, record: ScanRecord, warnings: list[dict[str, str]]
                          ) -> tuple[list[_Frame] | None, list[dict[str, str]]]:
        """Frames of an animated GIF/APNG/WebP sampled like a video's (the first frame alone when
        they cannot be read: the first-frame-only warning then stays)."""
        from fakescope_cli.video import FrameMedia, animation_frames

        try:
            sampled = animation_frames(media, self.config.frames)
        except Exception:  # a damaged later frame: the first frame is scored as before
            return None, warnings
        record.video = {"container": media.format, "frame_count": media.frame_count,
                        "frames_sampled": len(sampled), "sampling": "uniform"}
        kept = [w for w in warnings if w.get("code") != "first-frame-only"]
        return [_Frame(f.t, FrameMedia.of(media, f, media.format)) for f in sampled], kept

    def _prepare_video(self, raw: Media, container: str, record: ScanRecord) -> _Staged:
        """A video: container facts and limits, provenance, then frames sampled for the detector."""
        from fakescope_cli import video_evidence
        from fakescope_cli.video import (
            FRAME_MEMORY,
            VIDEO_EXTRA_HINT,
            FrameMedia,
            VideoMedia,
            frames_that_fit,
            pyav_available,
        )

        cfg = self.config
        media = VideoMedia.from_media(raw, container)
        record.format = container
        facts = media.facts
        problems: list[InputError] = []
        notes: list[dict[str, str]] = []
        sampled = []
        if facts.truncated:
            problems.append(InputError(f"truncated video: {facts.problems[0]}", "truncated"))
        else:
            try:
                media.check_limits(facts)
            except InputError as exc:
                problems.append(exc)
        if not problems and pyav_available():
            try:
                if cfg.allow_pixels and self.detector is not None:
                    sampled = media.sample_frames(cfg.frames)
                else:
                    media.probe().close()  # container facts and tags only
            except InputError as exc:
                problems.append(exc)
        elif not problems:
            notes.append({"code": "video-decoder-missing", "message": (
                f"{VIDEO_EXTRA_HINT}; custody and provenance were read, frames were not")})
        items, warnings = evidence_mod.collect(media, pixels_readable=False)
        extra = video_evidence.read(media, facts)
        if any(item.source == "c2pa" for item in items):
            extra = [item for item in extra if item.source != "c2pa"]
        items = items[:1] + extra + items[1:] if items and items[0].source == "c2pa" else extra + items
        warnings.extend(notes)
        warnings.extend({"code": "video-structure", "message": p} for p in facts.problems if not facts.truncated)
        record.width, record.height = facts.width, facts.height
        record.video = facts.to_record()
        record.video["sampling"] = "uniform"
        record.video["frames_sampled"] = len(sampled)
        if sampled and facts.duration_s is None:
            warnings.append({"code": "video-frames-short", "message": (
                f"the container declares no duration (a live or endless stream): {len(sampled)} frames spread "
                f"over its first {sampled[-1].t:.1f} s were analysed")})
        elif sampled and frames_that_fit(facts, cfg.frames) < cfg.frames:
            warnings.append({"code": "video-frames-short", "message": (
                f"{len(sampled)} of {cfg.frames} frames sampled: {cfg.frames} decoded frames of {facts.width}x"
                f"{facts.height} would hold more than {FRAME_MEMORY >> 20} MiB at once")})
        elif sampled and cfg.frames > len(sampled):
            warnings.append({"code": "video-frames-short", "message": (
                f"{len(sampled)} of {cfg.frames} frames sampled: the clip holds fewer distinct frames at the "
                "sample times, its declared duration is longer than its stream, or a decode bound was reached")})
        record.evidence = [item.to_dict() for item in items]
        record.warnings = warnings
        frames = [_Frame(f.t, FrameMedia.of(media, f, container)) for f in sampled]
        wants = self.detector is not None and cfg.allow_pixels and not problems and bool(frames)
        missing = "frames not analysed: " + VIDEO_EXTRA_HINT if notes and cfg.allow_pixels else None
        return _Staged(record, media, items, problems, wants, frames=frames, not_asked=missing)

    def _finish(self, st: _Staged) -> dict[str, Any]:
        """detector outcome + evidence → fusion → the record dict."""
        record, problems = st.record, st.problems
        detection = st.outcome if isinstance(st.outcome, DetectorResult) else None
        if isinstance(st.outcome, InputError):
            problems.append(st.outcome)
        if detection is not None:
            record.detector = {**(self.detector_info or {}), **detection.to_dict()}
        # Provenance can still decide for a file whose pixels cannot be read; fusion says so.
        unreadable = "; ".join(f"{exc.code}: {exc.message}" for exc in problems) or None
        not_asked = None
        if detection is None and unreadable is None:
            if st.not_asked:
                not_asked = st.not_asked
            elif not self.config.allow_pixels:
                not_asked = "metadata only: --no-pixels"
            elif self.detector is None:
                not_asked = "provenance only: --backend none"
        fused = fuse(st.items, detection, self.thresholds, unreadable, not_asked)
        record.p_fake = fused.p_fake
        record.p_fake_basis = fused.basis
        record.reasons = fused.reasons
        record.verdict = fused.verdict
        for exc in problems:
            record.errors.append({"code": exc.code, "message": exc.message})
        return record.to_dict()


def refused(record: ScanRecord, code: str, message: str, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a file that went no further than `code`: the custody that could be known
    (`facts`: sha256, bytes, mtime_ns), the error, and fusion's words for it (the same first reason
    as a file whose pixels failed later). Also the parent's record for a file whose worker died."""
    if facts:
        record.sha256, record.bytes = facts.get("sha256"), facts.get("bytes")
        if facts.get("mtime_ns") is not None:
            record.mtime = file_time(facts["mtime_ns"])
    record.add_error(code, message)
    record.reasons = fuse([], None, Thresholds(), f"{code}: {message}").reasons[:1]
    return record.to_dict()


@dataclass
class _Staged:
    """A file between evidence and fusion, waiting for its detector outcome."""

    record: ScanRecord
    media: Media
    items: list[EvidenceItem]
    problems: list[InputError]
    wants_detector: bool
    outcome: DetectorResult | InputError | None = None
    frames: list[_Frame] | None = None  # a video or animation: scored frame by frame
    not_asked: str | None = None  # why the detector was not asked, when the config does not say


@dataclass
class _Frame:
    t: float  # seconds from the start
    media: Media  # the frame as a still image for the detector


def _guarded(run: Callable[[], Sequence[Any]], n: int) -> list[DetectorResult | InputError]:
    """Detector outcomes, with a failing call turned into per-file errors (not a lost run).
    DetectorUnavailable (the model or server is gone) still stops the scan."""
    try:
        return [_checked_score(r) for r in run()]
    except InputError as exc:
        return [exc] * n
    except DetectorUnavailable:
        raise
    except Exception as exc:
        return [InputError(f"{type(exc).__name__}: {exc}", "detector-error")] * n


def _checked_score(result: Any) -> DetectorResult | InputError:
    """A score that is not a probability (NaN from -inf logprobs, a plugin's 1.7) fails that file
    instead of passing as an `uncertain` verdict that no gate can trip on."""
    p = getattr(result, "p_fake", None)
    if isinstance(result, DetectorResult) and p is not None and not (
            isinstance(p, (int, float)) and math.isfinite(p) and 0.0 <= p <= 1.0):
        return InputError(f"the detector returned p_fake {p!r}, not a probability in [0, 1]", "detector-error")
    return result
