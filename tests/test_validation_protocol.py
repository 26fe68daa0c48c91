"""The validation protocol behind the builtin detector's figures: whole sources held out, per-source
AUCs and their mean computed as the card says, and the interval that tells a gain from luck."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import train.builtin as tb
from tests.conftest import DATA
from train.data import Item, grouped_folds


def _item(source: str, label: int) -> Item:
    return Item(path=f"{source}/{label}", label=label, source=source, generator="g", fmt="PNG",
                arr=np.zeros((1, 1, 3), np.uint8))


@pytest.fixture(scope="module")
def pool_items() -> list[Item]:
    """The shared pool's labels and sources, without its pixels (the split needs neither)."""
    rows = list(csv.DictReader((DATA / "manifest.csv").open()))
    return [_item(r["source"], 1 if r["label"] == "fake" else 0) for r in rows]


@pytest.mark.parametrize("seed", [0, 2])
def test_folds_hold_out_whole_sources_and_each_fold_has_both_labels(pool_items: list[Item], seed: int) -> None:
    folds = grouped_folds(pool_items, 4, seed=seed)
    fold_of: dict[str, set[int]] = {}
    for it, f in zip(pool_items, folds, strict=True):
        fold_of.setdefault(it.source, set()).add(f)
    assert all(len(fs) == 1 for fs in fold_of.values()), "a source was split across folds"
    for f in range(4):
        labels = {it.label for it, g in zip(pool_items, folds, strict=True) if g == f}
        assert labels == {0, 1}, f"fold {f} holds one label only"
    assert folds == grouped_folds(pool_items, 4, seed=seed)


def test_cross_validation_scores_each_image_with_a_model_that_never_saw_its_source(
        pool_items: list[Item], monkeypatch: pytest.MonkeyPatch) -> None:
    trained_on: list[set[str]] = []
    scored: list[str] = []

    def train_model(items, idx, recipe, recon, log=print, teacher=None):  # noqa: ANN001, ANN202
        trained_on.append({items[i].source for i in idx})
        return len(trained_on) - 1

    def score_arrays(net, arrays, recipe, is_jpeg):  # noqa: ANN001, ANN202
        return np.full(len(arrays), float(net))

    monkeypatch.setattr(tb, "train_model", train_model)
    monkeypatch.setattr(tb, "score_arrays", score_arrays)
    items = pool_items[::7]  # every 7th image keeps this quick and still spans many sources
    res = tb.cross_validate(items, tb.Recipe(), None, k=4, log=lambda *_: None, flip=False)
    assert len(trained_on) == 4
    folds = grouped_folds(items, 4, seed=0)
    for it, fold, net in zip(items, folds, res["oof_logits"], strict=True):
        assert net == fold  # scored by the model of its own fold ...
        assert it.source not in trained_on[fold]  # ... which was trained without any image of its source
        scored.append(it.source)
    assert len(scored) == len(items)


def test_per_source_aucs_and_their_mean_match_hand_computed_values() -> None:
    # source A: two fakes; source B: one fake, four reals; source C: two reals
    items = [_item("A", 1), _item("A", 1), _item("B", 1), _item("B", 0), _item("B", 0), _item("B", 0),
             _item("B", 0), _item("C", 0), _item("C", 0)]
    scores = np.array([0.9, 0.2, 0.6, 0.1, 0.7, 0.3, 0.5, 0.8, 0.4])
    table = tb.per_source_table(items, scores)
    # A's fakes (0.9, 0.2) against all six reals (0.1, 0.7, 0.3, 0.5, 0.8, 0.4): 0.9 beats 6, 0.2 beats 1
    assert table["A"]["auc_fakes_vs_all_reals"] == pytest.approx(7 / 12)
    # B's fake 0.6 against the six reals: beats 0.1, 0.3, 0.5, 0.4
    assert table["B"]["auc_fakes_vs_all_reals"] == pytest.approx(4 / 6)
    # B's reals (0.1, 0.7, 0.3, 0.5) below the three fakes (0.9, 0.2, 0.6): pairs won 3 + 1 + 2 + 2 of 12
    assert table["B"]["auc_reals_vs_all_fakes"] == pytest.approx(8 / 12)
    # within B: the fake 0.6 above 0.1, 0.3 and 0.5, below 0.7
    assert table["B"]["auc_within"] == pytest.approx(3 / 4)
    # C's reals (0.8, 0.4) against the fakes: pairs won 1 + 2 of 6
    assert table["C"]["auc_reals_vs_all_fakes"] == pytest.approx(0.5)
    assert "auc_within" not in table["A"] and "auc_fakes_vs_all_reals" not in table["C"]
    # the mean counts only sources with >= 5 images: B's two figures here
    assert tb.source_aucs(table) == pytest.approx([4 / 6, 8 / 12])
    assert tb.source_aucs(table, min_images=1) == pytest.approx([7 / 12, 4 / 6, 8 / 12, 0.5])
    res = tb.summarise(items, scores)
    assert res["mean_source_auc"] == pytest.approx(2 / 3)
    assert res["mean_source_auc_ci95"] == pytest.approx((2 / 3, 2 / 3))


def test_bootstrap_interval_of_the_mean() -> None:
    # two values: a resampled mean is 0, 0.5 or 1 with chances 1/4, 1/2, 1/4, so the 2.5% and 97.5%
    # points are the two ends
    assert tb.mean_ci95([0.0, 1.0]) == pytest.approx((0.0, 1.0))
    assert tb.mean_ci95([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    assert tb.mean_ci95([0.7, float("nan")]) == pytest.approx((0.7, 0.7))
    v = list(np.random.default_rng(1).uniform(0.4, 0.9, size=36))
    lo, hi = tb.mean_ci95(v)
    assert lo < float(np.mean(v)) < hi
    # the half-width of a mean of 36 values is about 1.96 sd / 6
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.std(v) / 6, rel=0.15)
    assert tb.mean_ci95(v) == tb.mean_ci95(v)


def test_paired_gain_compares_the_same_sources_only() -> None:
    def row(n_fake: int, n_real: int, **aucs: float) -> dict:
        return {"n_fake": n_fake, "n_real": n_real, **aucs}

    new = {"A": row(5, 0, auc_fakes_vs_all_reals=0.8), "B": row(3, 3, auc_fakes_vs_all_reals=0.7,
                                                                 auc_reals_vs_all_fakes=0.6),
           "tiny": row(1, 1, auc_fakes_vs_all_reals=1.0), "only_new": row(9, 0, auc_fakes_vs_all_reals=0.9)}
    old = {"A": row(5, 0, auc_fakes_vs_all_reals=0.6), "B": row(3, 3, auc_fakes_vs_all_reals=0.7,
                                                                 auc_reals_vs_all_fakes=0.7),
           "tiny": row(1, 1, auc_fakes_vs_all_reals=0.0)}
    g = tb.paired_source_gain(new, old)
    # A +0.2, B fakes 0, B reals -0.1; "tiny" (under 5 images) and "only_new" (not in old) are left out
    assert g["n"] == 3 and g["sources_better"] == 1
    assert g["mean_gain"] == pytest.approx(0.1 / 3)
    lo, hi = g["ci95"]
    assert lo == pytest.approx(-0.1) and hi == pytest.approx(0.2)


def test_compare_only_added_reranks_the_added_sources_among_themselves(tmp_path) -> None:
    from train.compare import ADDED_NOTE, added_sources, restrict

    fields = ["path", "label", "source", "notes"]
    rows = [("old", "fake", "seen before"), ("old", "real", "seen before"), ("mixed", "real", "seen before"),
            ("mixed", "fake", ADDED_NOTE), ("new_fake", "fake", f"crop; {ADDED_NOTE}"),
            ("new_real", "real", ADDED_NOTE)]
    with (tmp_path / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for i, (source, label, notes) in enumerate(rows):
            w.writerow({"path": f"{i}.png", "label": label, "source": source, "notes": notes})
    # a source with any older row is not an added one
    assert added_sources(tmp_path) == {"new_fake", "new_real"}
    run = {"oof_sources": ["old", "old", "new_fake", "new_fake", "new_real", "new_real", "new_real"],
           "oof_labels": [1, 0, 1, 1, 0, 0, 0],
           "oof_logits": [9.0, -9.0, 0.5, -0.2, 0.0, 1.0, -1.0]}
    res = restrict(run, {"new_fake", "new_real"})
    assert set(res["sources"]) == {"new_fake", "new_real"}
    # the fakes (0.5, -0.2) against the added reals only (0.0, 1.0, -1.0): pairs won 2 + 1 of 6
    assert res["sources"]["new_fake"]["auc_fakes_vs_all_reals"] == pytest.approx(3 / 6)
    assert res["pooled_auc"] == pytest.approx(3 / 6)
