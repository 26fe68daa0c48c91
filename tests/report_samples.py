"""Records for the HTML report's tests and for docs/make_screenshot.py.

Real scans of the shared provenance fixtures (`--backend none`), plus records whose detector block
carries attributes, an explanation and a region grid, on real fixture files. The region grids are
measured from the file's stored pixels (mean brightness per cell), so a test can check that the grid
drawn over the upright thumbnail lands on the same pixels.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fakescope_cli.detectors.base import DetectorResult
from fakescope_cli.media import Media
from fakescope_cli.record import ScanRecord
from tests.conftest import FIXTURES, REPO
from tests.record_examples import CAMERA, error_record, not_found_record, ok_record, uncertain_record

PROVENANCE = FIXTURES / "provenance"
ORIENTATION = FIXTURES / "exif-samples" / "jpg" / "orientation"
FLUX = PROVENANCE / "comfyui" / "flux_flux_schnell_example.png"


def brightness_grid(path: Path | str, rows: int, cols: int) -> list[list[float]]:
    """Mean brightness (0..1) of each cell of a rows x cols grid over the file's stored pixels."""
    import numpy as np

    rgb = np.asarray(Media.open(path).rgb(), dtype=np.float64).mean(axis=2) / 255.0
    h, w = rgb.shape
    return [
        [round(float(rgb[r * h // rows:(r + 1) * h // rows, c * w // cols:(c + 1) * w // cols].mean()), 4)
         for c in range(cols)]
        for r in range(rows)
    ]


def detector_record(path: Path | str, *, verdict: str, p_fake: float, rows: int, cols: int,
                    attributes: dict[str, float] | None = None, explanation: str | None = None,
                    shown: str | None = None) -> dict[str, Any]:
    """A record for a real file with a detector block whose region grid is the file's brightness."""
    media = Media.open(path)
    record = ScanRecord(path=shown if shown is not None else str(path), sha256=media.sha256,
                        bytes=media.size, format=media.format, width=media.width, height=media.height)
    result = DetectorResult(p_fake=p_fake, attributes=attributes, explanation=explanation,
                            regions={"rows": rows, "cols": cols, "p_fake": brightness_grid(path, rows, cols)})
    record.detector = {"id": "sample-regions", "version": "1", "weights_sha256": None, **result.to_dict()}
    record.detector_id, record.detector_version = "sample-regions", "1"
    record.p_fake = p_fake
    record.verdict = verdict
    record.reasons = [f"The pixel detector scores {p_fake * 100:.0f}%."]
    return record.to_dict()


_SCANNED: dict[tuple[str, ...], list[dict[str, Any]]] = {}


def scanned_records(*paths: str | Path, cwd: Path = REPO) -> list[dict[str, Any]]:
    """Records from a real `fakescope scan --backend none -f jsonl` run (paths relative to `cwd`).

    One scan per distinct call in a process (each costs a CLI start); callers get their own copy.
    """
    args = [os.path.relpath(p, cwd) for p in paths]
    key = (str(cwd), *args)
    if key not in _SCANNED:
        _SCANNED[key] = _scan(args, cwd)
    return copy.deepcopy(_SCANNED[key])


def _scan(args: list[str], cwd: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "fakescope_cli", "scan", *args, "--backend", "none", "-f",
                           "jsonl", "-q", "--no-cache"], cwd=cwd, env=env, capture_output=True, timeout=300,
                          check=False)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"scan failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


def rich_records(relative_to: Path | None = None) -> list[dict[str, Any]]:
    """Constructed records that exercise every part of a card.

    Paths are absolute, or relative to `relative_to` (then the report must be made from there).
    """
    def shown(path: Path) -> str | None:
        return os.path.relpath(path, relative_to) if relative_to is not None else None

    portrait = ORIENTATION / "portrait_6.jpg"
    return [
        uncertain_record(shown(CAMERA)),  # 14 attributes, explanation, 2x3 regions on a camera JPEG
        detector_record(FLUX, verdict="likely-ai", p_fake=0.91, rows=4, cols=4, shown=shown(FLUX),
                        explanation="The hands and the lettering look painted rather than photographed.\n"
                        "On balance this image is fake"),
        detector_record(portrait, verdict="likely-real", p_fake=0.12, rows=4, cols=3, shown=shown(portrait)),
        ok_record(shown(CAMERA)),
        error_record(),
        not_found_record("gone/missing.png"),
    ]


def sample_records(relative_to: Path | None = None) -> list[dict[str, Any]]:
    return rich_records(relative_to) + scanned_records(PROVENANCE, cwd=relative_to or REPO)


def write_report(records: list[dict[str, Any]], out: Path, *, arguments: list[str] | None = None,
                 interrupted: bool = False, thumbnails: bool | None = None) -> str:
    """Render `records` to `out` with the HTML renderer, driven as the scan loop drives it."""
    from fakescope_cli.record import count_records, run_header, utc_now
    from fakescope_cli.render.html import HtmlRenderer

    header = run_header(arguments or ["scan", "--format", "html", "-o", out.name, "../shared/fixtures/provenance"],
                        None, utc_now())
    counts: dict[str, int] = {"files": 0, "errors": 0, "skipped": 0}
    with open(out, "w", encoding="utf-8", newline="") as fh:
        renderer = HtmlRenderer(fh, thumbnails=thumbnails)
        renderer.start(header)
        for record in records:
            renderer.add(record)
            count_records(counts, record)
            counts["errors"] += bool(record["errors"])
        header.update(finished_at=utc_now(), interrupted=interrupted, counts=counts)
        renderer.finish(header)
    return out.read_text(encoding="utf-8")
