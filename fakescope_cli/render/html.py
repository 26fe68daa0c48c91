"""`--format html`: one self-contained report file for people (and for printing to PDF).

No network, no external file: thumbnails are data: URIs, CSS and the one script are inline (kept as
package data in render/assets/ and copied into the page), and a
Content-Security-Policy meta tag forbids everything else (the script is allowed by its sha256, so
nothing injected could run even if escaping failed). Every string that comes from a record — paths,
summaries, explanations, evidence details, all ultimately from hostile files — is HTML-escaped, with
control and bidi characters made visible. The script reads only data-* attributes and writes only
`hidden`, element order and textContent: record text never reaches a script context.

Layout: run summary (counts per verdict, errors), filter/sort controls, one card per record (verdict
badge, p_fake bar, reasons, evidence in plain words, detector attributes and explanation, a region
heatmap over the thumbnail), then a chain-of-custody table. Records are collected in `add`; in
`finish` each card is written as soon as its thumbnail is made, so at most one decoded image and one
thumbnail are alive at a time.

Thumbnails re-open each file read-only by its recorded path and embed it only when the sha256 still
matches the record ("file changed since scan" otherwise). They show the pixels as stored, then turned
upright by the EXIF orientation; the region grid is turned the same way, so it stays over the pixels
the detector scored.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from typing import Any, NamedTuple, TextIO

from fakescope_cli import __version__
from fakescope_cli.record import VERDICTS
from fakescope_cli.render._common import display_text, percent, score_basis, score_text, stop_notice
from fakescope_cli.render._video import strip_html

THUMB_MAX = 256  # longest side of an embedded thumbnail, in pixels
_PNG_MAX_PIXELS = 64 * 64  # tiny images (1x1 generator samples) stay lossless
_FRAME_PX = 200  # the thumbnail frame is 12.5rem = 200 CSS pixels
_PIXELATED_MAX = 32
_JPEG_QUALITY = 80
_MAX_GRID_CELLS = 64 * 64  # a bigger "region grid" is not a coarse map; it is not drawn
_MAX_ATTRIBUTES = 64
_MAX_DETAILS_CHARS = 8_000  # per evidence item; readers already bound details to a few KB

# What each evidence signal means, in plain words (evidence/base.py defines the signals).
SIGNAL_WORDS: dict[str, str] = {
    "ai": "points to AI generation",
    "ai-edited": "points to an AI edit",
    "camera": "camera data (weak: easy to forge or strip)",
    "editor": "editing software (says nothing about origin)",
    "none": "no signal",
}

HINT_WORDS = ("The detector's own score, 0 looks real, 1 looks generated. Its band is closed: it is not "
              "reliable enough on held-out images to decide alone, so the score only ranks images for a "
              "closer look.")

VERDICT_WORDS: dict[str, str] = {
    "ai-generated": "provenance says a generative model made it",
    "ai-edited": "provenance says generative tools changed it",
    "likely-ai": "the pixel detector is above its upper threshold",
    "uncertain": "the pixel detector is inside its uncertain band",
    "likely-real": "the pixel detector is below its lower threshold",
    "no-verdict": "no provenance decides and no detector scored it",
    "error": "the file could not be analysed",
}


def _asset(name: str) -> str:
    from importlib.resources import files

    return files("fakescope_cli.render").joinpath("assets", name).read_text(encoding="utf-8")


# The page's only script and its style sheet, package data (render/assets/). The script is written
# exactly as read: the CSP allows it by its sha256, so it is never formatted with data.
SCRIPT = _asset("report.js")
SCRIPT_SHA256 = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
# Inline style attributes carry only numbers this module formats (bar widths, cell colours).
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_SHA256}'; base-uri 'none'; form-action 'none'"
)

STYLE = _asset("report.css")


def _text(value: object) -> str:
    """Record text as safe HTML: controls/bidi visible, lone surrogates escaped, markup escaped."""
    shown = display_text(str(value)).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(shown, quote=True)


def _lines(value: str) -> list[str]:
    """Multi-line record text as escaped lines (line breaks are kept as structure, not escapes)."""
    return [_text(line) for line in value.splitlines()]


def _probability(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, float(value)))


def _human_bytes(n: Any) -> str:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _bar(p: float, *, small: bool = False, label: str = "", decided: bool = True) -> str:
    # An undecided score gets a plain grey track: a red end would read as a finding the verdict
    # does not make (an "uncertain" 72% is a ranking hint, not 72% danger).
    cls = ("bar sm" if small else "bar") + ("" if decided else " undecided")
    aria = f' role="img" aria-label="{_text(label)}"' if label else ""
    # The coloured track is the scale; a grey cover hides the part above p.
    return f'<div class="{cls}"{aria}><span style="width:{100 - p * 100:.1f}%"></span></div>'


# --- thumbnails ---------------------------------------------------------------------------------

class Preview(NamedTuple):
    uri: str | None  # data: URI of the thumbnail, or None
    note: str  # caption, or why there is no thumbnail
    changed: bool = False  # the file's bytes differ from the scanned ones
    size: tuple[int, int] = (0, 0)  # thumbnail size, after orientation
    orientation: int = 1  # EXIF orientation applied to the thumbnail (and to the region grid)
    upscale: str = ""  # CSS classes: a source smaller than the frame is shown enlarged


# EXIF orientation -> the Pillow transpose that makes the image upright (as ImageOps.exif_transpose).
_ORIENT_OPS: dict[int, str] = {
    2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
    6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90",
}


def orient_grid(grid: list[list[Any]], orientation: int) -> list[list[Any]]:
    """Apply to a rows x cols grid the same transpose `orientation` applies to the image.

    Pillow's ROTATE_90 turns counter-clockwise, ROTATE_270 clockwise; TRANSPOSE mirrors over the
    main diagonal, TRANSVERSE over the other one.
    """
    g = [list(row) for row in grid]
    if orientation not in _ORIENT_OPS or not g:
        return g

    def transpose(m: list[list[Any]]) -> list[list[Any]]:
        return [list(col) for col in zip(*m, strict=True)]

    if orientation == 2:
        return [row[::-1] for row in g]
    if orientation == 3:
        return [row[::-1] for row in g[::-1]]
    if orientation == 4:
        return g[::-1]
    if orientation == 5:
        return transpose(g)
    if orientation == 6:  # clockwise: new row i = old column i read bottom-up
        return [row[::-1] for row in transpose(g)]
    if orientation == 7:
        return [row[::-1] for row in transpose(g)[::-1]]
    return transpose(g)[::-1]  # 8: counter-clockwise


def make_preview(path: str, sha256: str | None, *, max_side: int = THUMB_MAX) -> Preview:
    """A downscaled, upright thumbnail of the file at `path`, if its bytes still hash to `sha256`.

    The file is opened read-only through Media (same guards as a scan: regular files only, size and
    pixel limits). Never raises: a preview is a convenience, its absence is explained in words.
    """
    from fakescope_cli.errors import InputError
    from fakescope_cli.media import Media

    if not sha256:
        return Preview(None, "no preview: the file was not read during the scan")
    try:
        media = Media.open(path)
    except InputError as exc:
        return Preview(None, f"no preview: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - a preview must never break the report
        return Preview(None, f"no preview: {type(exc).__name__}")
    if media.sha256 != sha256:
        return Preview(None, "file changed since scan: its sha256 no longer matches", changed=True)
    try:
        return _encode_preview(media, max_side)
    except InputError as exc:
        return Preview(None, f"no preview: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - hostile data may break a decoder in many ways
        return Preview(None, f"no preview: cannot decode ({type(exc).__name__})")


def _encode_preview(media: Any, max_side: int) -> Preview:
    from PIL import Image

    from fakescope_cli.imageops import to_rgb8

    img = media.header
    media.check_pixel_limit()
    try:
        orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block only costs the rotation
        orientation = 1
    source_size = img.size
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = to_rgb8(img)  # resampling these modes is not supported everywhere
    img.thumbnail((max_side, max_side))  # draft() first for JPEG: decodes at reduced scale
    alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if alpha:
        img = img.convert("RGBA")
    else:
        img = to_rgb8(img)
    if orientation in _ORIENT_OPS:
        img = img.transpose(getattr(Image.Transpose, _ORIENT_OPS[orientation]))
    else:
        orientation = 1
    out = io.BytesIO()
    if alpha or img.width * img.height <= _PNG_MAX_PIXELS:
        img.save(out, "PNG", optimize=True)
        mime = "image/png"
    else:
        img.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=True)
        mime = "image/jpeg"
    uri = f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"
    note = f"{source_size[0]}×{source_size[1]} {media.format or ''}".strip()
    if orientation != 1:
        note += f"; shown upright (EXIF orientation {orientation})"
    upscale = ""
    if max(source_size) < _FRAME_PX:
        upscale = "up-w" if img.width >= img.height else "up-h"
        if max(source_size) <= _PIXELATED_MAX:
            upscale += " px"  # a few pixels: show them as blocks, not as a blur
    return Preview(uri, note, size=img.size, orientation=orientation, upscale=upscale)


# --- one card ---------------------------------------------------------------------------------------

def _region_grid(regions: Any) -> list[list[float | None]] | None:
    """The detector's region grid as rows of probabilities (None where a cell is missing), or None."""
    if not isinstance(regions, dict):
        return None
    grid = regions.get("p_fake")
    if not isinstance(grid, list) or not grid or not all(isinstance(row, list) for row in grid):
        return None
    cols = max(len(row) for row in grid)
    if cols == 0 or len(grid) * cols > _MAX_GRID_CELLS:
        return None
    out = [[_probability(v) for v in row] + [None] * (cols - len(row)) for row in grid]
    if all(v is None for row in out for v in row):
        return None
    return out


def _heatmap(grid: list[list[float | None]], *, hint: bool = False) -> str:
    # A hint's map is drawn in a neutral slate, not red: it ranks regions, it finds nothing.
    rgb = "70,85,105" if hint else "220,30,30"
    rows, cols = len(grid), len(grid[0])
    cells = []
    for row in grid:
        for v in row:
            if v is None:
                cells.append("<i></i>")
            else:
                # Red, more opaque where the detector's p_fake is higher; the title gives the number.
                cells.append(f'<i style="background:rgba({rgb},{0.08 + 0.6 * v:.3f})" '
                             f'title="p_fake {v * 100:.0f}%"></i>')
    return (f'<div class="heat" style="grid-template-columns:repeat({cols},1fr);'
            f'grid-template-rows:repeat({rows},1fr)">' + "".join(cells) + "</div>")


def _figure(record: dict[str, Any], preview: Preview | None, grid: list[list[float | None]] | None,
            hint: bool = False) -> str:
    if preview is None or preview.uri is None:
        if preview is None:
            reason = "no preview: the file could not be analysed"
        elif not preview.changed:
            reason = preview.note
        else:
            reason = "file changed since scan"
        cls = "nopic changed" if preview is not None and preview.changed else "nopic"
        caption = (f"<figcaption>{_text(preview.note)}</figcaption>"
                   if preview is not None and preview.changed else "")
        return f'<figure><div class="frame"><div class="{cls}">{_text(reason)}</div></div>{caption}</figure>'
    w, h = preview.size
    img_cls = f' class="{preview.upscale}"' if preview.upscale else ""
    overlay = ""
    caption = preview.note
    if grid is not None:
        overlay = _heatmap(orient_grid(grid, preview.orientation), hint=hint)
        caption += f"; region map {len(grid)}×{len(grid[0])}"
    alt = f"preview of {record.get('path', '')}"
    return (f'<figure><div class="frame"><div class="pic"><img{img_cls} src="{preview.uri}" width="{w}" '
            f'height="{h}" alt="{_text(alt)}">{overlay}</div></div>'
            f"<figcaption>{_text(caption)}</figcaption></figure>")


def _evidence_html(evidence: list[Any], reasons: list[Any]) -> str:
    """The evidence items; a summary already given under "Why" (or by an earlier item) is not
    repeated: Content Credentials read from C2PA and echoed in XMP say one thing once."""
    items = []
    said = {str(r) for r in reasons}
    for item in evidence:
        if not isinstance(item, dict):
            continue
        summary = str(item.get("summary", ""))
        repeated = summary in said
        said.add(summary)
        signal = str(item.get("signal", "none"))
        words = SIGNAL_WORDS.get(signal, signal)
        strong = ' <span class="strong">decisive</span>' if item.get("strong") is True else ""
        details = item.get("details")
        extra = ""
        if isinstance(details, dict) and details:
            dumped = json.dumps(details, indent=1, ensure_ascii=False, default=str, sort_keys=True)
            if len(dumped) > _MAX_DETAILS_CHARS:
                dumped = dumped[:_MAX_DETAILS_CHARS] + "\n… (cut here; see --format json)"
            extra = f"<details><summary>details</summary><pre>{chr(10).join(_lines(dumped))}</pre></details>"
        items.append(
            f'<li><span class="sig sig-{_text(signal)}">{_text(item.get("source", "?"))}</span> '
            f'<span class="muted">{_text(words)}</span>{strong}'
            + ('<span class="muted"> (said above)</span>' if repeated else f"<br>{_text(summary)}")
            + f"{extra}</li>"
        )
    return "<h4>Evidence in the file</h4><ul class=\"evidence\">" + "".join(items) + "</ul>" if items else ""


def _detector_html(detector: Any) -> str:
    if not isinstance(detector, dict):
        return ""
    ident = " ".join(str(detector[k]) for k in ("id", "version") if detector.get(k))
    own = _probability(detector.get("p_fake"))
    parts = [f"<h4>Detector</h4><div>{_text(ident or 'detector')}"
             + (f' <span class="muted">— its own score {percent(own)}</span>' if own is not None else "")
             + "</div>"]
    attributes = detector.get("attributes")
    if isinstance(attributes, dict) and attributes:
        ranked = sorted(((str(k), p) for k, v in attributes.items() if (p := _probability(v)) is not None),
                        key=lambda kv: -kv[1])[:_MAX_ATTRIBUTES]
        rows = "".join(
            f'<tr><td class="name">{_text(name)}</td><td>{_bar(p, small=True)}</td>'
            f'<td class="num">{percent(p)}</td></tr>'
            for name, p in ranked
        )
        if rows:
            parts.append(f'<h4>Attributes (p_fake per aspect)</h4><table class="attrs">{rows}</table>')
    explanation = detector.get("explanation")
    if isinstance(explanation, str) and explanation.strip():
        paragraphs = "".join(f"<p>{line}</p>" for line in _lines(explanation.strip()) if line.strip())
        parts.append(f'<h4>Explanation</h4><div class="explanation">{paragraphs}</div>')
    return "".join(parts)


def _problems_html(record: dict[str, Any]) -> str:
    items = []
    for level, entries in (("error", record.get("errors")), ("warning", record.get("warnings"))):
        for entry in entries or []:
            if isinstance(entry, dict):
                items.append(f'<li class="{level}"><code>{_text(entry.get("code", level))}</code> '
                             f'{_text(entry.get("message", ""))}</li>')
    return f'<h4>Problems</h4><ul class="problems">{"".join(items)}</ul>' if items else ""


def card_html(index: int, record: dict[str, Any], preview: Preview | None, frames: str = "") -> str:
    """One record's card; `frames` is a video's strip of sampled frames (render/_video.py)."""
    verdict = str(record.get("verdict", "no-verdict"))
    p = _probability(record.get("p_fake"))
    path = str(record.get("path", ""))
    detector = record.get("detector")
    grid = _region_grid(detector.get("regions")) if isinstance(detector, dict) else None
    meta = " · ".join(x for x in (
        str(record["format"]) if record.get("format") else "",
        f"{record['width']}×{record['height']}" if record.get("width") and record.get("height") else "",
        _human_bytes(record.get("bytes")) if record.get("bytes") is not None else "",
    ) if x)
    hint = score_basis(record) == "hint"
    if p is None:
        score = '<span class="pct muted">no score</span>'
    elif hint:
        # No percentage and no coloured bar: this score ranks images, it does not decide one.
        score = (f'<span class="pct hint" title="{_text(HINT_WORDS)}">{_text(score_text(record))}</span>'
                 f'<span class="muted">pixel hint, for ranking only</span>')
    else:
        score = f'<span class="pct">{percent(p)}</span>'
    decided = verdict in ("ai-generated", "ai-edited", "likely-ai", "likely-real")
    bar = _bar(p, label=f"p_fake {percent(p)}", decided=decided) if p is not None and not hint else ""
    reasons = record.get("reasons") or []
    reasons_html = ("<h4>Why</h4><ul>" + "".join(f"<li>{_text(r)}</li>" for r in reasons) + "</ul>"
                    if reasons else "")
    data_p = f"{p:.6f}" if p is not None else ""
    return (
        f'<article class="card" id="r{index + 1}" data-i="{index}" data-verdict="{_text(verdict)}" '
        f'data-p="{data_p}" data-path="{_text(path)}">'
        f'<div class="card-head"><span class="badge b-{_text(verdict)}" title="{_text(VERDICT_WORDS.get(verdict, ""))}">'
        f"{_text(verdict)}</span>{score}"
        f'<span class="muted">#{index + 1}{" · " + _text(meta) if meta else ""}</span></div>'
        f'<h3 class="path mono">{_text(path)}</h3>{bar}'
        f'<div class="card-body">{_figure(record, preview, grid, hint)}<div>'
        f"{reasons_html}{_evidence_html(record.get('evidence') or [], reasons)}{_detector_html(detector)}"
        f"{_problems_html(record)}{frames}</div></div></article>\n"
    )


# --- the document -------------------------------------------------------------------------------

def _custody_cells(index: int, record: dict[str, Any]) -> dict[str, str]:
    """The custody columns of one record, as escaped HTML cells keyed by column heading."""
    custody = record.get("custody") if isinstance(record.get("custody"), dict) else {}
    detector = " ".join(str(custody[k]) for k in ("detector_id", "detector_version") if custody.get(k))
    return {
        "#": f'<a href="#r{index + 1}">{index + 1}</a>',
        "path": f'<code>{_text(record.get("path", ""))}</code>',
        "sha256": f'<code class="hash">{_text(record.get("sha256") or "—")}</code>',
        "bytes": _text(record.get("bytes") if record.get("bytes") is not None else "—"),
        "tool": _text(f"{custody.get('tool', 'fakescope')} {custody.get('tool_version', '')}".strip()),
        "detector": _text(detector or "—"),
        "weights sha256": f'<code class="hash">{_text(custody.get("weights_sha256") or "—")}</code>',
        "protocol": _text(custody.get("protocol_version") or "—"),
        "file modified (UTC)": _text(custody.get("file_mtime") or "—"),
        "scanned (UTC)": _text(custody.get("scanned_at") or "—") + (" (cache)" if custody.get("from_cache") else ""),
    }


# Columns whose value is usually the run's, not the file's: shown once above the table when every
# record has the same one, as a column otherwise (a merged report may mix detectors).
_RUN_WIDE = ("tool", "detector", "weights sha256", "protocol")


def _css_name(heading: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in heading.split(" (")[0])


class HtmlRenderer:
    def __init__(self, stream: TextIO, *, color: bool = False, width: int | None = None,
                 thumbnails: bool | None = None):
        self.stream = stream
        self.records: list[dict[str, Any]] = []
        # None: previews unless the run said --no-pixels (the user asked for no pixel decoding).
        self.thumbnails = thumbnails

    def start(self, header: dict[str, Any]) -> None:
        pass

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def _want_thumbnails(self, header: dict[str, Any]) -> bool:
        if self.thumbnails is not None:
            return self.thumbnails
        return "--no-pixels" not in [str(a) for a in header.get("arguments") or []]

    def finish(self, header: dict[str, Any]) -> None:
        w = self.stream.write
        counts: dict[str, int] = {}
        for record in self.records:
            verdict = str(record.get("verdict", "no-verdict"))
            counts[verdict] = counts.get(verdict, 0) + 1
        errors = sum(1 for r in self.records if r.get("errors"))
        title = f"fakescope report — {len(self.records)} image{'s' if len(self.records) != 1 else ''}"
        w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        w(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n')
        w('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
        w('<meta name="referrer" content="no-referrer">\n<link rel="icon" href="data:,">\n')
        w(f'<meta name="generator" content="fakescope {_text(__version__)}">\n')
        w(f"<title>{_text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n")
        w(self._summary(header, counts, errors, title))
        w(self._controls(counts))
        w('<main id="cards">\n')
        thumbs = self._want_thumbnails(header)
        for i, record in enumerate(self.records):
            preview = None
            if record.get("video") and record.get("format") not in ("GIF", "PNG", "WEBP"):
                preview = Preview(None, "a video: its sampled frames are shown with their scores")
            elif record.get("verdict") != "error":
                preview = (make_preview(str(record.get("path", "")), record.get("sha256")) if thumbs
                           else Preview(None, "no preview: --no-pixels"))
            frames = strip_html(record, thumbnails=thumbs) if record.get("video") else ""
            w(card_html(i, record, preview, frames))  # the thumbnail is dropped before the next one is made
        if not self.records:
            w('<p class="muted">No images were analysed.</p>\n')
        w("</main>\n")
        w(self._custody())
        w(f'<footer>Made by fakescope {_text(__version__)}. This file is self-contained: it loads nothing '
          "from the network or the disk. p_fake is the probability that the image is AI-generated, "
          "wholly or in part; the absence of provenance proves nothing.</footer>\n")
        w(f"<script>{SCRIPT}</script>\n</body>\n</html>\n")
        self.stream.flush()

    def _summary(self, header: dict[str, Any], counts: dict[str, int], errors: int, title: str) -> str:
        parts = [f"<header><h1>{_text(title)}</h1>"]
        notice = stop_notice(header)
        if notice:
            parts.append(f'<div class="banner warn">{_text(notice)}</div>')
        tiles = [f'<div class="tile"><b>{len(self.records)}</b> files</div>']
        for verdict in VERDICTS:
            if counts.get(verdict) and verdict != "error":  # errors get their own tile, always shown
                tiles.append(f'<div class="tile"><b>{counts[verdict]}</b>'
                             f'<span class="badge b-{verdict}" title="{_text(VERDICT_WORDS[verdict])}">'
                             f"{verdict}</span></div>")
        other = sorted(v for v in counts if v not in VERDICTS)
        for verdict in other:
            tiles.append(f'<div class="tile"><b>{counts[verdict]}</b><span class="badge">{_text(verdict)}</span></div>')
        tiles.append(f'<div class="tile"><b>{errors}</b><span class="badge b-error" title="'
                     f'{_text(VERDICT_WORDS["error"])}">error{"s" if errors != 1 else ""}</span></div>')
        warned = sum(1 for r in self.records if r.get("warnings"))
        if warned:
            tiles.append(f'<div class="tile"><b>{warned}</b> with warnings</div>')
        run_counts = header.get("counts") if isinstance(header.get("counts"), dict) else {}
        if run_counts.get("skipped"):
            tiles.append(f'<div class="tile"><b>{_text(run_counts["skipped"])}</b> non-image files skipped</div>')
        parts.append('<div class="tiles">' + "".join(tiles) + "</div>")
        detector = header.get("detector")
        det = ""
        if isinstance(detector, dict):
            det = " ".join(str(detector[k]) for k in ("id", "version") if detector.get(k))
            if detector.get("weights_sha256"):
                det += f" (weights sha256 {detector['weights_sha256']})"
        rows = [
            ("tool", f"{header.get('tool', 'fakescope')} {header.get('tool_version', __version__)}"),
            ("protocol", header.get("protocol_version")),
            ("record schema", header.get("record_schema_version")),
            ("detector", det or "none"),
            ("started (UTC)", header.get("started_at")),
            ("finished (UTC)", header.get("finished_at")),
            ("arguments", " ".join(str(a) for a in header.get("arguments") or [])),
        ]
        parts.append('<dl class="run">' + "".join(
            f"<dt>{name}</dt><dd>{_text(value)}</dd>" for name, value in rows if value) + "</dl></header>\n")
        return "".join(parts)

    def _controls(self, counts: dict[str, int]) -> str:
        boxes = "".join(
            f'<label><input type="checkbox" data-verdict="{_text(v)}" checked>'
            f'<span class="badge b-{_text(v)}">{_text(v)}</span> {counts[v]}</label>'
            for v in [*VERDICTS, *sorted(v for v in counts if v not in VERDICTS)] if counts.get(v)
        )
        # Hidden until the script runs: without it, controls would do nothing.
        return (
            '<nav id="controls" hidden aria-label="filter and sort">'
            f'<fieldset><span class="muted">show</span>{boxes}'
            '<button type="button" id="all">all</button><button type="button" id="none">none</button></fieldset>'
            '<label>sort <select id="sort"><option value="scan">scan order</option>'
            '<option value="p-desc">p_fake, highest first</option>'
            '<option value="p-asc">p_fake, lowest first</option><option value="path">path</option></select></label>'
            '<label>path <input type="search" id="search" placeholder="filter by path"></label>'
            '<label><input type="checkbox" id="heat" checked> region maps</label>'
            '<span id="shown" class="muted" aria-live="polite"></span></nav>\n'
        )

    def _custody(self) -> str:
        table = [_custody_cells(i, r) for i, r in enumerate(self.records)]
        common = {name: table[0][name] for name in _RUN_WIDE
                  if table and all(cells[name] == table[0][name] for cells in table)}
        columns = [name for name in table[0] if name not in common] if table else []
        head = "".join(f'<th class="c-{_css_name(h)}">{h}</th>' for h in columns)
        rows = "".join("<tr>" + "".join(f'<td class="c-{_css_name(name)}">{cells[name]}</td>' for name in columns) + "</tr>\n"
                       for cells in table)
        shared = ('<dl class="run custody-common">' + "".join(f"<dt>{name}</dt><dd>{value}</dd>"
                                                             for name, value in common.items()) + "</dl>"
                  if common else "")
        return (f'<section id="custody"><h2>Chain of custody</h2><p class="muted">Each file as fakescope '
                f"read it: the sha256 identifies the exact bytes examined."
                f"{' The same for every file:' if common else ''}</p>{shared}"
                f'<table class="custody"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>\n')
