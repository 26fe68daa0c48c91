"""`fakescope eval`: join scan records to labelled items, the metric report, and its text.

Labelled input (labels.py) is a folder with `real/` and `fake/` subfolders or a CSV
(path,label[,group]). The CLI scans the items' paths with any backend and hands the result records
to `evaluate`, which joins them back by path. Items the scan could not score (error records, a null
p_fake) are counted by reason and left out of the metrics, never guessed. `threshold_file_from_eval`
picks the threshold that `eval --calibrate` writes (format: threshold_file.py).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fakescope_cli import metrics
from fakescope_cli.errors import UsageError

# Re-exported: train/ reads labelled pools through this module.
from fakescope_cli.labels import FAKE, REAL, LabelledItem, load_labelled, parse_label  # noqa: F401
from fakescope_cli.media import display_path
from fakescope_cli.threshold_file import THRESHOLD_FILE_FORMAT

EVAL_FORMAT = "fakescope-eval/1"
DECISION_RULE = ("fake when provenance says so (ai-generated, ai-edited) or the detector's own score "
                 ">= threshold")
# --calibrate refuses a threshold that flags fewer fakes than this share, or than twice the share
# of real images it allows (a coin tossed at FPR f flags f of the fakes).
MIN_CALIBRATED_TPR = 0.10
REPORTED_FPRS = (0.01, 0.05)
MAX_UNSCORED_EXAMPLES = 20

# ---------------------------------------------------------------- joining records


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _index_records(records: Iterable[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    exact: dict[str, dict[str, Any]] = {}
    normed: dict[str, dict[str, Any]] = {}
    for rec in records:
        path = rec.get("path")
        if isinstance(path, str):
            exact.setdefault(path, rec)
            normed.setdefault(_norm(path), rec)
    return exact, normed


def _score_of(record: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """(p_fake, None) for a usable score, else (None, reason it is unscored)."""
    if record is None:
        return None, "not-scanned"
    if record.get("verdict") == "error":
        errors = record.get("errors") or []
        code = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
        return None, str(code) if code else "error"
    p = record.get("p_fake")
    if p is None:
        return None, "no-score"
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
        return None, "invalid-score"
    return float(p), None


PROVENANCE_VERDICTS = frozenset({"ai-generated", "ai-edited"})


def _pixel_score(record: dict[str, Any], fused: float) -> float | None:
    """The detector's own score, on the scale its thresholds use (fusion caps p_fake below
    provenance's band; the raw value is in `detector.p_fake`); None when provenance decided."""
    if record.get("verdict") in PROVENANCE_VERDICTS:
        return None
    raw = (record.get("detector") or {}).get("p_fake")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and 0.0 <= raw <= 1.0:
        return float(raw)
    return fused


@dataclass(frozen=True)
class _Joined:
    scored: list[tuple[LabelledItem, float]]  # the fused p_fake of each scored item
    unscored: list[tuple[LabelledItem, str]]
    records: list[dict[str, Any]]  # the records that matched an item
    pixel: list[float | None]  # per scored item: the detector's own score, None where provenance decided

    def decisions(self, threshold: float) -> list[float]:
        """Per scored item, a score that is >= threshold exactly when the item is flagged: by
        provenance (ai-generated, ai-edited) whatever the pixels say, else by its pixel score."""
        return [max(threshold, p) if pix is None else pix
                for (_, p), pix in zip(self.scored, self.pixel, strict=True)]


def _join(items: Sequence[LabelledItem], records: Iterable[dict[str, Any]]) -> _Joined:
    exact, normed = _index_records(records)
    scored: list[tuple[LabelledItem, float]] = []
    unscored: list[tuple[LabelledItem, str]] = []
    matched: list[dict[str, Any]] = []
    pixel: list[float | None] = []
    for item in items:
        rec = exact.get(item.path)
        if rec is None:
            rec = normed.get(_norm(item.path))
        if rec is not None:
            matched.append(rec)
        p, reason = _score_of(rec)
        if p is None:
            unscored.append((item, reason or "no-score"))
        else:
            assert rec is not None
            scored.append((item, p))
            pixel.append(_pixel_score(rec, p))
    return _Joined(scored, unscored, matched, pixel)


def _detector_identities(records: Iterable[dict[str, Any]]) -> list[dict[str, str | None]]:
    seen: list[dict[str, str | None]] = []
    for rec in records:
        custody = rec.get("custody") or {}
        ident = {"detector_id": custody.get("detector_id"), "weights_sha256": custody.get("weights_sha256")}
        if ident["detector_id"] is None and ident["weights_sha256"] is None:
            continue
        if ident not in seen:
            seen.append(ident)
    return seen


# ---------------------------------------------------------------- the report


def _fpr_key(f: float) -> str:
    return f"{f:g}"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def evaluate(items: Sequence[LabelledItem], records: Iterable[dict[str, Any]],
             threshold: float = 0.5) -> dict[str, Any]:
    """The JSON-ready metric report for labelled items and their scan records (joined by path).

    Metrics use the scored items only; `n_unscored` and `unscored_by_reason` say what was left out
    (an error record's first error code, 'no-score' for a null p_fake, 'not-scanned' for an item
    without a record). A metric that is undefined for the data is None and `notes` says why.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise UsageError(f"threshold must be a finite number, not {threshold!r}")
    joined = _join(items, records)
    labels = [it.label for it, _ in joined.scored]
    scores = [p for _, p in joined.scored]
    decisions = joined.decisions(threshold)
    notes: list[str] = []

    auc = metrics.roc_auc(labels, scores)
    reason = metrics.undefined_reason(labels)
    if reason is not None:
        notes.append(f"AUC, AP and TPR at FPR are undefined or partial: {reason}")
    tpr: dict[str, float | None] = {}
    thr_at: dict[str, float | None] = {}
    n_real = labels.count(REAL)
    for f in REPORTED_FPRS:
        tpr[_fpr_key(f)] = metrics.tpr_at_fpr(labels, scores, f)
        thr_at[_fpr_key(f)] = metrics.threshold_at_fpr(labels, scores, f) if n_real else None
        if n_real and f * n_real < 1:
            notes.append(
                f"TPR at {f:.0%} FPR is read at FPR 0: {n_real} real images allow no false positive"
            )
    if joined.unscored:
        notes.append(f"{len(joined.unscored)} item(s) could not be scored and are left out of the metrics")

    reasons = Counter(r for _, r in joined.unscored)
    ident = _detector_identities(joined.records)
    report: dict[str, Any] = {
        "format": EVAL_FORMAT,
        "n": len(items),
        "n_scored": len(joined.scored),
        "n_unscored": len(joined.unscored),
        "unscored_by_reason": dict(sorted(reasons.items())),
        "unscored_examples": [
            # display_path: a non-UTF-8 file name must not break a UTF-8 JSON writer
            {"path": display_path(it.path), "reason": r} for it, r in joined.unscored[:MAX_UNSCORED_EXAMPLES]
        ],
        "classes": {
            name: {
                "n": sum(1 for it in items if it.label == lab),
                "n_scored": labels.count(lab),
            }
            for name, lab in (("real", REAL), ("fake", FAKE))
        },
        "threshold": float(threshold),
        "rule": DECISION_RULE,
        "n_flagged_by_provenance": sum(1 for pix in joined.pixel if pix is None),
        "auc": auc,
        "ap": metrics.average_precision(labels, scores),
        "accuracy": metrics.accuracy_at(labels, decisions, threshold),
        "tpr_at_fpr": tpr,
        "threshold_at_fpr": thr_at,
        "ece": metrics.ece(labels, scores),
        "ece_bins": 10,
        "brier": metrics.brier(labels, scores),
        "confusion": metrics.confusion(labels, decisions, threshold),
        "by_group": _by_group(items, joined, threshold),
        "detectors": ident,  # distinct (detector_id, weights_sha256) among the matched records
        "notes": notes,
    }
    if len(ident) > 1:
        notes.append("the records come from more than one detector or weights file")
    return report


def _by_group(items: Sequence[LabelledItem], joined: _Joined, threshold: float) -> dict[str, Any]:
    totals = Counter(it.group for it in items)
    scored: dict[str, list[tuple[int, float, float]]] = {g: [] for g in totals}
    for (it, p), decision in zip(joined.scored, joined.decisions(threshold), strict=True):
        scored[it.group].append((it.label, p, decision))
    out: dict[str, Any] = {}
    for group in sorted(totals):
        triples = scored[group]
        y = [lab for lab, _, _ in triples]
        s = [p for _, p, _ in triples]
        out[display_path(group)] = {
            "n": totals[group],
            "n_scored": len(triples),
            "n_real": y.count(REAL),
            "n_fake": y.count(FAKE),
            "auc": metrics.roc_auc(y, s),
            "accuracy": metrics.accuracy_at(y, [d for _, _, d in triples], threshold),
            "mean_p_fake": _mean(s),
        }
    return out


# ---------------------------------------------------------------- the threshold file


def threshold_file_from_eval(items: Sequence[LabelledItem], records: Iterable[dict[str, Any]],
                             target_fpr: float) -> dict[str, Any]:
    """A threshold for the detector's own score that keeps the measured FPR on the real items at or
    below target_fpr, with the figures that say whether it separates anything.

    Picked over the items the pixels decide (provenance flags the others whatever the threshold),
    on the detector's own score (`detector.p_fake`, the scale fusion compares thresholds with).
    `separates` is False, and `problems` says why, when the threshold flags fewer fakes than
    `tpr_floor` or the AUC's 95% interval reaches 0.5. Raises UsageError when no real item was
    scored or the records mix detectors.
    """
    from fakescope_cli.record import utc_now

    if isinstance(target_fpr, bool) or not isinstance(target_fpr, (int, float)) or not (
        math.isfinite(target_fpr) and 0.0 <= target_fpr <= 1.0
    ):
        raise UsageError(f"target FPR must be between 0 and 1, not {target_fpr!r}")
    joined = _join(items, records)
    pairs = [(it.label, pix) for (it, _), pix in zip(joined.scored, joined.pixel, strict=True) if pix is not None]
    labels = [lab for lab, _ in pairs]
    scores = [pix for _, pix in pairs]
    n_real, n_fake = labels.count(REAL), labels.count(FAKE)
    if n_real == 0:
        raise UsageError("calibration needs scored real images; none were scored by the detector")
    ident = _detector_identities(joined.records)
    if len(ident) > 1:
        raise UsageError("the records come from more than one detector; calibrate one at a time")
    t = metrics.threshold_at_fpr(labels, scores, target_fpr)
    c = metrics.confusion(labels, scores, t)
    tpr = c["tp"] / n_fake if n_fake else None
    auc = metrics.roc_auc(labels, scores)
    interval = metrics.auc_interval(labels, scores)
    floor = max(MIN_CALIBRATED_TPR, 2 * float(target_fpr))
    problems: list[str] = []
    if tpr is None:
        problems.append("no fake image was scored by the detector: nothing shows the threshold catches fakes")
    elif tpr < floor:
        problems.append(f"at threshold {t:.4g} (measured FPR {c['fp'] / n_real:.3f}) it flags {c['tp']} of "
                        f"{n_fake} fakes: TPR {tpr:.3f}, below the floor {floor:.2f}")
    if interval is not None and interval[0] <= 0.5:
        problems.append(f"the detector's AUC here is {auc:.3f}, 95% interval {interval[0]:.3f}-{interval[1]:.3f}, "
                        "which includes 0.5 (chance)")
    warnings = list(problems)
    if target_fpr * n_real < 1:
        warnings.append(
            f"{n_real} real images cannot resolve an FPR of {target_fpr:g}: the threshold allows "
            "no false positive here, and the FPR on new data is uncertain; add real images"
        )
    if t > 1.0:
        warnings.append("a real image scored 1.0: no threshold in [0, 1] meets the target; nothing is flagged")
    if joined.unscored:
        warnings.append(f"{len(joined.unscored)} item(s) could not be scored and were left out")
    n_provenance = sum(1 for pix in joined.pixel if pix is None)
    if n_provenance:
        warnings.append(f"{n_provenance} item(s) flagged by provenance were left out of the pick: provenance "
                        "flags them whatever the threshold")
    return {
        "format": THRESHOLD_FILE_FORMAT,
        "threshold": t,
        "rule": "fake when the detector's own score >= threshold (provenance verdicts are flagged anyway)",
        "target_fpr": float(target_fpr),
        "measured_fpr": c["fp"] / n_real,
        "measured_tpr": tpr,
        "tpr_floor": floor,
        "auc": auc,
        "auc_interval": list(interval) if interval is not None else None,
        "separates": not problems,
        "problems": problems,  # why it does not separate (also the first warnings)
        "n_real": n_real,
        "n_fake": n_fake,
        "n_flagged_by_provenance": n_provenance,
        "detector_id": ident[0]["detector_id"] if ident else None,
        "weights_sha256": ident[0]["weights_sha256"] if ident else None,
        "created_at": utc_now(),
        "warnings": warnings,
    }


def refusal_message(threshold_file: dict[str, Any], path: str) -> str:
    """Why `--calibrate` did not write `path`, with the measured figures, in one line."""
    figures = "; ".join(threshold_file["problems"])
    return (f"--calibrate: not writing {path}: the detector's scores do not separate real from fake on this set "
            f"({figures}); a threshold from them would flag at random. Add labelled images, try another "
            "detector, or write it anyway with --force")


# ---------------------------------------------------------------- terminal text

_WIDTH = 80


def _clean(text: str, width: int) -> str:
    """Printable and at most `width` characters (folder names may hold control characters)."""
    s = "".join(ch if ch.isprintable() else "?" for ch in text)
    return s if len(s) <= width else s[: width - 1] + "…"


def _fmt(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def render_eval_text(report: dict[str, Any]) -> str:
    """The report as a plain-text summary for a terminal, no line over 80 columns."""
    lines: list[str] = []
    n, n_scored, n_unscored = report["n"], report["n_scored"], report["n_unscored"]
    head = f"fakescope eval: {n} images, {n_scored} scored"
    if n_unscored:
        head += f", {n_unscored} unscored"
    lines.append(head)
    if report["unscored_by_reason"]:
        parts = [f"{_clean(str(k), 30)} {v}" for k, v in report["unscored_by_reason"].items()]
        lines.extend(textwrap.wrap("unscored: " + ", ".join(parts), _WIDTH, subsequent_indent="  "))
    cls = report["classes"]
    lines.append(
        f"real {cls['real']['n_scored']} scored of {cls['real']['n']}, "
        f"fake {cls['fake']['n_scored']} scored of {cls['fake']['n']}; "
        f"threshold {report['threshold']:.4g}"
    )
    lines.append("")
    tpr = report["tpr_at_fpr"]
    rows = [
        ("AUC", report["auc"], "AP", report["ap"]),
        ("accuracy", report["accuracy"], "ECE (10 bins)", report["ece"]),
        ("Brier", report["brier"], "", None),
    ]
    thr = report["threshold_at_fpr"]
    rows.append(("TPR @ 1% FPR", tpr.get("0.01"), "TPR @ 5% FPR", tpr.get("0.05")))
    rows.append(("  at threshold", thr.get("0.01"), "  at threshold", thr.get("0.05")))
    for a, va, b, vb in rows:
        right = f"{b:<16}{_fmt(vb):>8}" if b else ""
        lines.append(f"  {a:<16}{_fmt(va):>8}      {right}".rstrip())
    c = report["confusion"]
    by_provenance = report.get("n_flagged_by_provenance") or 0
    lines += [
        "",
        f"flagged: provenance says AI ({by_provenance} file{'s' if by_provenance != 1 else ''}), or the "
        f"detector's score >= {report['threshold']:.4g}",
        "confusion (fake = positive)   flagged fake   passed as real",
        f"  actually fake               {c['tp']:>12}   {c['fn']:>14}",
        f"  actually real               {c['fp']:>12}   {c['tn']:>14}",
    ]
    groups = report["by_group"]
    if groups:
        lines += ["", f"  {'group':<28}{'n':>7}{'scored':>8}{'AUC':>8}{'accuracy':>10}{'mean p':>9}"]
        for name, g in groups.items():
            lines.append(
                f"  {_clean(name, 27):<28}{g['n']:>7}{g['n_scored']:>8}{_fmt(g['auc'], 3):>8}"
                f"{_fmt(g['accuracy'], 3):>10}{_fmt(g['mean_p_fake'], 3):>9}"
            )
    if report["notes"]:
        lines.append("")
        for note in report["notes"]:
            lines.extend(textwrap.wrap("note: " + _clean(note, 400), _WIDTH, subsequent_indent="  "))
    return "\n".join(line[:_WIDTH] for line in lines) + "\n"
