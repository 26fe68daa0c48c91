"""One file through the pipeline: media → evidence → detector → fusion → record dict."""

from __future__ import annotations

import math
import os
import sqlite3
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

    def result_options(self) -> dict[str, Any]:
        """Options that change a result (for cache keys): not paths, not job counts."""
        return {
            "allow_pixels": self.allow_pixels,
            "max_pixels": self.max_pixels,
            "backend": self.backend,
            "backend_options": {k: str(v) for k, v in sorted(self.backend_options.items())
                                if k not in TRANSPORT_OPTIONS},
            "calibration_threshold": (self.calibration or {}).get("threshold"),
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
        ready = [st for st in staged if isinstance(st, _Staged) and st.wants_detector]
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
        if staged.wants_detector:
            staged.outcome = _guarded(lambda: [self.detector.analyze(staged.media)], 1)[0]
        return self._finish(staged)

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
        record.evidence = [item.to_dict() for item in items]
        record.warnings = warnings
        wants = self.detector is not None and cfg.allow_pixels and not problems
        return _Staged(record, media, items, problems, wants)

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
            if not self.config.allow_pixels:
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
