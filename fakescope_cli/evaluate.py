"""`fakescope eval`: labelled inputs, the metric report, and threshold calibration.

Labelled input is a folder with `real/` and `fake/` subfolders or a CSV (path,label[,group]).
The CLI scans the items' paths with any backend and hands the result records to `evaluate`,
which joins them back by path. Items the scan could not score (error records, a null p_fake) are
counted by reason and left out of the metrics, never guessed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fakescope_cli import metrics
from fakescope_cli.errors import InputError, UsageError
from fakescope_cli.media import display_path, has_image_extension, read_file_readonly, sniff_format

EVAL_FORMAT = "fakescope-eval/1"
CALIBRATION_FORMAT = "fakescope-calibration/1"
REPORTED_FPRS = (0.01, 0.05)
MAX_CALIBRATION_BYTES = 1 << 20  # a calibration file is a few hundred bytes
MAX_UNSCORED_EXAMPLES = 20

REAL, FAKE = 0, 1
_LABEL_WORDS = {"real": REAL, "0": REAL, "human": REAL, "fake": FAKE, "1": FAKE, "ai": FAKE}
_CLASS_DIRS = {"real": REAL, "fake": FAKE}
_GROUP_COLUMNS = ("generator", "group", "source")  # first one present names the group
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class CalibrationError(UsageError, ValueError):
    """A calibration file that cannot be used: a usage error (exit 2), also a ValueError."""


@dataclass(frozen=True)
class LabelledItem:
    path: str
    label: int  # 0 real, 1 fake
    group: str


def _class_name(label: int) -> str:
    return "fake" if label == FAKE else "real"


# ---------------------------------------------------------------- loading


def _is_image_file(path: str) -> bool:
    """An image by extension, or by its leading bytes when the extension says nothing."""
    if has_image_extension(path):
        return True  # a broken .jpg must reach the scan and show up as unscored, not vanish
    # O_NONBLOCK and the fstat check: a FIFO or device in the tree must never hang the walk
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, 64)
    except OSError:
        return False
    finally:
        os.close(fd)
    return sniff_format(head) is not None


def _walk_error(exc: OSError) -> None:
    # An unreadable subfolder would silently drop labelled images and bias every number.
    raise UsageError(f"{exc.filename}: cannot list folder: {exc.strerror or exc}")


def _load_folder(root: str, skipped: list[str] | None) -> list[LabelledItem]:
    class_dirs: list[tuple[str, int]] = []
    for entry in sorted(os.listdir(root)):
        label = _CLASS_DIRS.get(entry.lower())
        if label is not None and os.path.isdir(os.path.join(root, entry)):
            class_dirs.append((entry, label))
    if not class_dirs:
        raise UsageError(f"{root}: expected a 'real/' and/or 'fake/' subfolder (or pass a CSV)")
    items: list[LabelledItem] = []
    for entry, label in class_dirs:
        class_root = os.path.join(root, entry)
        for dirpath, dirnames, filenames in os.walk(class_root, onerror=_walk_error):
            dirnames.sort()
            rel = os.path.relpath(dirpath, class_root)
            group = _class_name(label) if rel == os.curdir else rel.split(os.sep)[0]
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if _is_image_file(path):
                    items.append(LabelledItem(path, label, group))
                elif skipped is not None:
                    skipped.append(path)
    return items


def parse_label(text: str) -> int:
    """real/human/0 -> 0 and fake/ai/1 -> 1, case-insensitive; UsageError otherwise."""
    label = _LABEL_WORDS.get(text.strip().lower())
    if label is None:
        raise UsageError(f"label {text!r} is not one of real, fake, 0, 1, human, ai")
    return label


def _load_csv(csv_path: str) -> list[LabelledItem]:
    base = os.path.dirname(csv_path)
    delimiter = "\t" if csv_path.lower().endswith(".tsv") else ","
    try:
        fh = open(csv_path, encoding="utf-8-sig", newline="")  # utf-8-sig: spreadsheets add a BOM
    except OSError as exc:
        raise UsageError(f"{csv_path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{csv_path}: not a readable UTF-8 CSV: {exc}") from None
        if header is None:
            raise UsageError(f"{csv_path}: empty file; expected a header 'path,label[,generator]'")
        columns = [h.strip().lower() for h in header]
        if "path" not in columns or "label" not in columns:
            raise UsageError(f"{csv_path}: the header must name 'path' and 'label' columns")
        i_path, i_label = columns.index("path"), columns.index("label")
        i_group = next((columns.index(c) for c in _GROUP_COLUMNS if c in columns), None)
        items: list[LabelledItem] = []
        seen: dict[str, tuple[int, int]] = {}
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) <= max(i_path, i_label):
                    raise UsageError(f"{csv_path}:{line}: missing path or label")
                raw_path = row[i_path].strip()
                if not raw_path:
                    raise UsageError(f"{csv_path}:{line}: empty path")
                try:
                    label = parse_label(row[i_label])
                except UsageError as exc:
                    raise UsageError(f"{csv_path}:{line}: {exc}") from None
                path = raw_path if os.path.isabs(raw_path) else os.path.join(base, raw_path)
                if path in seen:
                    first_line, first_label = seen[path]
                    if first_label != label:
                        raise UsageError(
                            f"{csv_path}:{line}: {raw_path!r} is labelled differently on line {first_line}"
                        )
                    continue  # an exact repeat would count the image twice
                seen[path] = (line, label)
                group = row[i_group].strip() if i_group is not None and i_group < len(row) else ""
                items.append(LabelledItem(path, label, group or _class_name(label)))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{csv_path}: not a readable UTF-8 CSV: {exc}") from None
    return items


def load_labelled(path: str | os.PathLike[str], *, skipped: list[str] | None = None) -> list[LabelledItem]:
    """Labelled items from a folder with real/ and fake/ subfolders, or from a CSV file.

    Folder: both subfolders are walked recursively (names matched case-insensitively); the group
    is the first folder below real/ or fake/ (fake/midjourney/a/x.png -> 'midjourney'), else
    'real' or 'fake'. Non-image files are left out and, when `skipped` is given, appended to it.
    CSV: header with `path` and `label` and optionally `generator`, `group` or `source` (the first
    present names the group); relative paths are resolved against the CSV's folder; files are
    listed as given, so a missing one becomes an unscored error record rather than vanishing.
    Raises UsageError for anything that cannot be read as labelled input.
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        return _load_folder(p, skipped)
    if os.path.isfile(p):
        return _load_csv(p)
    raise UsageError(f"{p}: no such folder or CSV file")


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


@dataclass(frozen=True)
class _Joined:
    scored: list[tuple[LabelledItem, float]]
    unscored: list[tuple[LabelledItem, str]]
    records: list[dict[str, Any]]  # the records that matched an item


def _join(items: Sequence[LabelledItem], records: Iterable[dict[str, Any]]) -> _Joined:
    exact, normed = _index_records(records)
    scored: list[tuple[LabelledItem, float]] = []
    unscored: list[tuple[LabelledItem, str]] = []
    matched: list[dict[str, Any]] = []
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
            scored.append((item, p))
    return _Joined(scored, unscored, matched)


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
        "rule": "fake when p_fake >= threshold",
        "auc": auc,
        "ap": metrics.average_precision(labels, scores),
        "accuracy": metrics.accuracy_at(labels, scores, threshold),
        "tpr_at_fpr": tpr,
        "threshold_at_fpr": thr_at,
        "ece": metrics.ece(labels, scores),
        "ece_bins": 10,
        "brier": metrics.brier(labels, scores),
        "confusion": metrics.confusion(labels, scores, threshold),
        "by_group": _by_group(items, joined, threshold),
        "detectors": ident,  # distinct (detector_id, weights_sha256) among the matched records
        "notes": notes,
    }
    if len(ident) > 1:
        notes.append("the records come from more than one detector or weights file")
    return report


def _by_group(items: Sequence[LabelledItem], joined: _Joined, threshold: float) -> dict[str, Any]:
    totals = Counter(it.group for it in items)
    scored: dict[str, list[tuple[int, float]]] = {g: [] for g in totals}
    for it, p in joined.scored:
        scored[it.group].append((it.label, p))
    out: dict[str, Any] = {}
    for group in sorted(totals):
        pairs = scored[group]
        y = [lab for lab, _ in pairs]
        s = [p for _, p in pairs]
        out[display_path(group)] = {
            "n": totals[group],
            "n_scored": len(pairs),
            "n_real": y.count(REAL),
            "n_fake": y.count(FAKE),
            "auc": metrics.roc_auc(y, s),
            "accuracy": metrics.accuracy_at(y, s, threshold),
            "mean_p_fake": _mean(s),
        }
    return out


# ---------------------------------------------------------------- calibration


def calibration_from_eval(items: Sequence[LabelledItem], records: Iterable[dict[str, Any]],
                          target_fpr: float) -> dict[str, Any]:
    """A threshold that keeps the measured FPR on the real items at or below target_fpr.

    The threshold is `metrics.threshold_at_fpr` over the scored items (`p_fake >= threshold`
    flags). Raises UsageError when no real item was scored or the records mix detectors.
    """
    from fakescope_cli.record import utc_now

    if isinstance(target_fpr, bool) or not isinstance(target_fpr, (int, float)) or not (
        math.isfinite(target_fpr) and 0.0 <= target_fpr <= 1.0
    ):
        raise UsageError(f"target FPR must be between 0 and 1, not {target_fpr!r}")
    joined = _join(items, records)
    labels = [it.label for it, _ in joined.scored]
    scores = [p for _, p in joined.scored]
    n_real, n_fake = labels.count(REAL), labels.count(FAKE)
    if n_real == 0:
        raise UsageError("calibration needs scored real images; none were scored")
    ident = _detector_identities(joined.records)
    if len(ident) > 1:
        raise UsageError("the records come from more than one detector; calibrate one at a time")
    t = metrics.threshold_at_fpr(labels, scores, target_fpr)
    c = metrics.confusion(labels, scores, t)
    warnings: list[str] = []
    if target_fpr * n_real < 1:
        warnings.append(
            f"{n_real} real images cannot resolve an FPR of {target_fpr:g}: the threshold allows "
            "no false positive here, and the FPR on new data is uncertain; add real images"
        )
    if t > 1.0:
        warnings.append("a real image scored 1.0: no threshold in [0, 1] meets the target; nothing is flagged")
    if joined.unscored:
        warnings.append(f"{len(joined.unscored)} item(s) could not be scored and were left out")
    return {
        "format": CALIBRATION_FORMAT,
        "threshold": t,
        "rule": "fake when p_fake >= threshold",
        "target_fpr": float(target_fpr),
        "measured_fpr": c["fp"] / n_real,
        "measured_tpr": c["tp"] / n_fake if n_fake else None,
        "n_real": n_real,
        "n_fake": n_fake,
        "detector_id": ident[0]["detector_id"] if ident else None,
        "weights_sha256": ident[0]["weights_sha256"] if ident else None,
        "created_at": utc_now(),
        "warnings": warnings,
    }


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_rate(v: Any) -> bool:
    return _is_num(v) and 0.0 <= v <= 1.0


def validate_calibration(data: Any, source: str = "calibration") -> dict[str, Any]:
    """Check a parsed calibration object; return it, or raise CalibrationError naming the bad field."""

    def bad(msg: str) -> CalibrationError:
        return CalibrationError(f"{source}: not a valid fakescope calibration: {msg}")

    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    if data.get("format") != CALIBRATION_FORMAT:
        raise bad(f"'format' must be {CALIBRATION_FORMAT!r}, found {data.get('format')!r}")
    t = data.get("threshold")
    # A threshold may sit one float above 1.0 when a real image scored 1.0 (flags nothing).
    if not _is_num(t) or not 0.0 <= t <= 1.0 + 1e-9:
        raise bad("'threshold' must be a number in [0, 1]")
    if not _is_rate(data.get("target_fpr")):
        raise bad("'target_fpr' must be a number in [0, 1]")
    if not _is_rate(data.get("measured_fpr")):
        raise bad("'measured_fpr' must be a number in [0, 1]")
    if data.get("measured_tpr") is not None and not _is_rate(data["measured_tpr"]):
        raise bad("'measured_tpr' must be a number in [0, 1] or null")
    for key, least in (("n_real", 1), ("n_fake", 0)):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise bad(f"'{key}' must be an integer >= {least}")
    if data.get("detector_id") is not None and not isinstance(data["detector_id"], str):
        raise bad("'detector_id' must be a string or null")
    w = data.get("weights_sha256")
    if w is not None and not (isinstance(w, str) and _SHA256_RE.fullmatch(w)):
        raise bad("'weights_sha256' must be 64 lowercase hex digits or null")
    if not isinstance(data.get("created_at"), str):
        raise bad("'created_at' must be a string")
    return data


def load_calibration(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a calibration file written by `eval --calibrate`; CalibrationError if not."""
    p = os.fspath(path)
    try:
        # the guarded reader: never blocks on a FIFO, refuses empty and oversized files
        raw, _ = read_file_readonly(p, MAX_CALIBRATION_BYTES)
    except InputError as exc:
        raise CalibrationError(f"{p}: cannot read calibration: {exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{p}: not a valid fakescope calibration: not JSON ({exc})") from None
    return validate_calibration(data, p)


def calibration_mismatch(calibration: dict[str, Any], detector_id: str | None,
                         weights_sha256: str | None) -> str | None:
    """A warning when a calibration was made for another detector or weights file, else None."""
    cal_id, cal_w = calibration.get("detector_id"), calibration.get("weights_sha256")
    if cal_id is not None and detector_id is not None and cal_id != detector_id:
        return f"calibration was made for detector {cal_id!r}, not {detector_id!r}"
    if cal_w is not None and weights_sha256 is not None and cal_w != weights_sha256:
        return "calibration was made for other weights (sha256 differs); its threshold may not hold"
    return None


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
    lines += [
        "",
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
