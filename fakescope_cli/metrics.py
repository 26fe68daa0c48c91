"""Binary detection metrics for `fakescope eval`, in numpy only (no scikit-learn at run time).

Conventions used everywhere in this module:

* label 1 = fake (the positive class), label 0 = real;
* a score is "how fake": higher means more likely fake;
* a threshold flags an item as fake when ``score >= threshold``;
* FPR = real items flagged / real items, TPR = fake items flagged / fake items.

Scores must be finite: NaN or infinity raises `MetricError`, because silently dropping or ranking
them would change the numbers a user validates the tool with. A metric that is undefined for the
data (AUC with one class, anything on no samples) is returned as ``None``;
`undefined_reason` says why in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Slack when turning an FPR target into a count of allowed false positives, so that for example
# 0.29 * 100 (28.999999999999996 in binary) still allows 29.
_COUNT_EPS = 1e-9


class MetricError(ValueError):
    """The inputs cannot be scored: mismatched lengths, labels not 0/1, non-finite scores."""


def _as_arrays(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray,
               what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise MetricError("labels and scores must be one-dimensional")
    if y.shape[0] != s.shape[0]:
        raise MetricError(f"{y.shape[0]} labels but {s.shape[0]} {what}")
    if y.size:
        if y.dtype == np.bool_:
            y = y.astype(np.int64)
        elif not np.issubdtype(y.dtype, np.number):
            raise MetricError("labels must be 0 (real) or 1 (fake)")
        if not np.all((y == 0) | (y == 1)):
            raise MetricError("labels must be 0 (real) or 1 (fake)")
        if not np.all(np.isfinite(s)):
            bad = int(np.count_nonzero(~np.isfinite(s)))
            raise MetricError(f"{bad} of the {what} are NaN or infinite")
    return y.astype(np.int64), s


def undefined_reason(labels: Sequence[Any] | np.ndarray) -> str | None:
    """Why a ranking metric (AUC, AP, TPR at FPR) is undefined for these labels, or None."""
    y = np.asarray(labels)
    if y.size == 0:
        return "no scored samples"
    n_fake = int(np.count_nonzero(y == 1))
    if n_fake == 0:
        return "only real samples: needs both classes"
    if n_fake == y.size:
        return "only fake samples: needs both classes"
    return None


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x, tied values sharing the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    counts = np.diff(np.r_[starts, xs.size])
    group_rank = starts + (counts + 1) / 2.0  # mean of ranks starts+1 … starts+counts
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, counts)
    return ranks


def roc_auc(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray) -> float | None:
    """Area under the ROC curve in its Mann–Whitney form.

    AUC = P(score of a random fake > score of a random real) + 0.5 * P(equal): the fraction of
    (fake, real) pairs ranked correctly, a tie counting half. Computed from mid-ranks:
    AUC = (sum of the fakes' ranks - P(P+1)/2) / (P * N). None with one class or no samples.
    """
    y, s = _as_arrays(labels, scores)
    if undefined_reason(y) is not None:
        return None
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    ranks = _midranks(s)
    u = float(ranks[y == 1].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


@dataclass(frozen=True)
class _Curve:
    thresholds: np.ndarray  # distinct scores, decreasing
    tps: np.ndarray  # fakes with score >= threshold
    fps: np.ndarray  # reals with score >= threshold
    n_pos: int
    n_neg: int


def _curve(y: np.ndarray, s: np.ndarray) -> _Curve:
    """Counts at every distinct score used as a threshold, from the highest down."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    # last index of each run of equal scores: a threshold admits all tied items at once
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = (last + 1) - tps
    n_pos = int(y.sum())
    return _Curve(s_sorted[last], tps, fps, n_pos, int(y.size) - n_pos)


def roc_curve(labels: Sequence[Any] | np.ndarray,
              scores: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, plus the point (0, 0) at threshold +inf.

    Thresholds decrease; no intermediate points are dropped. Raises MetricError unless both
    classes are present, since one of the two rates would be 0/0.
    """
    y, s = _as_arrays(labels, scores)
    reason = undefined_reason(y)
    if reason is not None:
        raise MetricError(f"ROC curve undefined: {reason}")
    c = _curve(y, s)
    fpr = np.r_[0.0, c.fps / c.n_neg]
    tpr = np.r_[0.0, c.tps / c.n_pos]
    return fpr, tpr, np.r_[np.inf, c.thresholds]


def average_precision(labels: Sequence[Any] | np.ndarray,
                      scores: Sequence[Any] | np.ndarray) -> float | None:
    """Average precision, step-wise (no interpolation), as scikit-learn defines it.

    AP = sum over distinct thresholds t_k, from the highest score down, of
    (R_k - R_{k-1}) * P_k, with R_0 = 0, R_k the recall and P_k the precision at `score >= t_k`.
    Tied scores enter together. None when there is no fake sample (recall is 0/0); 1.0 when
    there are fakes but no reals.
    """
    y, s = _as_arrays(labels, scores)
    n_pos = int(y.sum())
    if y.size == 0 or n_pos == 0:
        return None
    c = _curve(y, s)
    precision = c.tps / (c.tps + c.fps)
    recall = c.tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _allowed_false_positives(target_fpr: float, n_neg: int) -> int:
    if not (isinstance(target_fpr, (int, float)) and math.isfinite(target_fpr) and 0.0 <= target_fpr <= 1.0):
        raise MetricError(f"target FPR must be a number between 0 and 1, not {target_fpr!r}")
    return int(math.floor(target_fpr * n_neg + _COUNT_EPS))


def threshold_at_fpr(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray,
                     target_fpr: float) -> float:
    """The smallest candidate threshold whose FPR on the real samples is <= target_fpr.

    With k = floor(target_fpr * N) false positives allowed and r_1 >= r_2 >= … the real scores,
    `score >= t` flags at most k reals exactly when t > r_{k+1}. There is no smallest real number
    above r_{k+1}, so candidates are the observed scores (as for an ROC curve): the answer is the
    smallest observed score (real or fake) above r_{k+1}. Every threshold in (r_{k+1}, answer]
    gives the same rates on these data; taking the observed score keeps a margin above the
    boundary real image. If no score lies above r_{k+1}, the answer is the next float above it
    (nothing in the data is flagged). If k >= N, every threshold qualifies and the lowest score is
    returned. Raises MetricError when there is no real sample.
    """
    y, s = _as_arrays(labels, scores)
    neg = np.sort(s[y == 0])[::-1]
    n_neg = neg.size
    if n_neg == 0:
        raise MetricError("a threshold at a target FPR needs at least one real sample")
    k = _allowed_false_positives(target_fpr, n_neg)
    if k >= n_neg:
        return float(s.min())
    boundary = neg[k]  # r_{k+1} in 1-based terms
    above = s[s > boundary]
    if above.size:
        return float(above.min())
    return float(np.nextafter(boundary, np.inf))


def tpr_at_fpr(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray,
               fpr: float) -> float | None:
    """The highest TPR among thresholds whose FPR is <= fpr (no interpolation between points).

    Only operating points a threshold can actually reach count, so with few reals a strict
    target (1 % of 50 reals allows no false positive) is read at FPR 0: a conservative value.
    It equals the TPR at `threshold_at_fpr(labels, scores, fpr)`. None unless both classes exist.
    """
    y, s = _as_arrays(labels, scores)
    if undefined_reason(y) is not None:
        _allowed_false_positives(fpr, 1)  # still reject a bad target
        return None
    t = threshold_at_fpr(y, s, fpr)
    pos = s[y == 1]
    return float(np.count_nonzero(pos >= t)) / pos.size


def confusion(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray,
              threshold: float) -> dict[str, int]:
    """{tp, fp, tn, fn} with fake as the positive class and `score >= threshold` meaning fake."""
    y, s = _as_arrays(labels, scores)
    flagged = s >= threshold
    fake = y == 1
    return {
        "tp": int(np.count_nonzero(flagged & fake)),
        "fp": int(np.count_nonzero(flagged & ~fake)),
        "tn": int(np.count_nonzero(~flagged & ~fake)),
        "fn": int(np.count_nonzero(~flagged & fake)),
    }


def auc_interval(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray,
                 z: float = 1.96) -> tuple[float, float] | None:
    """An approximate 95% interval for the AUC (Hanley and McNeil 1982 standard error, clipped to
    [0, 1]); None where the AUC is undefined. Deterministic: no resampling."""
    auc = roc_auc(labels, scores)
    if auc is None:
        return None
    y, _ = _as_arrays(labels, scores)
    n_pos, n_neg = int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def accuracy_at(labels: Sequence[Any] | np.ndarray, scores: Sequence[Any] | np.ndarray,
                threshold: float) -> float | None:
    """Fraction of samples whose `score >= threshold` call matches the label; None when empty."""
    c = confusion(labels, scores, threshold)
    n = sum(c.values())
    if n == 0:
        return None
    return (c["tp"] + c["tn"]) / n


def _check_probs(labels: Sequence[Any] | np.ndarray,
                 probs: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = _as_arrays(labels, probs, what="probabilities")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise MetricError("probabilities must lie in [0, 1]")
    return y, p


def reliability_bins(labels: Sequence[Any] | np.ndarray, probs: Sequence[Any] | np.ndarray,
                     n_bins: int = 10) -> list[dict[str, float | int]]:
    """The non-empty equal-width bins behind `ece`: {lo, hi, n, conf, acc} each.

    Bin b covers [b/n_bins, (b+1)/n_bins); the last bin also holds 1.0. conf is the mean p_fake
    in the bin, acc the fraction of fakes in it.
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise MetricError("n_bins must be a positive integer")
    y, p = _check_probs(labels, probs)
    idx = np.minimum(np.floor(p * n_bins).astype(np.int64), n_bins - 1)
    out: list[dict[str, float | int]] = []
    for b in np.unique(idx):
        in_bin = idx == b
        out.append({
            "lo": b / n_bins,
            "hi": (b + 1) / n_bins,
            "n": int(in_bin.sum()),
            "conf": float(p[in_bin].mean()),
            "acc": float(y[in_bin].mean()),
        })
    return out


def ece(labels: Sequence[Any] | np.ndarray, probs: Sequence[Any] | np.ndarray,
        n_bins: int = 10) -> float | None:
    """Expected calibration error of p_fake read as "the probability this image is fake".

    Items fall in n_bins equal-width bins of p_fake (see `reliability_bins`); in each bin,
    conf = mean p_fake and acc = fraction of items that are fake; ECE = sum over bins of
    (items in bin / all items) * |acc - conf|. This is the calibration of the fake-class
    probability, not the top-label variant that bins max(p, 1 - p) against correctness.
    None when empty.
    """
    bins = reliability_bins(labels, probs, n_bins)
    total = sum(int(b["n"]) for b in bins)
    if total == 0:
        return None
    return float(sum(int(b["n"]) / total * abs(float(b["acc"]) - float(b["conf"])) for b in bins))


def brier(labels: Sequence[Any] | np.ndarray, probs: Sequence[Any] | np.ndarray) -> float | None:
    """Mean squared difference between p_fake and the label (0 real, 1 fake); None when empty."""
    y, p = _check_probs(labels, probs)
    if y.size == 0:
        return None
    return float(np.mean((p - y) ** 2))
