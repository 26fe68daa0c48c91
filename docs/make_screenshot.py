"""Make docs/report-sample.png: a headless-Chromium screenshot of a sample HTML report.

The report holds real `--backend none` scans of ../shared/fixtures/provenance plus a few records with
detector attributes, explanations and region maps (tests/report_samples.py). Needs Debian's
`chromium` and the `websocket-client` package. Run from anywhere: `python docs/make_screenshot.py`.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser import Chromium, find_chromium  # noqa: E402
from tests.report_samples import sample_records, write_report  # noqa: E402

OUT = REPO / "docs" / "report-sample.png"
MAX_BYTES = 300_000
WIDTH, HEIGHT = 1280, 1500


def main() -> int:
    binary = find_chromium()
    if binary is None:
        print("chromium not found (apt-get install chromium, or set FAKESCOPE_CHROMIUM)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        os.chdir(REPO)  # the sample's paths are relative to the checkout, as a user's scan would be
        write_report(sample_records(relative_to=REPO), report)
        with Chromium(binary, width=WIDTH, height=HEIGHT) as browser:
            browser.open(report.as_uri())
            problems = browser.problems()
            if problems:
                print("the report has console problems:", *problems, sep="\n  ", file=sys.stderr)
                return 1
            png = browser.screenshot()
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    colors = 256
    while out.tell() > MAX_BYTES and colors >= 32:  # a palette keeps text crisp and the file small
        out = io.BytesIO()
        img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, "PNG", optimize=True)
        colors //= 2
    if out.tell() > MAX_BYTES:
        print(f"screenshot is {out.tell()} bytes, over {MAX_BYTES}", file=sys.stderr)
        return 1
    OUT.write_bytes(out.getvalue())
    print(f"wrote {OUT.relative_to(REPO)} ({out.tell()} bytes, {img.width}x{img.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
