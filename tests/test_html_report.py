"""`--format html`: a self-contained, escaped report, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fakescope_cli.media import Media
from fakescope_cli.record import ScanRecord
from fakescope_cli.render.html import CSP, SCRIPT, HtmlRenderer, make_preview, orient_grid
from tests.browser import Chromium, find_chromium
from tests.conftest import REPO
from tests.report_samples import (
    FLUX,
    ORIENTATION,
    PROVENANCE,
    brightness_grid,
    detector_record,
    rich_records,
    sample_records,
    scanned_records,
    write_report,
)

ONE_PIXEL = PROVENANCE / "sd-parsers" / "automatic1111_cropped.png"


class Doc(HTMLParser):
    """Every start tag with its attributes, and the text of each script element."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def _record_for(source: Path, **fields: Any) -> dict[str, Any]:
    media = Media.open(source)
    record = ScanRecord(path=str(source), sha256=media.sha256, bytes=media.size, format=media.format,
                        width=media.width, height=media.height)
    for key, value in fields.items():
        setattr(record, key, value)
    return record.to_dict()


def _data_uri_image(uri: str) -> Any:
    from PIL import Image

    head, payload = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(payload)))


# --- the document, as text -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples() -> list[dict[str, Any]]:
    return sample_records()


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory, samples: list[dict[str, Any]]) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(samples, out)
    return out


@pytest.mark.slow
def test_cli_writes_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    env = {**os.environ, "NO_COLOR": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "fakescope_cli", "scan", os.path.relpath(PROVENANCE, REPO), "--backend", "none",
         "--format", "html", "-o", str(out), "-q"],
        cwd=REPO, env=env, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    expected = scanned_records(PROVENANCE)
    doc = Doc(out.read_text(encoding="utf-8"))
    cards = [a for a in doc.all("article") if "card" in (a.get("class") or "")]
    assert [c["data-path"] for c in cards] == [r["path"] for r in expected]
    assert [c["data-verdict"] for c in cards] == [r["verdict"] for r in expected]
    # Nothing outside the file: every URL-bearing attribute is a data: URI or a fragment.
    for tag, attrs in doc.tags:
        for name in ("src", "href", "srcset", "action", "poster", "data", "formaction"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), (tag, name, value[:80])
    images = doc.all("img")
    assert len(images) == len(expected)  # every scanned fixture still matches its sha256
    for img in images:
        thumb = _data_uri_image(str(img["src"]))
        assert max(thumb.size) <= 256
    text = " ".join(doc.text)
    for record in expected:
        assert record["sha256"] in text  # chain-of-custody table


@pytest.mark.slow
def test_merge_writes_the_same_report_from_shards(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "fakescope_cli", *args], cwd=REPO, env=env,
                              capture_output=True, timeout=300, check=False)

    target = os.path.relpath(PROVENANCE, REPO)
    shards = []
    for k in (1, 2):
        shard = tmp_path / f"shard{k}.jsonl"
        proc = cli("scan", target, "--backend", "none", "-f", "jsonl", "-o", str(shard), "--shard", f"{k}/2", "-q")
        assert proc.returncode == 0, proc.stderr.decode()
        shards.append(str(shard))
    out = tmp_path / "merged.html"
    proc = cli("merge", *shards, "--format", "html", "-o", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    doc = Doc(out.read_text(encoding="utf-8"))
    cards = [a for a in doc.all("article") if "card" in (a.get("class") or "")]
    expected = sorted(r["path"] for r in scanned_records(PROVENANCE))
    assert sorted(c["data-path"] for c in cards) == expected
    assert len(doc.all("img")) == len(expected)  # thumbnails found again from the merged records


def test_csp_allows_exactly_the_inline_script(sample_report: Path) -> None:
    doc = Doc(sample_report.read_text(encoding="utf-8"))
    assert doc.scripts == [SCRIPT]
    metas = [m for m in doc.all("meta") if (m.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1 and metas[0]["content"] == CSP
    digest = base64.b64encode(hashlib.sha256(doc.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CSP
    assert "default-src 'none'" in CSP and "unsafe-inline" not in CSP.split("script-src")[1].split(";")[0]
    assert "unsafe-eval" not in CSP and "http" not in CSP


def test_cards_chain_of_custody_and_summary(sample_report: Path, samples: list[dict[str, Any]]) -> None:
    text = sample_report.read_text(encoding="utf-8")
    doc = Doc(text)
    cards = [a for a in doc.all("article") if "card" in (a.get("class") or "")]
    assert len(cards) == len(samples)
    rows = re.findall(r"<tr><td class=\"c--\"><a href=\"#r(\d+)\">", text)
    assert rows == [str(i + 1) for i in range(len(samples))]
    custody = text[text.index('id="custody"'):]
    for record in samples:
        if record["sha256"]:
            assert record["sha256"] in custody
        assert record["custody"]["scanned_at"] in custody
    assert "fakescope-protocol/1" in custody
    ai = sum(r["verdict"] == "ai-generated" for r in samples)
    assert f'<div class="tile"><b>{ai}</b><span class="badge b-ai-generated"' in text
    errors = sum(bool(r["errors"]) for r in samples)
    assert f'<div class="tile"><b>{errors}</b><span class="badge b-error"' in text
    assert "interrupted" not in text
    # Attribute bars, explanation and heatmap come from the detector blocks that have them.
    assert text.count('class="heat"') == sum(1 for r in samples if (r["detector"] or {}).get("regions"))
    assert "light and shadow" in text and "The skin texture is unusually smooth" in text


def test_interrupted_run_says_so(tmp_path: Path) -> None:
    text = write_report(rich_records()[:1], tmp_path / "r.html", interrupted=True)
    assert "The scan was interrupted: results are partial." in text


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    payload = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    record = _record_for(
        FLUX,
        verdict="likely-ai",
        p_fake=0.9,
        reasons=[f"reason {payload}"],
        evidence=[{"source": f"src{payload}", "signal": f"ai{payload}", "strong": True,
                   "summary": f"summary {payload}\u202eevil", "details": {"prompt": f"</pre>{payload}"}}],
        errors=[],
        warnings=[{"code": "x", "message": f"warn {payload}"}],
    )
    record["detector"] = {"id": f"det{payload}", "version": "1", "weights_sha256": None, "p_fake": 0.9,
                          "attributes": {f"attr{payload}": 0.5}, "explanation": f"line1\n</script>{payload}",
                          "regions": {"rows": 1, "cols": 1, "p_fake": [[0.5]]}, "raw": {}}
    bad_path = dict(record, path=f"dir/{payload}\n\x1b[31m.png", sha256="0" * 64)
    text = write_report([record, bad_path], tmp_path / "r.html")
    doc = Doc(text)
    assert doc.scripts == [SCRIPT]
    for tag, attrs in doc.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert str(attrs["src"]).startswith("data:image/")
    visible = "".join(doc.text)
    assert payload in visible  # shown as text, not markup
    assert "\\u202e" in visible and "\u202e" not in text  # bidi override made visible
    assert "\\x1b" in visible and "\x1b" not in text
    assert "no preview: no such file" in visible  # the hostile path names no file


def test_changed_file_is_not_embedded(tmp_path: Path) -> None:
    copy = tmp_path / "photo.png"
    shutil.copyfile(ONE_PIXEL, copy)
    record = _record_for(copy, verdict="ai-generated", p_fake=0.99)
    assert make_preview(str(copy), record["sha256"]).uri is not None
    with open(copy, "ab") as fh:  # same picture, different bytes
        fh.write(b"\0")
    preview = make_preview(str(copy), record["sha256"])
    assert preview.uri is None and preview.changed
    text = write_report([record], tmp_path / "r.html")
    assert "file changed since scan" in text and "<img" not in text
    copy.unlink()
    gone = make_preview(str(copy), record["sha256"])
    assert gone.uri is None and not gone.changed and "no such file" in gone.note


def test_thumbnails_are_small_and_fit_the_source() -> None:
    big = make_preview(str(FLUX), Media.open(FLUX).sha256)
    thumb = _data_uri_image(str(big.uri))
    assert thumb.format == "JPEG" and thumb.size == (256, 256) and big.size == (256, 256)
    assert len(str(big.uri)) < 60_000
    tiny = make_preview(str(ONE_PIXEL), Media.open(ONE_PIXEL).sha256)
    assert _data_uri_image(str(tiny.uri)).format == "PNG" and tiny.size == (1, 1)
    assert "px" in tiny.upscale.split()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_thumbnail_and_region_grid_turn_upright_together(orientation: int) -> None:
    from PIL import ImageChops, ImageStat

    upright = _data_uri_image(str(make_preview(str(ORIENTATION / "landscape_1.jpg"),
                                               Media.open(ORIENTATION / "landscape_1.jpg").sha256).uri))
    path = ORIENTATION / f"landscape_{orientation}.jpg"
    preview = make_preview(str(path), Media.open(path).sha256)
    assert preview.orientation == orientation
    thumb = _data_uri_image(str(preview.uri)).convert("RGB")
    assert thumb.size == upright.size
    diff = ImageStat.Stat(ImageChops.difference(thumb, upright.convert("RGB"))).mean
    assert max(diff) < 25, diff  # same upright scene (~15: each file has its own digit); a flip gives > 50
    # A region grid measured on the stored pixels, turned by orient_grid, must match the same grid
    # measured on the upright picture better than any other turn or flip does. (The sample files
    # differ a little in brightness, so the match is a correlation, not equality.)
    import numpy as np

    stored_rows, stored_cols = (4, 3) if orientation >= 5 else (3, 4)
    stored = brightness_grid(path, stored_rows, stored_cols)
    reference = np.array(brightness_grid(ORIENTATION / "landscape_1.jpg", 3, 4)).ravel()

    def match(grid: list[list[float]]) -> float:
        return float(np.corrcoef(np.array(grid).ravel(), reference)[0, 1])

    turned = orient_grid(stored, orientation)
    assert len(turned) == 3 and all(len(row) == 4 for row in turned)
    others = [match(orient_grid(stored, o)) for o in range(1, 9)
              if o != orientation and len(orient_grid(stored, o)) == 3]
    assert match(turned) > 0.97 and match(turned) > max(others) + 0.1, (match(turned), others)


def test_no_pixels_run_embeds_no_thumbnails(tmp_path: Path) -> None:
    records = scanned_records(PROVENANCE / "c2pa")
    text = write_report(records, tmp_path / "r.html", arguments=["scan", "--no-pixels", "-f", "html"])
    assert "<img" not in text and "no preview: --no-pixels" in text


def test_cards_are_written_one_at_a_time() -> None:
    class Writes(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.chunks: list[str] = []

        def write(self, s: str) -> int:
            self.chunks.append(s)
            return super().write(s)

    stream = Writes()
    renderer = HtmlRenderer(stream)
    header = {"arguments": [], "counts": {}}
    renderer.start(header)
    for record in rich_records():
        renderer.add(record)
    renderer.finish(header)
    with_images = [c for c in stream.chunks if "data:image/" in c]
    assert len(with_images) == 4 and all(c.count("data:image/") == 1 for c in with_images)


def test_region_grid_drawn_cell_by_cell(tmp_path: Path) -> None:
    record = detector_record(FLUX, verdict="likely-ai", p_fake=0.8, rows=2, cols=3)
    record["detector"]["regions"]["p_fake"] = [[0.0, 0.5, 1.0], [0.25]]  # a short row: missing cells
    text = write_report([record], tmp_path / "r.html")
    heat = re.search(r'<div class="heat" style="grid-template-columns:repeat\(3,1fr\);'
                     r'grid-template-rows:repeat\(2,1fr\)">(.*?)</div>', text)
    assert heat is not None
    cells = re.findall(r"<i[^>]*>", heat.group(1))
    assert len(cells) == 6
    assert [re.search(r'title="p_fake (\d+)%"', c).group(1) if "title" in c else None for c in cells] == [
        "0", "50", "100", "25", None, None]


# --- in a real browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Any:
    binary = find_chromium()
    try:
        import websocket  # noqa: F401  (websocket-client)
    except ImportError:
        websocket = None
    missing = [what for what, ok in (("chromium", binary), ("websocket-client", websocket)) if not ok]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing in CI: apt-get install -y chromium; "
                        "pip install websocket-client")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install chromium / pip install "
                    "websocket-client); required when CI is set")
    with Chromium(str(binary)) as b:
        yield b


def _visible(browser: Chromium) -> list[dict[str, Any]]:
    return browser.eval(
        "Array.from(document.querySelectorAll('article.card')).filter(c => !c.hidden && "
        "getComputedStyle(c).display !== 'none').map(c => ({v: c.dataset.verdict, "
        "p: c.dataset.p === '' ? null : parseFloat(c.dataset.p), path: c.dataset.path, i: +c.dataset.i}))")


@pytest.mark.slow  # drives a real Chromium process
def test_report_in_chromium(browser: Chromium, sample_report: Path, samples: list[dict[str, Any]]) -> None:
    url = sample_report.as_uri()
    browser.open(url)
    assert browser.problems() == []
    requests = browser.requests()
    assert [u for u in requests if not u.startswith("data:")] == [url]
    assert browser.eval("document.querySelectorAll('article.card').length") == len(samples)
    assert browser.eval("document.getElementById('controls').hidden") is False
    assert browser.eval("document.getElementById('shown').textContent") == f"{len(samples)} of {len(samples)} shown"
    # Every thumbnail decoded.
    assert browser.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)") is True

    # Filter: a click on a verdict's checkbox hides exactly that verdict.
    browser.eval("document.querySelector('#controls input[data-verdict=\"ai-generated\"]').click()")
    shown = _visible(browser)
    assert len(shown) == sum(r["verdict"] != "ai-generated" for r in samples)
    assert all(c["v"] != "ai-generated" for c in shown)
    browser.eval("document.getElementById('none').click()")
    assert _visible(browser) == []
    browser.eval("document.querySelector('#controls input[data-verdict=\"likely-real\"]').click()")
    assert {c["v"] for c in _visible(browser)} == {"likely-real"}
    browser.eval("document.getElementById('all').click()")
    assert len(_visible(browser)) == len(samples)

    # Sort by p_fake, both ways (unscored last), by path, and back to scan order.
    def sort(value: str) -> list[dict[str, Any]]:
        browser.eval(f"var s = document.getElementById('sort'); s.value = '{value}'; "
                     "s.dispatchEvent(new Event('change'))")
        return _visible(browser)

    desc = sort("p-desc")
    scores = [c["p"] for c in desc]
    scored = [p for p in scores if p is not None]
    assert scored == sorted(scored, reverse=True) and scores == scored + [None] * (len(scores) - len(scored))
    asc = [c["p"] for c in sort("p-asc")]
    assert asc[: len(scored)] == sorted(scored)
    paths = [c["path"] for c in sort("path")]
    assert paths == sorted(paths)
    assert [c["i"] for c in sort("scan")] == list(range(len(samples)))

    # Path search.
    browser.eval("var q = document.getElementById('search'); q.value = 'C2PA/'; q.dispatchEvent(new Event('input'))")
    assert {c["path"] for c in _visible(browser)} == {r["path"] for r in samples if "c2pa/" in r["path"].lower()}
    assert browser.problems() == []
    assert [u for u in browser.requests() if not u.startswith("data:")] == [url]


@pytest.mark.slow  # drives a real Chromium process
def test_report_prints(browser: Chromium, sample_report: Path) -> None:
    browser.open(sample_report.as_uri())
    browser.send("Emulation.setEmulatedMedia", media="print")
    try:
        assert browser.eval("getComputedStyle(document.getElementById('controls')).display") == "none"
        assert browser.eval("getComputedStyle(document.querySelector('article.card')).breakInside") == "avoid"
        pdf = browser.pdf()
    finally:
        browser.send("Emulation.setEmulatedMedia", media="")
    assert pdf.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
    assert browser.problems() == []


@pytest.mark.slow  # drives a real Chromium process
def test_hostile_report_runs_no_injected_script(browser: Chromium, tmp_path: Path) -> None:
    payload = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><!--'
    record = _record_for(FLUX, path=f"{payload}.png", verdict="likely-ai", p_fake=0.9,
                         reasons=[payload], evidence=[{"source": payload, "signal": "ai", "strong": False,
                                                        "summary": payload, "details": {"x": payload}}])
    out = tmp_path / "hostile.html"
    write_report([record], out)
    browser.open(out.as_uri())
    assert browser.eval("typeof window.__pwned") == "undefined"
    assert browser.eval("document.querySelectorAll('article.card').length") == 1
    assert browser.problems() == []


def test_harness_notices_csp_violations_and_network(browser: Chromium, tmp_path: Path) -> None:
    """The clean-page checks above could pass vacuously; show the harness sees both failure kinds."""
    blocked = tmp_path / "blocked.html"
    blocked.write_text(f'<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{CSP}">'
                       "<script>document.title = 'ran'</script>", encoding="utf-8")
    browser.open(blocked.as_uri())
    assert browser.eval("document.title") == ""
    assert any("Content Security Policy" in p for p in browser.problems())
    fetching = tmp_path / "fetching.html"
    fetching.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png">', encoding="utf-8")
    browser.open(fetching.as_uri())
    assert "http://127.0.0.1:9/x.png" in browser.requests()


def test_sample_screenshot_is_committed() -> None:
    png = REPO / "docs" / "report-sample.png"
    assert png.is_file(), "run: python docs/make_screenshot.py"
    assert png.stat().st_size < 300_000
    from PIL import Image

    with Image.open(png) as img:
        assert img.format == "PNG" and img.width >= 1000



def test_an_undecided_score_is_drawn_on_a_neutral_track(sample_report: Path, samples: list[dict[str, Any]]) -> None:
    """A red-ended bar under an 'uncertain' card reads as a finding the verdict does not make."""
    text = sample_report.read_text(encoding="utf-8")
    cards = re.findall(r'<article class="card"[^>]*data-verdict="([^"]+)"[^>]*>.*?</h3>(<div class="bar[^"]*")?',
                       text, flags=re.S)
    assert cards
    for verdict, bar in cards:
        if not bar:
            continue
        undecided = verdict in ("uncertain", "no-verdict", "error")
        assert ("undecided" in bar) == undecided, (verdict, bar)
    assert any(v == "uncertain" for v, _ in cards) and any(v == "ai-generated" for v, _ in cards)


def test_custody_table_is_readable_at_1280_px(browser: Chromium, tmp_path: Path) -> None:
    """Run-wide custody values are shown once, and the rest of the table fits a 1280-px window: each
    hash in at most two lines, times on one, nothing pushed past the right edge."""
    records = scanned_records(PROVENANCE)
    out = tmp_path / "custody.html"
    text = write_report(records, out)
    custody = text[text.index('id="custody"'):]
    assert custody.count("fakescope-protocol/1") == 1  # once above the table, not once per row
    assert browser.width == 1280
    browser.open(out.as_uri())
    assert browser.problems() == []
    heads = browser.eval("Array.from(document.querySelectorAll('#custody th')).map(t => t.textContent)")
    assert heads == ["#", "path", "sha256", "bytes", "file modified (UTC)", "scanned (UTC)"]
    assert browser.eval("document.querySelectorAll('dl.custody-common dt').length") == 4
    fits = browser.eval("document.querySelector('table.custody').getBoundingClientRect().right "
                        "<= document.documentElement.clientWidth")
    assert fits is True

    def lines(selector: str) -> list[int]:
        # One client rect per line box that the cell's text occupies.
        return browser.eval(f"Array.from(document.querySelectorAll('{selector}')).map(td => {{"
                            "const r = document.createRange(); r.selectNodeContents(td); "
                            "return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size; })")

    hashes = lines("#custody td.c-sha256")
    assert len(hashes) == len(records) and max(hashes) <= 2, hashes
    assert max(lines("#custody td.c-scanned")) == 1 and max(lines("#custody td.c-file-modified")) == 1
    browser.eval("document.getElementById('custody').scrollIntoView()")
    png = browser.screenshot()
    (tmp_path / "custody.png").write_bytes(png)
    from PIL import Image

    with Image.open(io.BytesIO(png)) as shot:
        assert shot.width == 1280
        low, high = shot.convert("L").getextrema()
        assert high - low > 100  # text on a background, not a blank page


def test_a_hint_card_has_no_percentage_or_bar_in_chromium(browser: Chromium, tmp_path: Path) -> None:
    record = detector_record(FLUX, verdict="uncertain", p_fake=0.85, rows=2, cols=2)
    record["p_fake_basis"] = "hint"
    record["detector"]["p_fake"] = 0.87
    out = tmp_path / "hint.html"
    write_report([record], out)
    browser.open(out.as_uri())
    assert browser.problems() == []
    assert browser.eval("document.querySelector('article .pct').textContent") == "hint 0.87"
    assert browser.eval("document.querySelectorAll('article .bar').length") == 0
    # The region map is drawn in neutral slate, not red.
    colours = browser.eval("Array.from(document.querySelectorAll('.heat i')).map(i => getComputedStyle(i)"
                           ".backgroundColor)")
    assert colours and all(c.startswith("rgba(70, 85, 105") for c in colours), colours
