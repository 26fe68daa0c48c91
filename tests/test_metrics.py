"""Metric values against examples worked out by hand in the comments (no scikit-learn needed).

Conventions: label 1 = fake (positive), 0 = real; `score >= threshold` flags fake.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakescope_cli import metrics as m

# Example A, six samples, no ties (score: label):
#   0.9 F, 0.8 R, 0.7 F, 0.4 R, 0.3 F, 0.1 R        P = 3 fakes, N = 3 reals
A_LABELS = [1, 0, 1, 0, 1, 0]
A_SCORES = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]

# Example B, ties across classes: 0.8 F, 0.5 F, 0.5 R, 0.2 R
B_LABELS = [1, 1, 0, 0]
B_SCORES = [0.8, 0.5, 0.5, 0.2]


def test_auc_example_a_by_pair_counting() -> None:
    # (fake, real) pairs ranked correctly, out of P*N = 9:
    #   0.9 beats 0.8, 0.4, 0.1 -> 3;  0.7 beats 0.4, 0.1 -> 2;  0.3 beats 0.1 -> 1
    # AUC = 6 / 9 = 2/3
    assert m.roc_auc(A_LABELS, A_SCORES) == pytest.approx(2 / 3, abs=1e-12)


def test_auc_is_order_invariant_and_flips_with_scores() -> None:
    perm = [3, 0, 5, 1, 4, 2]
    y = [A_LABELS[i] for i in perm]
    s = [A_SCORES[i] for i in perm]
    assert m.roc_auc(y, s) == pytest.approx(2 / 3, abs=1e-12)
    # reversing the ranking turns correctly ranked pairs into wrong ones: 1 - 2/3
    assert m.roc_auc(A_LABELS, [1 - v for v in A_SCORES]) == pytest.approx(1 / 3, abs=1e-12)


def test_auc_ties_count_half() -> None:
    # Example B pairs (P*N = 4): 0.8 beats 0.5 and 0.2 -> 2; the fake 0.5 ties the real 0.5
    # -> 0.5, and beats 0.2 -> 1.  AUC = 3.5 / 4 = 0.875
    assert m.roc_auc(B_LABELS, B_SCORES) == pytest.approx(0.875, abs=1e-12)
    # every score equal: every pair a tie -> 0.5
    assert m.roc_auc([1, 0, 1, 0], [0.5] * 4) == pytest.approx(0.5, abs=1e-12)


def test_average_precision_example_a() -> None:
    # Walk down the distinct scores; precision P_k and recall R_k at score >= t_k:
    #   0.9 F: tp 1 fp 0 -> P 1,   R 1/3  (recall step 1/3)
    #   0.8 R: tp 1 fp 1 -> R unchanged, no contribution
    #   0.7 F: tp 2 fp 1 -> P 2/3, R 2/3  (step 1/3)
    #   0.4 R: no recall change
    #   0.3 F: tp 3 fp 2 -> P 3/5, R 1    (step 1/3)
    # AP = 1/3 * (1 + 2/3 + 3/5) = 1/3 + 2/9 + 1/5 = 34/45
    assert m.average_precision(A_LABELS, A_SCORES) == pytest.approx(34 / 45, abs=1e-12)


def test_average_precision_ties_enter_together() -> None:
    # Example B: 0.8 -> tp 1 fp 0, P 1, R 1/2; 0.5 (one fake and one real together) -> tp 2 fp 1,
    # P 2/3, R 1.  AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.  (Taking the tied fake first would give 1.)
    assert m.average_precision(B_LABELS, B_SCORES) == pytest.approx(5 / 6, abs=1e-12)
    # all tied: one threshold, precision = 2/4
    assert m.average_precision([1, 0, 1, 0], [0.5] * 4) == pytest.approx(0.5, abs=1e-12)


def test_average_precision_edge_classes() -> None:
    assert m.average_precision([0, 0], [0.2, 0.9]) is None  # no fakes: recall is 0/0
    assert m.average_precision([1, 1], [0.2, 0.9]) == 1.0  # no reals: precision always 1


def test_roc_curve_example_a() -> None:
    fpr, tpr, thr = m.roc_curve(A_LABELS, A_SCORES)
    # threshold:  inf  0.9  0.8  0.7  0.4  0.3  0.1
    # fp flagged:  0    0    1    1    2    2    3    (of 3 reals)
    # tp flagged:  0    1    1    2    2    3    3    (of 3 fakes)
    assert thr[0] == math.inf
    assert list(thr[1:]) == [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]
    assert np.allclose(fpr, np.array([0, 0, 1, 1, 2, 2, 3]) / 3)
    assert np.allclose(tpr, np.array([0, 1, 1, 2, 2, 3, 3]) / 3)
    # trapezoids under that staircase: 1/3*1/3 + 1/3*2/3 + 1/3*1 = 6/9, the same as the AUC
    assert float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) == pytest.approx(2 / 3)


def test_roc_curve_merges_ties_into_one_point() -> None:
    fpr, tpr, thr = m.roc_curve(B_LABELS, B_SCORES)
    assert list(thr[1:]) == [0.8, 0.5, 0.2]
    assert np.allclose(fpr, [0, 0, 0.5, 1.0])
    assert np.allclose(tpr, [0, 0.5, 1.0, 1.0])


def test_roc_curve_needs_both_classes() -> None:
    with pytest.raises(m.MetricError, match="only fake"):
        m.roc_curve([1, 1], [0.3, 0.4])


def test_threshold_at_fpr_example_a() -> None:
    # Reals, highest first: r1 0.8, r2 0.4, r3 0.1.  k = floor(target * 3) false positives allowed;
    # the threshold must be above r_{k+1}; the answer is the smallest observed score above it.
    assert m.threshold_at_fpr(A_LABELS, A_SCORES, 0.0) == 0.9  # k 0: above 0.8 -> 0.9
    assert m.threshold_at_fpr(A_LABELS, A_SCORES, 0.3) == 0.9  # 0.9 reals allowed -> k 0
    assert m.threshold_at_fpr(A_LABELS, A_SCORES, 1 / 3) == 0.7  # k 1: above 0.4 -> 0.7
    assert m.threshold_at_fpr(A_LABELS, A_SCORES, 0.5) == 0.7  # k 1
    assert m.threshold_at_fpr(A_LABELS, A_SCORES, 2 / 3) == 0.3  # k 2: above 0.1 -> 0.3
    assert m.threshold_at_fpr(A_LABELS, A_SCORES, 1.0) == 0.1  # k 3 = N: everything may be flagged


def test_tpr_at_fpr_example_a() -> None:
    # From the ROC table above: highest TPR with FPR <= target
    assert m.tpr_at_fpr(A_LABELS, A_SCORES, 0.01) == pytest.approx(1 / 3)  # only FPR 0 points
    assert m.tpr_at_fpr(A_LABELS, A_SCORES, 0.05) == pytest.approx(1 / 3)
    assert m.tpr_at_fpr(A_LABELS, A_SCORES, 1 / 3) == pytest.approx(2 / 3)
    assert m.tpr_at_fpr(A_LABELS, A_SCORES, 2 / 3) == pytest.approx(1.0)
    assert m.tpr_at_fpr([1, 1], [0.2, 0.3], 0.05) is None


def test_threshold_at_fpr_tied_reals_force_a_stricter_threshold() -> None:
    # reals 0.6 0.6 0.2 0.1, fakes 0.9 0.6.  Target 1/4 allows k = 1 false positive, but the two
    # reals at 0.6 can only be flagged together, so the threshold must be above r2 = 0.6: 0.9.
    y = [0, 0, 0, 0, 1, 1]
    s = [0.6, 0.6, 0.2, 0.1, 0.9, 0.6]
    t = m.threshold_at_fpr(y, s, 0.25)
    assert t == 0.9
    assert m.confusion(y, s, t)["fp"] == 0
    assert m.tpr_at_fpr(y, s, 0.25) == pytest.approx(0.5)


def test_threshold_above_the_top_real_when_no_score_is_higher() -> None:
    # The top score is real (0.95); FPR 0 needs t > 0.95 and no observed score is above it.
    y = [0, 1, 1]
    s = [0.95, 0.9, 0.5]
    t = m.threshold_at_fpr(y, s, 0.0)
    assert 0.95 < t < 0.9500001
    assert m.confusion(y, s, t) == {"tp": 0, "fp": 0, "tn": 1, "fn": 2}


def test_threshold_count_is_robust_to_binary_fractions() -> None:
    # 0.29 * 100 is 28.999999999999996 in binary; 29 false positives must still be allowed.
    y = [0] * 100 + [1]
    s = [i / 100 for i in range(100)] + [1.0]
    t = m.threshold_at_fpr(y, s, 0.29)
    assert m.confusion(y, s, t)["fp"] == 29


def test_threshold_at_fpr_errors() -> None:
    with pytest.raises(m.MetricError, match="real sample"):
        m.threshold_at_fpr([1, 1], [0.1, 0.2], 0.05)
    with pytest.raises(m.MetricError, match="target FPR"):
        m.threshold_at_fpr(A_LABELS, A_SCORES, 1.5)
    with pytest.raises(m.MetricError, match="target FPR"):
        m.tpr_at_fpr([1], [0.5], float("nan"))


def test_confusion_and_accuracy_example_a() -> None:
    # At 0.5: flagged 0.9 F (tp), 0.8 R (fp), 0.7 F (tp); passed 0.4 R (tn), 0.3 F (fn), 0.1 R (tn)
    assert m.confusion(A_LABELS, A_SCORES, 0.5) == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    assert m.accuracy_at(A_LABELS, A_SCORES, 0.5) == pytest.approx(4 / 6)
    # >= is inclusive: at 0.7 the fake scored exactly 0.7 is flagged
    assert m.confusion(A_LABELS, A_SCORES, 0.7) == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    assert m.confusion(A_LABELS, A_SCORES, 0.71) == {"tp": 1, "fp": 1, "tn": 2, "fn": 2}


def test_ece_example_a_ten_bins() -> None:
    # With 10 bins every sample has a bin of its own; |acc - conf| per bin:
    #   0.9 F: |1 - 0.9| = 0.1   0.8 R: |0 - 0.8| = 0.8   0.7 F: 0.3
    #   0.4 R: 0.4               0.3 F: 0.7               0.1 R: 0.1
    # ECE = (0.1 + 0.8 + 0.3 + 0.4 + 0.7 + 0.1) / 6 = 2.4 / 6 = 0.4
    assert m.ece(A_LABELS, A_SCORES) == pytest.approx(0.4, abs=1e-12)


def test_ece_example_a_two_bins() -> None:
    # [0, 0.5): 0.4 R, 0.3 F, 0.1 R  -> conf 0.8/3, acc 1/3, gap 0.2/3 = 1/15
    # [0.5, 1]: 0.9 F, 0.8 R, 0.7 F  -> conf 2.4/3 = 0.8, acc 2/3, gap 2/15
    # ECE = 3/6 * 1/15 + 3/6 * 2/15 = 1/10
    assert m.ece(A_LABELS, A_SCORES, n_bins=2) == pytest.approx(0.1, abs=1e-12)
    bins = m.reliability_bins(A_LABELS, A_SCORES, n_bins=2)
    assert [(b["lo"], b["hi"], b["n"]) for b in bins] == [(0.0, 0.5, 3), (0.5, 1.0, 3)]
    assert bins[1]["conf"] == pytest.approx(0.8) and bins[1]["acc"] == pytest.approx(2 / 3)


def test_ece_bin_edges_and_perfect_calibration() -> None:
    # 0.5 opens the upper of two bins; 1.0 belongs to the last bin: conf 0.75, acc 1/2 -> 0.25
    assert m.ece([1, 0], [1.0, 0.5], n_bins=2) == pytest.approx(0.25)
    # one fake in four, all at p 0.25: conf 0.25 = acc 0.25 -> 0
    assert m.ece([1, 0, 0, 0], [0.25] * 4) == pytest.approx(0.0, abs=1e-12)


def test_brier_example_a() -> None:
    # squared errors: 0.1² 0.8² 0.3² 0.4² 0.7² 0.1² = 0.01 0.64 0.09 0.16 0.49 0.01 -> 1.4 / 6
    assert m.brier(A_LABELS, A_SCORES) == pytest.approx(1.4 / 6, abs=1e-12)


def test_single_class_gives_none_with_a_reason() -> None:
    assert m.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert m.undefined_reason([1, 1, 1]) == "only fake samples: needs both classes"
    assert m.undefined_reason([0, 0]) == "only real samples: needs both classes"
    assert m.undefined_reason([]) == "no scored samples"
    assert m.undefined_reason([0, 1]) is None
    # accuracy, ECE and Brier are still defined on one class
    assert m.accuracy_at([1, 1, 1], [0.2, 0.5, 0.9], 0.5) == pytest.approx(2 / 3)
    assert m.brier([0, 0], [0.0, 0.5]) == pytest.approx(0.125)


def test_empty_input() -> None:
    assert m.roc_auc([], []) is None
    assert m.average_precision([], []) is None
    assert m.accuracy_at([], [], 0.5) is None
    assert m.ece([], []) is None
    assert m.brier([], []) is None
    assert m.confusion([], [], 0.5) == {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    assert m.tpr_at_fpr([], [], 0.01) is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_rejected(bad: float) -> None:
    for fn in (m.roc_auc, m.average_precision, m.ece, m.brier):
        with pytest.raises(m.MetricError, match="NaN or infinite"):
            fn([1, 0], [0.5, bad])
    with pytest.raises(m.MetricError):
        m.confusion([1, 0], [0.5, bad], 0.5)


def test_malformed_inputs_are_rejected() -> None:
    with pytest.raises(m.MetricError, match="2 labels but 3"):
        m.roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(m.MetricError, match="0 \\(real\\) or 1"):
        m.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(m.MetricError, match="0 \\(real\\) or 1"):
        m.roc_auc(["real", "fake"], [0.1, 0.2])
    with pytest.raises(m.MetricError, match="\\[0, 1\\]"):
        m.ece([0, 1], [0.1, 1.2])
    with pytest.raises(m.MetricError, match="n_bins"):
        m.ece([0, 1], [0.1, 0.2], n_bins=0)
    # booleans are fine labels
    assert m.roc_auc([True, False], [0.9, 0.1]) == 1.0


def test_against_scikit_learn_on_random_tied_data() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        s = np.round(rng.random(n), int(rng.integers(1, 3)))  # coarse rounding -> many ties
        assert m.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
        assert m.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
        assert m.brier(y, s) == pytest.approx(sk.brier_score_loss(y, s), abs=1e-12)
        fpr, tpr, thr = m.roc_curve(y, s)
        fpr2, tpr2, thr2 = sk.roc_curve(y, s, drop_intermediate=False)
        assert np.allclose(fpr, fpr2) and np.allclose(tpr, tpr2) and np.allclose(thr[1:], thr2[1:])
        for target in (0.0, 0.01, 0.05, 0.2):
            assert m.tpr_at_fpr(y, s, target) == pytest.approx(tpr2[fpr2 <= target + 1e-12].max())


def test_auc_interval_hanley_mcneil() -> None:
    """Hanley and McNeil (1982), Radiology 143:29-36: SE of an AUC of 0.5 from 10 positives and 10
    negatives is sqrt((0.25 + 9*(1/3 - 0.25) + 9*(1/3 - 0.25)) / 100) = sqrt(1.75) / 10."""
    from fakescope_cli import metrics

    labels = [1] * 10 + [0] * 10
    tied = [0.5] * 20  # every pair tied: AUC 0.5
    low, high = metrics.auc_interval(labels, tied)
    half = 1.96 * math.sqrt(1.75) / 10
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half))
    separated = [0.9] * 10 + [0.1] * 10
    assert metrics.auc_interval(labels, separated) == (1.0, 1.0)
    # More data, narrower interval around the same AUC.
    few = metrics.auc_interval([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    many = metrics.auc_interval([1, 1, 0, 0] * 25, [0.9, 0.4, 0.5, 0.1] * 25)
    assert few is not None and many is not None and many[1] - many[0] < few[1] - few[0]
    assert metrics.auc_interval([1, 1], [0.2, 0.3]) is None  # one class only: undefined
