"""The in-process engine batches detector calls for backends that offer `analyze_batch`."""

from __future__ import annotations

from PIL import Image

from fakescope_cli.analyze import ScanConfig
from fakescope_cli.engine import analysis_engine
from fakescope_cli.inputs import InputExpander


def _tree(tmp_path, n=7):
    for i in range(n):
        name = "f_bad.png" if i == 3 else f"f{i}.png"
        Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(tmp_path / name)
    return list(InputExpander().expand([str(tmp_path)]))


def test_batches_fill_and_keep_order(tmp_path):
    cands = _tree(tmp_path)
    backend = "tests.plugins.batch_detector:BatchDetector"  # declares runs_in_process itself
    config = ScanConfig(backend=backend, backend_options={"batch_size": 3})
    with analysis_engine(config, len(cands)) as (_info, analyse_all):
        records = list(analyse_all(cands))
    assert [r["path"] for r in records] == [c.path for c in cands]
    bad = next(r for r in records if r["path"].endswith("f_bad.png"))
    assert bad["verdict"] == "error" and bad["errors"][0]["code"] == "detector-error"
    good = [r for r in records if r is not bad]
    assert all(abs(r["detector"]["p_fake"] - r["p_fake"]) < 1e-6 for r in good)


def test_batch_sizes_seen_by_the_detector(tmp_path):
    from fakescope_cli.analyze import Analyzer
    from fakescope_cli.engine import _batched_in_order

    cands = _tree(tmp_path)
    analyzer = Analyzer(ScanConfig(backend="tests.plugins.batch_detector:BatchDetector",
                                   backend_options={"batch_size": 3}))
    records = list(_batched_in_order(analyzer, cands, 3))
    assert len(records) == 7
    assert analyzer.detector.batches == [3, 3, 1]
